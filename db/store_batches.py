"""Statements for many stores at once, in a few fixed shapes.

A batch of store ids is cut into chunks of at most 64 (SQLite refuses more than 500 terms in
a compound SELECT), and each chunk is padded to the next of a few sizes with an id no store
has, so that statements built once (db.driver_query) can serve every batch: one per size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import BindParameter, Select, bindparam, select, union_all

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


def store_pages(
    page_of: Callable[[BindParameter[int]], Select[*tuple[Any, ...]]], stores: int
) -> Select[*tuple[Any, ...]]:
    """One statement for the pages of `stores` stores (a bucket size): `page_of` is one store's
    keyset query (its own ORDER BY and LIMIT) for the store bound as `store_<index>`, and the
    stores' queries are joined with UNION ALL, each as a subquery so that each keeps its LIMIT.
    Rows come in no particular order across stores: sort each store's rows after reading."""
    binds = store_binds(stores)
    if stores == 1:
        return page_of(binds[0])
    parts = [page_of(store).subquery() for store in binds]
    return select(union_all(*(select(part) for part in parts)).subquery())
