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

DriverQuery is only for reads. A write transaction's hot statements have DriverStatement
(below): in the caller's transaction.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast, overload
from weakref import WeakKeyDictionary

from sqlalchemy import Insert, Select, Update, bindparam, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.expression import Executable
from sqlalchemy.util import greenlet_spawn

from db import sqlite_cursor, sqlite_reads

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
                    raise _invalidated(compiled.sql, error) from error
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
                raise _invalidated(compiled.sql, error) from error
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


def _invalidated(sql: str, error: BaseException) -> sa_exc.DBAPIError:
    """The error SQLAlchemy raises for a statement on a connection that broke."""
    return sa_exc.DBAPIError(sql, None, error, connection_invalidated=True)


@dataclass(frozen=True)
class _Shape:
    """A DriverStatement compiled for one dialect and one length of each list parameter."""

    sql: str
    # Each positional parameter: the value's name in the flattened parameters, its value when
    # none is given (one the statement holds), and the bind processor of its type (a list's
    # items take the list parameter's).
    binds: tuple[tuple[str, Any, Processor], ...]
    converting: tuple[tuple[int, Callable[[Any], Any]], ...]  # as _Compiled's


Params = Mapping[str, Any]
_REQUIRED: Any = object()  # a parameter's default when it has none: it must be given

# Rows of an INSERT per statement, at most. A shape is kept for the process's life, and an
# INSERT's costs ~0.7 ms of CPU to compile and ~3 KiB to keep per row (16 columns): a shape
# for every row count would cost a worker claiming up to 2000 attempts at once
# (WEBHOOK_WORKER_CONCURRENCY=1000) up to 1.4 s of its event loop for each new count, and
# gigabytes in all. Pages keep it to the counts 1-32 (a claim at the default concurrency, 16,
# fits in one) and every page far below PostgreSQL's 32767 parameters; list parameters are
# rendered for a power of two (a dozen shapes up to 2048 items) for the same reason.
_INSERT_PAGE = 32


