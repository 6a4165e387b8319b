"""Encryption at rest for secrets that must be recoverable (PG credentials, webhook secrets).

AES-256-GCM with associated data binding each ciphertext to its owner and field, so a value
cannot be copied onto another row. Keys come from ENCRYPTION_KEYS (base64url 32-byte keys,
newest first); every key decrypts, the newest encrypts, so keys can rotate.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gql_api.settings import AppEnv, Settings, decode_encryption_key

logger = logging.getLogger("gql_api.security")

_VERSION = "g1"
_NONCE_BYTES = 12
DEV_KEY_FILE = "encryption.key"


class EncryptionKeyError(ValueError):
    pass


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _decode_key(value: str) -> bytes:
    try:
        return decode_encryption_key(value)
    except ValueError as wrong:
        raise EncryptionKeyError(f"an ENCRYPTION_KEYS entry {wrong}") from None


def _key_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:8]


class Encryptor:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise EncryptionKeyError("at least one encryption key is required")
        decoded = [_decode_key(k) for k in keys]
        self._current_id = _key_id(decoded[0])
        self._ciphers = {_key_id(raw): AESGCM(raw) for raw in decoded}

    def encrypt(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self._current_id].encrypt(
            nonce, plaintext.encode("utf-8"), context.encode("utf-8")
        )
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{_VERSION}.{self._current_id}.{body}"

    def decrypt(self, token: str, *, context: str) -> str:
        version, key_id, body = token.split(".", 2)
        cipher = self._ciphers.get(key_id)
        if version != _VERSION or cipher is None:
            raise EncryptionKeyError("no key for this ciphertext (was ENCRYPTION_KEYS rotated?)")
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        try:
            plain = cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except InvalidTag:
            raise EncryptionKeyError("ciphertext does not belong here or was altered") from None
        return plain.decode("utf-8")


def encryptor_from_settings(settings: Settings) -> Encryptor:
    """Keys from ENCRYPTION_KEYS; outside production a key is generated into the data folder."""
    if settings.encryption_keys:
        return Encryptor(settings.encryption_keys)
    if settings.app_env is AppEnv.PRODUCTION:  # settings validation already refuses this
        raise EncryptionKeyError("ENCRYPTION_KEYS is required in production")
    path = Path(settings.data_dir) / DEV_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under a name of its own, then linked into place: the processes of
        # `serve --workers N` starting together all end up with the one key that won, and none
        # can read a file another has created but not yet written.
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as draft:
            draft.write(new_key())
        try:
            os.chmod(draft.name, 0o600)
            os.link(draft.name, path)
        except FileExistsError:  # another process linked its key first: that one is used
            pass
        else:
            logger.warning(
                "ENCRYPTION_KEYS not set: generated a development key in %s; set "
                "ENCRYPTION_KEYS in production",
                path,
            )
        finally:
            os.unlink(draft.name)
    return Encryptor([path.read_text().strip()])
