"""Statements for many stores at once, in a few fixed shapes.

A batch of store ids is cut into chunks of at most 64 (SQLite refuses more than 500 terms in
a compound SELECT), and each chunk is padded to the next of a few sizes with an id no store
has, so that statements built once (db.driver_query) can serve every batch: one per size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import BindParameter, bindparam

STORE_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
# Negative: no row can have it (0 is a valid key, and an explicit insert can store it).
NO_STORE = -1


class StoreCount(NamedTuple):
    """A count of one store's rows (the columns of a count statement: `store_pk`, `total`)."""

    store_pk: int
    total: int


def store_chunks(store_pks: Sequence[int]) -> list[list[int]]:
    size = STORE_BUCKETS[-1]
    chunks = []
    for start in range(0, len(store_pks), size):
        chunk = list(store_pks[start : start + size])
        bucket = next(b for b in STORE_BUCKETS if b >= len(chunk))
        chunks.append(chunk + [NO_STORE] * (bucket - len(chunk)))
    return chunks


def store_binds(count: int) -> list[BindParameter[int]]:
    return [bindparam(f"store_{index}") for index in range(count)]


def store_params(chunk: Sequence[int]) -> dict[str, int]:
    return {f"store_{index}": pk for index, pk in enumerate(chunk)}
