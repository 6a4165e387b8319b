"""The V2 API secret format: recognisable, self-checking, with a public key id.

    portone_sk_<key id: 12 base62>_<secret: 43 base62 = 256 bits><CRC32 of the rest: 6 base62>

A typo or a look-alike string fails the checksum and is refused before any hashing; the key
id finds the one row to verify against, so no scan is needed.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import zlib
from dataclasses import dataclass

PREFIX = "portone_sk_"
KEY_ID_LENGTH = 12
SECRET_LENGTH = 43
CHECKSUM_LENGTH = 6
_ALPHABET = string.digits + string.ascii_letters
_TOTAL_LENGTH = len(PREFIX) + KEY_ID_LENGTH + 1 + SECRET_LENGTH + CHECKSUM_LENGTH


@dataclass(frozen=True)
class ParsedSecret:
    key_id: str
    plaintext: str


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, remainder = divmod(number, 62)
        digits.append(_ALPHABET[remainder])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def generate() -> ParsedSecret:
    key_id = _random(KEY_ID_LENGTH)
    body = f"{PREFIX}{key_id}_{_random(SECRET_LENGTH)}"
    return ParsedSecret(key_id=key_id, plaintext=body + _checksum(body))


def parse(candidate: str) -> ParsedSecret | None:
    """The key id of a well-formed secret with a valid checksum; None for anything else."""
    if len(candidate) != _TOTAL_LENGTH or not candidate.startswith(PREFIX):
        return None
    rest = candidate[len(PREFIX) :]
    key_id, separator, tail = rest[:KEY_ID_LENGTH], rest[KEY_ID_LENGTH], rest[KEY_ID_LENGTH + 1 :]
    if separator != "_" or not all(c in _ALPHABET for c in key_id + tail):
        return None
    body, checksum = candidate[:-CHECKSUM_LENGTH], candidate[-CHECKSUM_LENGTH:]
    if not secrets.compare_digest(_checksum(body), checksum):
        return None
    return ParsedSecret(key_id=key_id, plaintext=candidate)


def hint(parsed: ParsedSecret) -> str:
    """Enough to recognise a secret in a list, never enough to use it."""
    return f"{PREFIX}{parsed.key_id[:4]}…{parsed.plaintext[-4:]}"


def fingerprint(plaintext: str) -> str:
    """A fast hash for the in-process cache of verified secrets (never stored)."""
    return hashlib.sha256(plaintext.encode("ascii")).hexdigest()


VERIFY_TAG_LENGTH = 8  # hex characters: 32 bits


def verify_tag(plaintext: str) -> str:
    """The first 32 bits of the secret's SHA-256, stored beside its argon2id hash.

    A presented secret whose tag differs is refused without argon2, so guesses cost no hashing
    and cannot use up the per-key budget of verifications that the genuine secret relies on.
    Storing it costs nothing: 32 bits of a hash of 256 random bits leave 224 unknown, and
    SHA-256 cannot be inverted. It is 32 bits rather than 16 because a tag match is visible by
    timing (argon2 takes longer): 16 bits could be found with some 65,000 guesses and then used
    to forge look-alikes that reach argon2 at will; 32 bits take billions of requests.
    """
    return fingerprint(plaintext)[:VERIFY_TAG_LENGTH]
