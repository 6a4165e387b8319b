"""One query for the API-secret pages of many stores (Store.apiSecrets without N+1), and one
for their totalCounts.

Each store's page is its own keyset query (`store_pk = ? AND id > ? ORDER BY id LIMIT n`) under
the caller's scope (gql_api.api_secrets.service.bound_secret_scope); the pages of up to 64
stores are one statement (db.store_batches.store_pages), built once per shape and run straight
on the driver (db.driver_query), forwards and backwards alike. Rows are named tuples
(ApiSecretRecord) of the metadata a listing shows: the hash and the verify tag are not read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import BindParameter, Integer, Select, bindparam, func
from sqlalchemy import select as core_select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from db.driver_query import DriverQuery
from db.models import ApiSecret
from db.store_batches import StoreCount, store_binds, store_chunks, store_pages, store_params
from gql_api.api_secrets.service import bound_secret_scope, secret_scope_params
from gql_api.pagination import Page, PageRequest, page_from_rows
from gql_api.permissions import Operation, Principal, confined_store_pk


class ApiSecretRecord(NamedTuple):
    """What an ApiSecret shows of a row (ApiSecret.from_row reads it by name); its fields name
    the columns read."""

    id: int
    store_pk: int
    name: str
    hint: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    created_by: int | None
    network_rules: list[dict[str, Any]]


COLUMNS = tuple(col(getattr(ApiSecret, name)) for name in ApiSecretRecord._fields)


@dataclass(frozen=True)
class SecretPageKey:
    store_pk: int
    request: PageRequest


@dataclass(frozen=True)
class SecretPageShape:
    """What makes one page statement differ from another (values are bound parameters)."""

    stores: int  # one of db.store_batches.STORE_BUCKETS
    own_store: bool
    after: bool
    before: bool
    backward: bool


@dataclass(frozen=True)
class SecretCountShape:
    stores: int  # one of db.store_batches.STORE_BUCKETS
    own_store: bool


def _key(row: ApiSecretRecord) -> int:
    return row.id


@lru_cache(maxsize=64)
def _statement(shape: SecretPageShape) -> DriverQuery[ApiSecretRecord]:
    conditions = bound_secret_scope(shape.own_store)
    if shape.after:
        conditions.append(col(ApiSecret.id) > bindparam("after"))
    if shape.before:
        conditions.append(col(ApiSecret.id) < bindparam("before"))
    order = col(ApiSecret.id).desc() if shape.backward else col(ApiSecret.id).asc()
    limit = bindparam("limit", type_=Integer())

    def page_of(store: BindParameter[int]) -> Select[*tuple[Any, ...]]:
        return (
            core_select(*COLUMNS)
            .where(*conditions, col(ApiSecret.store_pk) == store)
            .order_by(order)
            .limit(limit)
        )

    return DriverQuery(store_pages(page_of, shape.stores), ApiSecretRecord)


@lru_cache(maxsize=16)
def _count_statement(shape: SecretCountShape) -> DriverQuery[StoreCount]:
    """Per store, how many secrets its pages list in all."""
    return DriverQuery(
        core_select(col(ApiSecret.store_pk).label("store_pk"), func.count().label("total"))
        .where(
            *bound_secret_scope(shape.own_store),
            col(ApiSecret.store_pk).in_(store_binds(shape.stores)),
        )
        .group_by(col(ApiSecret.store_pk)),
        StoreCount,
    )


def _own_store(principal: Principal) -> bool:
    return confined_store_pk(principal, Operation.READ) is not None


async def load_secret_pages(
    connection: AsyncConnection, principal: Principal, keys: Sequence[SecretPageKey]
) -> list[Page[ApiSecretRecord]]:
    """Pages in the order of `keys`; one SQL statement per distinct page request and up to 64
    stores, on the request's connection. Off the event loop's own SQLite reader: api_secrets
    has no (store_pk, id) index, so a page reads every secret of the merchant."""
    scope = secret_scope_params(principal)
    groups: dict[PageRequest, list[int]] = defaultdict(list)
    for key in keys:
        if key.store_pk not in groups[key.request]:
            groups[key.request].append(key.store_pk)
    pages: dict[SecretPageKey, Page[ApiSecretRecord]] = {}
    for request, store_pks in groups.items():
        limit, backward, after, before = request.validated()
        params = {**scope, "after": after, "before": before, "limit": limit + 1}
        by_store: dict[int, list[ApiSecretRecord]] = defaultdict(list)
        for chunk in store_chunks(store_pks):
            shape = SecretPageShape(
                stores=len(chunk),
                own_store=_own_store(principal),
                after=after is not None,
                before=before is not None,
                backward=backward,
            )
            found = await _statement(shape).all(
                connection, on_loop=False, **params, **store_params(chunk)
            )
            for record in found:
                by_store[record.store_pk].append(record)
        for store_pk in store_pks:
            # in the direction of travel, whatever UNION ALL did
            rows = sorted(by_store.get(store_pk, []), key=_key, reverse=backward)
            pages[SecretPageKey(store_pk, request)] = page_from_rows(rows, request, _key)
    return [pages[key] for key in keys]


async def load_secret_counts(
    connection: AsyncConnection, principal: Principal, store_pks: Sequence[int]
) -> list[int]:
    """Store.apiSecrets' totalCount of each store, in the order given: one SQL statement per
    up to 64 stores, on the request's connection."""
    scope = secret_scope_params(principal)
    found: dict[int, int] = {}
    for chunk in store_chunks(list(dict.fromkeys(store_pks))):
        shape = SecretCountShape(stores=len(chunk), own_store=_own_store(principal))
        rows = await _count_statement(shape).all(
            connection, on_loop=False, **scope, **store_params(chunk)
        )
        found.update({row.store_pk: row.total for row in rows})
    return [found.get(store_pk, 0) for store_pk in store_pks]
