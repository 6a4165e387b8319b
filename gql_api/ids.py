"""Opaque global IDs (`Type:key`, base64url); no GraphQL import, so services can use them.

The key is a row's primary key, or for an object that has no row of its own (a webhook
setting exists for every store, module version and mode, saved or not) a compound key: the
row's key and an index below a fixed size (compound_key), so that its ID is the same before
and after it is saved.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

MAX_PRIMARY_KEY = 2**31 - 1  # primary keys are 32-bit integers on PostgreSQL

# Types named by a compound key, and how many objects each row has: WebhookSetting is a
# store's (module version × mode).
COMPOUND_KEYS = {"WebhookSetting": 4}


@lru_cache(maxsize=4096)  # a dashboard shows the same few hundred objects again and again
def global_id(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def compound_key(type_name: str, pk: int, index: int) -> int:
    """One key for the `index`th object of the row `pk` (see COMPOUND_KEYS)."""
    size = COMPOUND_KEYS[type_name]
    if not 0 <= index < size:
        raise ValueError(f"{type_name} index {index} is not below {size}")
    return pk * size + index


def split_compound_key(type_name: str, key: int) -> tuple[int, int]:
    """(row pk, index) of a compound key."""
    return divmod(key, COMPOUND_KEYS[type_name])


def parse_global_id(value: str) -> tuple[str, int] | None:
    """(type name, key), or None for anything that is not one of our IDs (for a compound
    key: one whose row key is out of a primary key's range)."""
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
    key = int(digits)
    pk = key // COMPOUND_KEYS.get(type_name, 1)
    return (type_name, key) if 0 < pk <= MAX_PRIMARY_KEY else None


def pk_of(value: str, type_name: str) -> int | None:
    decoded = parse_global_id(value)
    if decoded is None or decoded[0] != type_name:
        return None
    return decoded[1]
