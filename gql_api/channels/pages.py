"""One query for the channel pages of many stores (Store.channels without N+1).

Each store's page is its own keyset query (`store_pk = ? AND id > ? ORDER BY id LIMIT n`,
served by the (store_pk, id) index, as fast for page 100 as for page 1); the pages of several
stores are one statement, their queries joined with UNION ALL. Rows are plain column tuples,
not ORM objects: a dashboard reads hundreds of channels on every view.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, func, or_, union_all
from sqlalchemy import select as core_select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import Channel
from gql_api.channels.service import channel_scope
from gql_api.pagination import Page, PageRequest, page_from_rows
from gql_api.permissions import Principal

SEARCH_MAX_LENGTH = 100

# What a Channel shows (gql_api.channels.types.Channel.from_row reads them by name).
COLUMNS = (
    col(Channel.id),
    col(Channel.store_pk),
    col(Channel.channel_key),
    col(Channel.name),
    col(Channel.mode),
    col(Channel.pg_provider),
    col(Channel.module_code),
    col(Channel.purpose),
    col(Channel.pg_merchant_id),
    col(Channel.shared_test),
    col(Channel.tax_type),
    col(Channel.credentials),
    col(Channel.version),
    col(Channel.created_at),
    col(Channel.updated_at),
)

ChannelRecord = Row[*tuple[Any, ...]]


@dataclass(frozen=True)
class ChannelQuery:
    mode: str | None = None
    purpose: str | None = None
    pg_provider: str | None = None
    search: str | None = None


@dataclass(frozen=True)
class ChannelPageKey:
    store_pk: int
    query: ChannelQuery
    request: PageRequest


def _key(row: ChannelRecord) -> int:
    return int(row.id)


async def load_channel_pages(
    db: AsyncSession, principal: Principal, keys: Sequence[ChannelPageKey]
) -> list[Page[ChannelRecord]]:
    """Pages in the order of `keys`; one SQL statement per distinct (filter, page) shape."""
    groups: dict[tuple[ChannelQuery, PageRequest], list[int]] = defaultdict(list)
    for key in keys:
        if key.store_pk not in groups[(key.query, key.request)]:
            groups[(key.query, key.request)].append(key.store_pk)
    pages: dict[ChannelPageKey, Page[ChannelRecord]] = {}
    for (query, request), store_pks in groups.items():
        rows_by_store = await _fetch(db, principal, query, request, store_pks)
        for store_pk in store_pks:
            rows = rows_by_store.get(store_pk, [])
            pages[ChannelPageKey(store_pk, query, request)] = page_from_rows(rows, request, _key)
    return [pages[key] for key in keys]


def _conditions(principal: Principal, query: ChannelQuery) -> list[ColumnElement[bool]]:
    conditions = channel_scope(principal)
    if query.mode is not None:
        conditions.append(col(Channel.mode) == query.mode)
    if query.purpose is not None:
        conditions.append(col(Channel.purpose) == query.purpose)
    if query.pg_provider is not None:
        conditions.append(col(Channel.pg_provider) == query.pg_provider)
    if query.search:
        term = query.search.strip().lower()[:SEARCH_MAX_LENGTH]
        conditions.append(
            or_(
                func.lower(col(Channel.name)).contains(term, autoescape=True),
                func.lower(col(Channel.pg_merchant_id)).contains(term, autoescape=True),
                func.lower(col(Channel.channel_key)).contains(term, autoescape=True),
            )
        )
    return conditions


async def _fetch(
    db: AsyncSession,
    principal: Principal,
    query: ChannelQuery,
    request: PageRequest,
    store_pks: list[int],
) -> dict[int, list[ChannelRecord]]:
    limit, backward, after, before = request.validated()
    conditions = _conditions(principal, query)
    if after is not None:
        conditions.append(col(Channel.id) > after)
    if before is not None:
        conditions.append(col(Channel.id) < before)
    order = col(Channel.id).desc() if backward else col(Channel.id).asc()

    def page_of(store_pk: int) -> Select[*tuple[Any, ...]]:
        return (
            core_select(*COLUMNS)
            .where(*conditions, col(Channel.store_pk) == store_pk)
            .order_by(order)
            .limit(limit + 1)
        )

    if len(store_pks) == 1:
        statement = page_of(store_pks[0])
    else:
        parts = [page_of(pk).subquery() for pk in store_pks]
        statement = core_select(union_all(*(core_select(part) for part in parts)).subquery())
    rows = (await db.exec(statement)).all()  # type: ignore[call-overload]
    by_store: dict[int, list[ChannelRecord]] = defaultdict(list)
    for row in rows:
        by_store[row.store_pk].append(row)
    for found in by_store.values():  # in the direction of travel, whatever UNION ALL did
        found.sort(key=_key, reverse=backward)
    return by_store
