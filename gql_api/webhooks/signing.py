"""Standard Webhooks signatures: HMAC-SHA256 over "id.timestamp.body", one per active secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the spec allows 24-64


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def hint(secret: str) -> str:
    return f"{SECRET_PREFIX}…{secret[-4:]}"


def new_message_id() -> str:
    return "msg_" + secrets.token_urlsafe(18).replace("-", "A").replace("_", "B")


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    content = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(
    secrets_in_use: Sequence[str], message_id: str, timestamp: int, body: str
) -> str:
    """Space-separated, so receivers accept either secret while one is being rotated."""
    return " ".join(signature(s, message_id, timestamp, body) for s in secrets_in_use)
