"""One query for the channel pages of many stores (Store.channels without N+1)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import Channel
from gql_api.channels.service import visible_channels
from gql_api.pagination import Page, PageRequest, page_from_rows
from gql_api.permissions import Principal

SEARCH_MAX_LENGTH = 100


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


def _key(row: Channel) -> int:
    assert row.id is not None
    return row.id


async def load_channel_pages(
    db: AsyncSession, principal: Principal, keys: Sequence[ChannelPageKey]
) -> list[Page[Channel]]:
    """Pages in the order of `keys`; one SQL statement per distinct (filter, page) shape."""
    groups: dict[tuple[ChannelQuery, PageRequest], list[int]] = defaultdict(list)
    for key in keys:
        groups[(key.query, key.request)].append(key.store_pk)
    pages: dict[ChannelPageKey, Page[Channel]] = {}
    for (query, request), store_pks in groups.items():
        rows_by_store = await _fetch(db, principal, query, request, store_pks)
        for store_pk in store_pks:
            rows = rows_by_store.get(store_pk, [])
            pages[ChannelPageKey(store_pk, query, request)] = page_from_rows(rows, request, _key)
    return [pages[key] for key in keys]


async def _fetch(
    db: AsyncSession,
    principal: Principal,
    query: ChannelQuery,
    request: PageRequest,
    store_pks: list[int],
) -> dict[int, list[Channel]]:
    limit, backward, after, before = request.validated()
    statement = visible_channels(principal).where(col(Channel.store_pk).in_(store_pks))
    if query.mode is not None:
        statement = statement.where(col(Channel.mode) == query.mode)
    if query.purpose is not None:
        statement = statement.where(col(Channel.purpose) == query.purpose)
    if query.pg_provider is not None:
        statement = statement.where(col(Channel.pg_provider) == query.pg_provider)
    if query.search:
        term = query.search.strip().lower()[:SEARCH_MAX_LENGTH]
        statement = statement.where(
            or_(
                func.lower(col(Channel.name)).contains(term, autoescape=True),
                func.lower(col(Channel.pg_merchant_id)).contains(term, autoescape=True),
                func.lower(col(Channel.channel_key)).contains(term, autoescape=True),
            )
        )
    if after is not None:
        statement = statement.where(col(Channel.id) > after)
    if before is not None:
        statement = statement.where(col(Channel.id) < before)
    order = col(Channel.id).desc() if backward else col(Channel.id).asc()
    position = func.row_number().over(partition_by=col(Channel.store_pk), order_by=order)
    ranked = statement.add_columns(position.label("position")).subquery()
    channel = aliased(Channel, ranked)
    final = (
        select(channel)
        .where(ranked.c.position <= limit + 1)
        .order_by(ranked.c.store_pk, ranked.c.position)
    )
    rows = (await db.exec(final)).all()
    by_store: dict[int, list[Channel]] = defaultdict(list)
    for row in rows:
        by_store[row.store_pk].append(row)
    return by_store
