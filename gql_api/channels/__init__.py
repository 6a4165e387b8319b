"""PG channels (채널 관리) of a store: create, update, delete, list."""
