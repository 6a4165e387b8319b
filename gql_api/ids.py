"""Opaque global IDs (`Type:pk`, base64url); no GraphQL import, so services can use them."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

MAX_PRIMARY_KEY = 2**31 - 1  # primary keys are 32-bit integers on PostgreSQL


@lru_cache(maxsize=4096)  # a dashboard shows the same few hundred objects again and again
def global_id(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def parse_global_id(value: str) -> tuple[str, int] | None:
    """(type name, primary key), or None for anything that is not one of our IDs."""
    if len(value) > 200:
        return None
    try:
        padded = value + "=" * (-len(value) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeError, binascii.Error):
        return None
    type_name, _, digits = raw.partition(":")
    if not type_name.isidentifier() or not (digits.isascii() and digits.isdigit()):
        return None
    if len(digits) > 10:
        return None
    pk = int(digits)
    return (type_name, pk) if 0 < pk <= MAX_PRIMARY_KEY else None


def pk_of(value: str, type_name: str) -> int | None:
    decoded = parse_global_id(value)
    if decoded is None or decoded[0] != type_name:
        return None
    return decoded[1]
