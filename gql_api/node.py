"""Global object identification: opaque IDs and the `Node` interface."""

from __future__ import annotations

import base64
import binascii

import strawberry


def to_global_id(type_name: str, pk: int) -> strawberry.ID:
    raw = f"{type_name}:{pk}".encode()
    return strawberry.ID(base64.urlsafe_b64encode(raw).decode().rstrip("="))


def from_global_id(global_id: str) -> tuple[str, int] | None:
    """(type name, primary key), or None for anything that is not one of our IDs."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
        type_name, _, pk = raw.partition(":")
        if not type_name.isidentifier() or not pk.isdigit() or len(pk) > 18:
            return None
        return type_name, int(pk)
    except (ValueError, UnicodeError, binascii.Error):
        return None


def pk_of(global_id: str, type_name: str) -> int | None:
    decoded = from_global_id(global_id)
    if decoded is None or decoded[0] != type_name:
        return None
    return decoded[1]


@strawberry.interface(description="An object with a globally unique, opaque ID.")
class Node:
    id: strawberry.ID = strawberry.field(description="Opaque global ID; pass it to `node(id:)`.")
