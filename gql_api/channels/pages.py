"""One query for the channel pages of many stores (Store.channels without N+1), and one for
their totalCounts.

Each store's page is its own keyset query (`store_pk = ? AND id > ? ORDER BY id LIMIT n`,
served by the (store_pk, id) index, as fast for page 100 as for page 1); the pages of several
stores are one statement, their queries joined with UNION ALL. A dashboard reads hundreds of
channels on every view, so the statement of each shape is built once and run straight on the
driver (db.driver_query), and rows are named tuples (ChannelRecord), not ORM objects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple, overload
from weakref import WeakKeyDictionary

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    String,
    Table,
    bindparam,
    func,
    or_,
    type_coerce,
    union_all,
)
from sqlalchemy import select as core_select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import NullType
from sqlmodel import col

from db.driver_query import DriverQuery
from db.models import Channel
from db.store_batches import StoreCount, store_binds, store_chunks, store_params
from gql_api.channels.service import (
    bound_channel_scope,
    channel_scope_params,
)
from gql_api.pagination import Page, PageRequest, page_from_rows
from gql_api.permissions import Operation, Principal, confined_store_pk

SEARCH_MAX_LENGTH = 100


class ChannelRecord(NamedTuple):
    """What a Channel shows of a row (Channel.from_row reads it by name); its fields name the
    columns read (COLUMNS), and rows are read back by those names."""

    id: int
    store_pk: int
    channel_key: str
    name: str
    mode: str
    pg_provider: str
    module_code: str
    purpose: str
    pg_merchant_id: str
    shared_test: bool
    tax_type: str
    credentials: dict[str, dict[str, str]]
    version: int
    created_at: datetime
    updated_at: datetime


COLUMNS = tuple(col(getattr(Channel, name)) for name in ChannelRecord._fields)
# The same columns read as the driver returns them: a page statement's rows are converted
# (JSON credentials, timestamps: ~0.3 ms for 20 rows) store by store, as each store's page is
# used (_Stored), not all at once when the batch is read: a dashboard's 220 rows were ~4 ms
# of one loop callback.
STORED_COLUMNS = tuple(
    type_coerce(column, NullType()).label(name)
    for name, column in zip(ChannelRecord._fields, COLUMNS, strict=True)
)


class _Stored(Sequence[ChannelRecord]):
    """A store's page rows as read, converted to ChannelRecords (with the columns' own
    SQLAlchemy result processors, as db.driver_query would) when first looked at."""

    def __init__(self, rows: list[Any], dialect: Dialect) -> None:
        self._rows = rows
        self._dialect = dialect
        self._records: list[ChannelRecord] | None = None

    def _converted(self) -> list[ChannelRecord]:
        if self._records is None:
            converting = _converting(self._dialect)
            records = []
            for row in self._rows:
                values = list(row)
                for index, process in converting:
                    values[index] = process(values[index])
                records.append(ChannelRecord._make(values))
            self._records = records
        return self._records

    @overload
    def __getitem__(self, index: int) -> ChannelRecord: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[ChannelRecord]: ...
    def __getitem__(self, index: int | slice) -> ChannelRecord | Sequence[ChannelRecord]:
        return self._converted()[index]

    def __iter__(self) -> Iterator[ChannelRecord]:
        return iter(self._converted())

    def __len__(self) -> int:
        return len(self._rows)


_TABLE: Table = Channel.__table__  # type: ignore[attr-defined]
_processors: WeakKeyDictionary[Dialect, tuple[tuple[int, Callable[[Any], Any]], ...]] = (
    WeakKeyDictionary()
)


def _converting(dialect: Dialect) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """(field index, result processor) of ChannelRecord's columns that have one."""
    found = _processors.get(dialect)
    if found is None:
        processors = (
            _TABLE.columns[name].type.dialect_impl(dialect).result_processor(dialect, None)
            for name in ChannelRecord._fields
        )
        found = _processors[dialect] = tuple(
            (index, process) for index, process in enumerate(processors) if process is not None
        )
    return found


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


@dataclass(frozen=True)
class ChannelCountKey:
    """How many channels of a store a listing with `query` shows on all its pages."""

    store_pk: int
    query: ChannelQuery


