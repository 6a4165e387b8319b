"""Hot read paths: a SELECT compiled once, run straight on the driver connection.

Authentication reads one row on every request. Through SQLAlchemy's execution machinery that
read costs several times the rest of a small query (result-set set-up, cursor objects, and on
aiosqlite three trips to the connection's thread: execute, fetch, close). A `DriverQuery` is
compiled once per dialect by SQLAlchemy, binds and converts values with the columns' own
SQLAlchemy types, and runs in one driver call: `execute_fetchall` on aiosqlite (one trip),
`fetch` on asyncpg (a statement asyncpg prepares once per connection, or with
DB_STATEMENT_CACHE off an unnamed one parsed with each execution: see db.engine), on a pooled
connection of its own that goes straight back to the pool. On SQLite it is usually not even
that: see db.sqlite_reads.

A connection found broken is treated as SQLAlchemy treats one: every connection the pool
opened before it is replaced when next taken, and the error raised is a DBAPIError with
`connection_invalidated` (db.engine.database_unavailable).

Rows come by column name: as the NamedTuple `record` given, each field filled from the
selected column of that name (label the columns: `col(X.id).label("secret_id")`), or else as a
named tuple of the columns' names (`row.id_1` for a second `id`, as in `row._mapping`). Adding
a column never shifts what the others are read as.

Only for reads.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast, overload
from weakref import WeakKeyDictionary

from sqlalchemy import Select, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from db import sqlite_reads

Processor = Callable[[Any], Any] | None
StatementWatcher = Callable[[str], None]
R = TypeVar("R", bound=tuple[Any, ...])

# Who wants to hear of DriverQuery statements, by engine (see watch_statements).
_watchers: WeakKeyDictionary[Engine, list[StatementWatcher]] = WeakKeyDictionary()


def watch_statements(engine: AsyncEngine, watcher: StatementWatcher) -> Callable[[], None]:
    """Call `watcher` with the SQL of every statement run on `engine`, through SQLAlchemy or
    as a DriverQuery (which SQLAlchemy's events do not see). Returns what stops it."""

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        watcher(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    _watchers.setdefault(engine.sync_engine, []).append(watcher)

    def stop() -> None:
        event.remove(engine.sync_engine, "before_cursor_execute", on_execute)
        _watchers[engine.sync_engine].remove(watcher)

    return stop


def _named_row(names: tuple[str, ...]) -> type[Any]:
    """A named tuple of the columns' names (a second `id` is `id_1`, as in `row._mapping`; an
    expression without a label is `_<position>`)."""
    make: Callable[..., type[Any]] = namedtuple
    return make("DriverRow", names, rename=True)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    binds: tuple[tuple[str, Any, Processor], ...]  # name, default value, bind processor
    # (column index, result processor) of the columns that have one: a dashboard converts
    # thousands of values, most of them (integers, text) as the driver returned them.
    converting: tuple[tuple[int, Callable[[Any], Any]], ...]


class DriverQuery(Generic[R]):
    @overload
    def __init__(self: DriverQuery[Any], statement: Select[*tuple[Any, ...]]) -> None: ...
    @overload
    def __init__(self, statement: Select[*tuple[Any, ...]], record: type[R]) -> None: ...
    def __init__(self, statement: Select[*tuple[Any, ...]], record: type[Any] | None = None):
        self._statement = statement
        self._compiled: WeakKeyDictionary[Dialect, _Compiled] = WeakKeyDictionary()
        names = tuple(statement.selected_columns.keys())
        row_type = record if record is not None else _named_row(names)
        fields: tuple[str, ...] = row_type._fields
        if record is None:
            names = fields
        if sorted(fields) != sorted(names):
            raise ValueError(
                f"{row_type.__name__} has fields {fields}, the statement columns {names}: "
                "label the columns with the fields' names"
            )
        self._make: Callable[[Sequence[Any]], R] = row_type._make
        # Where each field's column is, when the columns are in another order.
        order = tuple(names.index(field) for field in fields)
        self._order = None if order == tuple(range(len(names))) else order

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self._statement.compile(dialect=dialect)
        names = compiled.positiontup or []
        binds = tuple(
            (
                name,
                compiled.binds[name].value,
                compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect),
            )
            for name in names
        )
        results = (
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in self._statement.selected_columns
        )
        converting = tuple(
            (index, process) for index, process in enumerate(results) if process is not None
        )
        found = _Compiled(sql=compiled.string, binds=binds, converting=converting)
        self._compiled[dialect] = found
        return found

    def _prepare(self, dialect: Dialect, params: dict[str, Any]) -> tuple[_Compiled, list[Any]]:
        compiled = self._compiled.get(dialect) or self._compile(dialect)
        args = []
        for name, default, process in compiled.binds:
            value = params.get(name, default)
            args.append(process(value) if process is not None else value)
        return compiled, args

    def _convert(self, compiled: _Compiled, rows: Sequence[Sequence[Any]]) -> list[R]:
        converting, make, order = compiled.converting, self._make, self._order
        found = []
        for row in rows:
            values = list(row)
            for index, process in converting:
                values[index] = process(values[index])
            found.append(make(values if order is None else [values[i] for i in order]))
        return found

    @staticmethod
    async def _run(
        dialect: Dialect, driver: Any, compiled: _Compiled, args: list[Any]
    ) -> Sequence[Sequence[Any]]:
        if dialect.name == "sqlite":
            rows: Sequence[Sequence[Any]] = await driver.execute_fetchall(compiled.sql, args)
            return rows
        return await driver.fetch(compiled.sql, *args)  # type: ignore[no-any-return]

    async def all(
        self, bind: AsyncEngine | AsyncConnection, *, on_loop: bool = True, **params: Any
    ) -> list[R]:
        """The rows.

        On SQLite, with `on_loop` (a bounded, indexed read), read on the event loop's thread
        unless SQLite is busy (db.sqlite_reads). Otherwise on `bind`: a connection the caller
        holds (a request's session keeps one: taking a second from the pool could wait for
        ever once every connection is held by a request waiting for a second), or, given an
        engine, a pooled connection of its own, returned at once.
        """
        engine = bind if isinstance(bind, AsyncEngine) else bind.engine
        dialect = engine.dialect
        compiled, args = self._prepare(dialect, params)
        for watcher in _watchers.get(engine.sync_engine, ()):
            watcher(compiled.sql)
        driver = None
        if isinstance(bind, AsyncConnection):
            held = await bind.get_raw_connection()
            driver = held.driver_connection
        # Not when the caller's connection is inside a transaction: it must read its own writes.
        if on_loop and dialect.name == "sqlite" and not getattr(driver, "in_transaction", False):
            found = sqlite_reads.read(engine, compiled.sql, args)
            if found is not None:
                return self._convert(compiled, found)
        if isinstance(bind, AsyncConnection):
            try:
                rows = await self._run(dialect, driver, compiled, args)
            except BaseException as error:
                # SQLAlchemy did not see this call (and a cancelled one may still be running):
                # the connection cannot be trusted, let SQLAlchemy replace it.
                disconnected = _invalidate_pool_if_disconnected(engine, held, error)
                await bind.invalidate()
                if disconnected:
                    raise _invalidated(compiled, error) from error
                raise
            return self._convert(compiled, rows)
        # The pool's connection itself, without a SQLAlchemy Connection around it.
        pooled = await greenlet_spawn(engine.sync_engine.raw_connection)
        try:
            rows = await self._run(dialect, pooled.driver_connection, compiled, args)
        except BaseException as error:
            disconnected = _invalidate_pool_if_disconnected(engine, pooled, error)
            await greenlet_spawn(pooled.invalidate)
            if disconnected:
                raise _invalidated(compiled, error) from error
            raise
        finally:
            await greenlet_spawn(pooled.close)
        return self._convert(compiled, rows)

    async def first(self, bind: AsyncEngine | AsyncConnection, **params: Any) -> R | None:
        rows = await self.all(bind, **params)
        return rows[0] if rows else None


def _invalidate_pool_if_disconnected(
    engine: AsyncEngine, connection: PoolProxiedConnection, error: BaseException
) -> bool:
    """Whether `error` left `connection` closed (the server restarted or the network broke);
    if so, every connection the pool opened before it is marked to be replaced when next
    taken, as SQLAlchemy's Connection does on a disconnect (the rest of that generation is
    most likely broken too, and each would otherwise fail one request of its own)."""
    if not isinstance(error, Exception):
        return False  # cancelled: the connection is replaced, the others are fine
    # The driver's own error, not the DBAPI adapter's: asyncpg's dialect asks the connection.
    if not engine.dialect.is_disconnect(cast(Any, error), connection.dbapi_connection, None):
        return False
    # What Connection._handle_dbapi_exception calls; the pool has no public equivalent.
    engine.sync_engine.pool._invalidate(connection, error, _checkin=False)
    return True


def _invalidated(compiled: _Compiled, error: BaseException) -> sa_exc.DBAPIError:
    """The error SQLAlchemy raises for a statement on a connection that broke."""
    return sa_exc.DBAPIError(compiled.sql, None, error, connection_invalidated=True)
