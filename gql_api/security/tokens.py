"""Opaque high-entropy tokens, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets

SESSION_TOKEN_PREFIX = "pos_"  # console session
INVITATION_TOKEN_PREFIX = "poi_"  # member invitation
ACCESS_TOKEN_PREFIX = "poa_"  # API-secret access token (30 minutes)
REFRESH_TOKEN_PREFIX = "por_"  # API-secret refresh token (1 day)
TOKEN_BYTES = 32  # 256 bits


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
