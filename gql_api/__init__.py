"""Integration-management (연동 관리) GraphQL API."""