class DriverStatement:
    """A statement of a write transaction's hot path (a locking SELECT, an UPDATE run for a
    batch of rows, an INSERT … RETURNING of several rows), run in the caller's transaction.

    On PostgreSQL it runs straight on asyncpg (`fetch`, or `executemany` for a batch of
    UPDATEs), compiled by SQLAlchemy once per shape: ~0.12 ms of CPU a statement where
    SQLAlchemy's execution layer cost ~0.39 (a delivery worker's cycle runs seven of them, and
    the worker is bound by its CPU). Values are bound and results converted by the columns'
    own SQLAlchemy types, as DriverQuery does; a parameter without a value is refused, as
    SQLAlchemy refuses it. List parameters (`lists`: expanding bindparams, `IN :pks`) are
    rendered for their length rounded up to a power of two, the last item repeated
    (`IN ($1, $2, $3, $3)`); an INSERT given several rows becomes a multi-row VALUES per page
    of up to _INSERT_PAGE rows (SQLAlchemy's own "insertmanyvalues" does the same, in pages of
    1000): the shapes compiled and kept stay few (see _INSERT_PAGE). The transaction must have
    begun on the server: SQLAlchemy's asyncpg adapter sends BEGIN with the transaction's first
    statement, so a statement that would be the first runs through SQLAlchemy, which begins it
    (the driver's `is_in_transaction`).

    On SQLite, in a short write transaction (whose statements run on the event loop's thread:
    db.sqlite_cursor), it runs straight on sqlite3 there; in any other transaction through
    SQLAlchemy (to the connection's thread, where a long statement does not stop the loop).

    Rows come as tuples (Row objects on SQLite): read them by position. Errors are the
    driver's own, except a lost connection: a DBAPIError with `connection_invalidated`, as
    SQLAlchemy raises (the pool then replaces the connections it had opened before). Watchers
    (watch_statements) hear of every statement, a batch counting as one, as with SQLAlchemy.
    """

    def __init__(self, statement: Executable, *, lists: tuple[str, ...] = ()) -> None:
        self._statement = statement
        self._lists = lists
        # Columns SQLAlchemy fills from a Python-side default (an INSERT) or on update (an
        # UPDATE) when it executes a statement: this runs without its execution.
        table = getattr(statement, "table", None)
        self._defaulted: frozenset[str] = frozenset()
        if isinstance(statement, Insert) and table is not None:
            self._defaulted = frozenset(c.key for c in table.c if c.default is not None)
        if isinstance(statement, Update) and table is not None:
            updated = [c.key for c in table.c if c.onupdate is not None]
            if updated:
                raise ValueError(f"{updated}: columns set on update are not supported")
        self._shapes: WeakKeyDictionary[Dialect, dict[tuple[Any, ...], _Shape]] = (
            WeakKeyDictionary()
        )

    @property
    def statement(self) -> Executable:
        """The statement as SQLAlchemy runs it."""
        return self._statement

    async def run(
        self, connection: AsyncConnection, params: Params | Sequence[Params]
    ) -> Sequence[Sequence[Any]]:
        """Run with `params` (one set, or a batch: an UPDATE's executemany, an INSERT's rows);
        the rows returned, if any."""
        batch = not isinstance(params, Mapping)
        if batch and not params:
            return []  # (SQLAlchemy would run it once, without parameters)
        dialect = connection.dialect
        held = await connection.get_raw_connection()
        driver: Any = held.driver_connection
        rows: Sequence[Params] = ()
        if isinstance(self._statement, Insert):  # refused on every database alike
            rows = [cast(Params, params)] if not batch else cast(Sequence[Params], params)
            for row in rows:
                if missing := self._defaulted - row.keys():
                    raise ValueError(f"{sorted(missing)}: give every row a value for each")
                if row.keys() != rows[0].keys():
                    raise ValueError("every row of an INSERT needs the same columns")
        here = sqlite_cursor.on_loop(held) if dialect.name == "sqlite" else None
        if here is None and (dialect.name != "postgresql" or not driver.is_in_transaction()):
            result = await connection.execute(self._statement, params)
            return result.all() if result.returns_rows else []
        steps: list[tuple[_Shape, list[list[Any]]]] = []
        if rows:  # one INSERT per page of rows (see _INSERT_PAGE)
            for start in range(0, len(rows), _INSERT_PAGE):
                page = rows[start : start + _INSERT_PAGE]
                shape = self._shape(dialect, rows=page)
                flat = {
                    f"r{i}_{name}": value
                    for i, row in enumerate(page)
                    for name, value in row.items()
                }
                steps.append((shape, [_args(shape, flat)]))
        elif batch:
            sets = cast(Sequence[Params], params)
            lengths = self._lengths(sets[0])
            shape = self._shape(dialect, lengths=lengths)
            steps.append(
                (shape, [_args(shape, _flattened(one, self._lists, lengths)) for one in sets])
            )
        else:
            one = cast(Params, params)
            lengths = self._lengths(one)
            shape = self._shape(dialect, lengths=lengths)
            steps.append((shape, [_args(shape, _flattened(one, self._lists, lengths))]))
        found: list[tuple[Any, ...]] = []
        for shape, calls in steps:
            found.extend(await self._execute(connection, held, here, shape, calls))
        return found

    @staticmethod
    async def _execute(
        connection: AsyncConnection,
        held: PoolProxiedConnection,
        here: Any,
        shape: _Shape,
        calls: list[list[Any]],
    ) -> list[tuple[Any, ...]]:
        for watcher in _watchers.get(connection.engine.sync_engine, ()):
            watcher(shape.sql)
        many = len(calls) > 1
        if here is not None:  # waits for nothing: the transaction holds the write lock
            return _converted(
                shape,
                sqlite_cursor.run_on_loop(here, shape.sql, calls if many else calls[0], many=many),
            )
        driver: Any = held.driver_connection
        try:
            if many:
                await driver.executemany(shape.sql, calls)
                return []
            found: Sequence[Sequence[Any]] = await driver.fetch(shape.sql, *calls[0])
        except BaseException as error:
            # SQLAlchemy did not see this call. A lost connection, or a cancelled call (which
            # may still be running), leaves it untrustworthy: SQLAlchemy replaces it. After
            # any other error the connection is sound; the caller's rollback ends the transaction.
            disconnected = _invalidate_pool_if_disconnected(connection.engine, held, error)
            if disconnected or not isinstance(error, Exception):
                await connection.invalidate()
            if disconnected:
                raise _invalidated(shape.sql, error) from error
            raise
        return _converted(shape, found)

    def _lengths(self, params: Params) -> tuple[int, ...]:
        """The length each list parameter is rendered for: its own, rounded up to a power of
        two (see _INSERT_PAGE)."""
        return tuple(_rounded_up(len(params[name])) for name in self._lists)

    def _shape(
        self,
        dialect: Dialect,
        *,
        lengths: tuple[int, ...] = (),
        rows: Sequence[Params] = (),
    ) -> _Shape:
        # An INSERT's shapes are by its columns and row count, the others' by their lists' lengths.
        key = (len(rows), *rows[0]) if rows else lengths
        shapes = self._shapes.setdefault(dialect, {})
        found = shapes.get(key)
        if found is None:
            found = shapes[key] = self._compile(dialect, lengths, rows)
        return found

    def _compile(
        self, dialect: Dialect, lengths: tuple[int, ...], rows: Sequence[Params]
    ) -> _Shape:
        statement: Any = self._statement
        if rows:
            table = statement.table
            statement = statement.values(
                [
                    {name: bindparam(f"r{i}_{name}", type_=table.c[name].type) for name in row}
                    for i, row in enumerate(rows)
                ]
            )
        elif self._lists:
            statement = statement.params(
                {name: [None] * length for name, length in zip(self._lists, lengths, strict=True)}
            )
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        given = {f"r{i}_{name}" for i, row in enumerate(rows) for name in row}
        binds = []
        for name in compiled.positiontup or []:
            bind = compiled.binds.get(name)
            if rows and name not in given:
                # A column left out, that SQLAlchemy would fill from its Python-side default
                # when executing: this runs without SQLAlchemy's execution.
                raise ValueError(f"{name!r}: give every row a value for each column written")
            if bind is not None and bind.callable is not None:
                raise ValueError(f"{name!r}: a value computed when run is not supported")
            # A parameter the statement holds no value for must be given, as SQLAlchemy
            # requires (a missing one would otherwise be bound as NULL).
            default = None if bind is None else _REQUIRED if bind.required else bind.value
            if bind is None:  # an item of a list parameter: `pks_1` of `pks`
                base = name.rpartition("_")[0]
                if base not in self._lists:
                    raise ValueError(f"{name!r}: not a parameter of {statement}")
                bind = compiled.binds[base]
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            binds.append((name, default, processor))
        results = (
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in getattr(self._statement, "exported_columns", ())
        )
        converting = tuple(
            (index, process) for index, process in enumerate(results) if process is not None
        )
        return _Shape(sql=compiled.string, binds=tuple(binds), converting=converting)


def _flattened(params: Params, lists: tuple[str, ...], lengths: tuple[int, ...]) -> Params:
    """`params` with each list parameter's items under their rendered names (`pks_1`, …),
    the last repeated up to the length rendered (`IN` ignores a value given twice)."""
    if not lists:
        return params
    flat = dict(params)
    for name, length in zip(lists, lengths, strict=True):
        items = list(flat.pop(name))
        items += items[-1:] * (length - len(items))
        for index, value in enumerate(items, start=1):
            flat[f"{name}_{index}"] = value
    return flat


def _rounded_up(length: int) -> int:
    return 0 if length == 0 else 1 << (length - 1).bit_length()


def _args(shape: _Shape, params: Params) -> list[Any]:
    args = []
    for name, default, process in shape.binds:
        value = params.get(name, default)
        if value is _REQUIRED:
            raise sa_exc.InvalidRequestError(f"A value is required for bind parameter {name!r}")
        args.append(process(value) if process is not None else value)
    return args


def _converted(shape: _Shape, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    if not shape.converting:
        return [tuple(row) for row in rows]
    found = []
    for row in rows:
        values = list(row)
        for index, process in shape.converting:
            values[index] = process(values[index])
        found.append(tuple(values))
    return found
