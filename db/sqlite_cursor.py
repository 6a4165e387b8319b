"""aiosqlite statements in one trip to the connection's thread instead of four.

aiosqlite runs each connection on a thread of its own, and SQLAlchemy's adapter makes four
trips there for one statement: open a cursor, execute, fetch the rows, close the cursor. A
trip is cheap on an idle process, but its answer comes back through the event loop's queue:
when the loop is busy (eight clients sending small queries), each trip waits behind a whole
iteration of other requests' callbacks, twice (the thread's answer, then the waiting task's
turn), and a `SELECT 1` took ~100 ms (bench: the log-ins of the argon2 burst spent seconds in
their few statements while their hashing thread sat idle, and a write transaction held
SQLite's write lock all that time).

`OneTripCursor` runs the four steps as one function on the connection's thread and keeps
what SQLAlchemy reads afterwards (the rows, `description`, `rowcount`, `lastrowid`): one
trip per statement. Server-side (streaming) cursors keep SQLAlchemy's own class: they fetch
as they go by design. Errors are the driver's own, raised from the same place as before.

In a *short* write transaction (`Tx.write(short=True)`, `independent_write(..., short=True)`:
the caller's promise that each statement is an index lookup, a single-row write or a small
bounded batch) no trip at all: the statement runs on the event loop's thread. Every
transaction here is a write transaction begun with BEGIN IMMEDIATE (reads run without one,
db.engine), so its connection holds SQLite's write lock: in WAL mode a statement then waits
for no lock (readers never block the writer) and a short one takes microseconds, while two
loop iterations per statement kept the lock held, and every other writer of the process
waiting, for tens of milliseconds per statement on a busy loop (twenty log-ins' write
transactions took seconds). Other write transactions keep going to the thread: a scan there
(a retention prune over millions of rows) must not stop the loop. Nor does a database whose
journal is not WAL (`in_wal`, checked at connect) run anything on the loop: there a writer
can need another lock mid-transaction and wait in the busy handler. BEGIN IMMEDIATE itself,
which may wait for another process's writer, and COMMIT still go to the thread. The
connection is opened with `check_same_thread=False` for this; it is used by one task at a
time, so never by both threads at once.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

_Outcome = tuple[Any, list[Any], int, int | None]  # description, rows, rowcount, lastrowid


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """On the connection's thread: the whole statement, the cursor closed afterwards."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, () if parameters is None else parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


async def _ready(outcome: _Outcome) -> _Outcome:
    """Passed through SQLAlchemy's greenlet bridge without suspending (no loop iteration): its
    asyncio layer requires each execution to have awaited something (AwaitRequired)."""
    return outcome


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's aiosqlite cursor, each statement one trip to the connection's thread."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]  # no driver cursor is kept
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1  # sqlite3's default: what fetchmany() without a size returns

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        return super().fetchmany(self._arraysize if size is None else size)

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    async def _async_soft_close(self) -> None:
        """Nothing to close: the statement's cursor was closed on the thread."""

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        self._trip(operation, parameters, many=False)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        self._trip(operation, seq_of_parameters, many=True)

    def _trip(self, operation: Any, parameters: Any, *, many: bool) -> None:
        driver = self._connection  # aiosqlite.Connection
        try:
            adapted = self._adapt_connection
            on_loop = isinstance(adapted, OneTripConnection) and adapted.statements_on_loop
            if on_loop and driver._conn.in_transaction:
                # A short write transaction (see the module): this connection holds SQLite's
                # write lock, so the statement waits for nothing and takes microseconds; run
                # here, it holds the lock that much, not two loop iterations per statement.
                outcome = await_(_ready(_run(driver._conn, operation, parameters, many)))
            else:
                outcome = await_(self._in_thread(operation, parameters, many))
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)

    async def _in_thread(self, operation: Any, parameters: Any, many: bool) -> _Outcome:
        driver = self._connection  # aiosqlite.Connection
        async with self._adapt_connection._execute_mutex:
            # aiosqlite's own way of running a function on the connection's thread (what its
            # cursors do); SQLAlchemy's adapter reaches into the same queue for isolation_level.
            outcome: _Outcome = await driver._execute(
                _run, driver._conn, operation, parameters, many
            )
            return outcome


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """`in_wal`: the database's journal is WAL (set at connect); `statements_on_loop`: the
    short write transaction now open runs its statements on the loop's thread (set at its
    BEGIN, cleared when it ends)."""

    __slots__ = ("_statements_on_loop", "in_wal")
    _cursor_cls = OneTripCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self.in_wal = False
        self._statements_on_loop = False

    @property
    def statements_on_loop(self) -> bool:
        return self._statements_on_loop

    @statements_on_loop.setter
    def statements_on_loop(self, value: bool) -> None:
        self._statements_on_loop = value and self.in_wal


def on_loop(dbapi_connection: Any) -> sqlite3.Connection | None:
    """The sqlite3 connection under `dbapi_connection` (the DBAPI connection or the pool's proxy
    of it) when a short write transaction is open on it (see the module): its statements may
    then run on the loop's thread, straight on sqlite3 (db.driver_query.DriverStatement)."""
    connection = getattr(dbapi_connection, "dbapi_connection", None) or dbapi_connection
    if isinstance(connection, OneTripConnection) and connection.statements_on_loop:
        driver: sqlite3.Connection = connection._connection._conn
        if driver.in_transaction:
            return driver
    return None


def run_on_loop(
    connection: sqlite3.Connection, operation: str, parameters: Any, *, many: bool
) -> list[Any]:
    """Run a statement of a short write transaction here (on_loop); the rows it returned."""
    return _run(connection, operation, parameters, many)[1]


def set_statements_on_loop(dbapi_connection: Any, value: bool) -> None:
    """For the short write transaction beginning (True) or ending (False) on
    `dbapi_connection` (the DBAPI connection or the pool's proxy of it)."""
    connection = getattr(dbapi_connection, "dbapi_connection", None) or dbapi_connection
    if isinstance(connection, OneTripConnection):
        connection.statements_on_loop = value


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DBAPI, its connections handing out `OneTripCursor`s."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)
