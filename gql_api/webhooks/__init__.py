"""Webhooks (결제알림): settings per store, module version and mode; signing; test calls."""