def _key(row: Any) -> int:
    key: int = row.id
    return key


async def load_channel_pages(
    connection: AsyncConnection, principal: Principal, keys: Sequence[ChannelPageKey]
) -> list[Page[ChannelRecord]]:
    """Pages in the order of `keys`; one SQL statement per distinct (filter, page) shape and
    up to 64 stores, on the request's connection (db.driver_query)."""
    groups: dict[tuple[ChannelQuery, PageRequest], list[int]] = defaultdict(list)
    for key in keys:
        if key.store_pk not in groups[(key.query, key.request)]:
            groups[(key.query, key.request)].append(key.store_pk)
    pages: dict[ChannelPageKey, Page[ChannelRecord]] = {}
    for (query, request), store_pks in groups.items():
        rows_by_store = await _fetch(connection, principal, query, request, store_pks)
        for store_pk in store_pks:
            page = page_from_rows(rows_by_store.get(store_pk, []), request, _key)
            stored = _Stored(list(page.rows), connection.dialect)
            pages[ChannelPageKey(store_pk, query, request)] = replace(page, rows=stored)
    return [pages[key] for key in keys]


@dataclass(frozen=True)
class ChannelPageShape:
    """What makes one page statement differ from another (values are bound parameters)."""

    stores: int  # one of db.store_batches.STORE_BUCKETS
    own_store: bool
    mode: bool
    purpose: bool
    pg_provider: bool
    search: bool
    after: bool
    before: bool
    backward: bool

    @property
    def bounded(self) -> bool:
        """Only index lookups of at most a page per store: cheap enough for the event loop's
        own SQLite reader (db.sqlite_reads). A filter or a search may scan a whole store."""
        return not (self.mode or self.purpose or self.pg_provider or self.search)


@dataclass(frozen=True)
class ChannelCountShape:
    """What makes one count statement differ from another (values are bound parameters)."""

    stores: int  # one of db.store_batches.STORE_BUCKETS
    own_store: bool
    mode: bool
    purpose: bool
    pg_provider: bool
    search: bool


_ESCAPE = "\\"


# Statements by shape, least recently used dropped first: a dashboard asks the same shapes on
# every view.
@lru_cache(maxsize=256)
def _statement(shape: ChannelPageShape) -> DriverQuery[Any]:
    scope = bound_channel_scope(shape.own_store, one_store=True)
    return DriverQuery(_build(shape, scope))


@lru_cache(maxsize=64)
def _count_statement(shape: ChannelCountShape) -> DriverQuery[StoreCount]:
    """Per store, how many channels the page statements of the same filters list in all."""
    conditions = _conditions(shape, bound_channel_scope(shape.own_store))
    return DriverQuery(
        core_select(col(Channel.store_pk).label("store_pk"), func.count().label("total"))
        .where(*conditions, col(Channel.store_pk).in_(store_binds(shape.stores)))
        .group_by(col(Channel.store_pk)),
        StoreCount,
    )


def _conditions(
    shape: ChannelPageShape | ChannelCountShape, scope: list[ColumnElement[bool]]
) -> list[ColumnElement[bool]]:
    """The caller's scope and the listing's filters: what pages and counts have in common."""
    conditions = list(scope)
    if shape.mode:
        conditions.append(col(Channel.mode) == bindparam("mode"))
    if shape.purpose:
        conditions.append(col(Channel.purpose) == bindparam("purpose"))
    if shape.pg_provider:
        conditions.append(col(Channel.pg_provider) == bindparam("pg_provider"))
    if shape.search:
        term = bindparam("search", type_=String())
        conditions.append(
            or_(
                func.lower(col(Channel.name)).contains(term, escape=_ESCAPE),
                func.lower(col(Channel.pg_merchant_id)).contains(term, escape=_ESCAPE),
                func.lower(col(Channel.channel_key)).contains(term, escape=_ESCAPE),
            )
        )
    return conditions


def _build(shape: ChannelPageShape, scope: list[ColumnElement[bool]]) -> Select[*tuple[Any, ...]]:
    conditions = _conditions(shape, scope)
    if shape.after:
        conditions.append(col(Channel.id) > bindparam("after"))
    if shape.before:
        conditions.append(col(Channel.id) < bindparam("before"))
    order = col(Channel.id).desc() if shape.backward else col(Channel.id).asc()
    limit = bindparam("limit", type_=Integer())

    def page_of(store: BindParameter[int]) -> Select[*tuple[Any, ...]]:
        return (
            core_select(*STORED_COLUMNS)
            .where(*conditions, col(Channel.store_pk) == store)
            .order_by(order)
            .limit(limit)
        )

    stores = store_binds(shape.stores)
    if shape.stores == 1:
        return page_of(stores[0])
    parts = [page_of(store).subquery() for store in stores]
    return core_select(union_all(*(core_select(part) for part in parts)).subquery())


def _escaped(term: str) -> str:
    """A LIKE pattern matching `term` literally (what autoescape=True would do)."""
    return (
        term.replace(_ESCAPE, _ESCAPE * 2).replace("%", _ESCAPE + "%").replace("_", _ESCAPE + "_")
    )


async def _fetch(
    connection: AsyncConnection,
    principal: Principal,
    query: ChannelQuery,
    request: PageRequest,
    store_pks: list[int],
) -> dict[int, list[Any]]:
    """Each store's rows, as the driver returned them (see STORED_COLUMNS)."""
    limit, backward, after, before = request.validated()
    own_store = confined_store_pk(principal, Operation.READ) is not None
    search = _search_term(query)
    params: dict[str, Any] = {
        **_filter_params(principal, query),
        "after": after,
        "before": before,
        "limit": limit + 1,
    }
    by_store: dict[int, list[Any]] = defaultdict(list)
    for chunk in store_chunks(store_pks):
        shape = ChannelPageShape(
            stores=len(chunk),
            own_store=own_store,
            mode=query.mode is not None,
            purpose=query.purpose is not None,
            pg_provider=query.pg_provider is not None,
            search=bool(search),
            after=after is not None,
            before=before is not None,
            backward=backward,
        )
        statement = _statement(shape)
        stores = store_params(chunk)
        for row in await statement.all(connection, on_loop=shape.bounded, **params, **stores):
            by_store[row.store_pk].append(row)
    for found in by_store.values():  # in the direction of travel, whatever UNION ALL did
        found.sort(key=_key, reverse=backward)
    return by_store


def _search_term(query: ChannelQuery) -> str:
    return query.search.strip().lower()[:SEARCH_MAX_LENGTH] if query.search else ""


def _filter_params(principal: Principal, query: ChannelQuery) -> dict[str, Any]:
    return {
        **channel_scope_params(principal),
        "mode": query.mode,
        "purpose": query.purpose,
        "pg_provider": query.pg_provider,
        "search": _escaped(_search_term(query)),
    }


async def load_channel_counts(
    connection: AsyncConnection, principal: Principal, keys: Sequence[ChannelCountKey]
) -> list[int]:
    """Counts in the order of `keys`; one SQL statement per distinct filter and up to 64
    stores, on the request's connection. A count reads every channel of its store that the
    filters keep (not a page): off the event loop's own SQLite reader."""
    groups: dict[ChannelQuery, list[int]] = defaultdict(list)
    for key in keys:
        if key.store_pk not in groups[key.query]:
            groups[key.query].append(key.store_pk)
    own_store = confined_store_pk(principal, Operation.READ) is not None
    counts: dict[ChannelCountKey, int] = {}
    for query, store_pks in groups.items():
        params = _filter_params(principal, query)
        found: dict[int, int] = {}
        for chunk in store_chunks(store_pks):
            shape = ChannelCountShape(
                stores=len(chunk),
                own_store=own_store,
                mode=query.mode is not None,
                purpose=query.purpose is not None,
                pg_provider=query.pg_provider is not None,
                search=bool(_search_term(query)),
            )
            rows = await _count_statement(shape).all(
                connection, on_loop=False, **params, **store_params(chunk)
            )
            found.update({row.store_pk: row.total for row in rows})
        for store_pk in store_pks:
            counts[ChannelCountKey(store_pk, query)] = found.get(store_pk, 0)
    return [counts[key] for key in keys]
