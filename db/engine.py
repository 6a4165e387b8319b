"""Async engine, session factory and write transactions for SQLite (aiosqlite) and PostgreSQL
(asyncpg)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from db.sqlite_cursor import OneTripConnection, set_statements_on_loop
from db.sqlite_dialect import DRIVER_NAME as LEAN_AIOSQLITE
from db.sqlite_dialect import LeanAiosqliteDialect, unicode_lower
from db.sqlite_writes import WriterTurns

SQLITE_BUSY_TIMEOUT_MS = 10_000
_SQLITE_IMMEDIATE = "sqlite_begin_immediate"
_SQLITE_SHORT = "sqlite_short_write"  # its statements on the loop's thread (db.sqlite_cursor)


def async_url(database_url: str) -> URL:
    """Accept plain `sqlite:///…` and `postgresql://…` URLs and pick the async driver."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername=LEAN_AIOSQLITE)
    if backend in {"postgresql", "postgres"}:
        url = url.set(drivername="postgresql+asyncpg")
        # Managed PostgreSQL hands out libpq URLs (`?sslmode=require`); asyncpg takes the same
        # modes (disable, allow, prefer, require, verify-ca, verify-full) as `ssl`.
        if "sslmode" in url.query and "ssl" not in url.query:
            url = url.update_query_dict({"ssl": url.query["sslmode"]}).difference_update_query(
                ["sslmode"]
            )
        return url
    raise ValueError(f"unsupported database backend {backend!r}: use sqlite or postgresql")


def json_loads(text: str) -> Any:
    """JSON columns as json.loads reads them, faster: a dashboard decodes the credentials of
    every channel it shows. orjson reads an integer of 2**64 or more, or below -2**63, as a
    float, so a document with a run of 19 digits goes to json.loads, as does what orjson
    refuses and the standard library reads (NaN, 1e400, lone surrogates: json.dumps, the
    writer, can produce each)."""
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


_LONG_DIGITS = re.compile(r"[0-9]{19}")


@dataclass(frozen=True)
class PoolOptions:
    """How many connections a process keeps and how it treats them (DB_POOL_* settings).

    A process holds at most `size + max_overflow` connections; several processes on one
    PostgreSQL must stay below its max_connections together (see the README's deployment)."""

    size: int = 10
    max_overflow: int = 10
    timeout_seconds: float = 30.0
    recycle_seconds: int = -1  # replace connections older than this when next taken; -1: never
    statement_cache: bool = True  # asyncpg's prepared statements; off behind PgBouncer


def create_engine(database_url: str, *, pool: PoolOptions | None = None) -> AsyncEngine:
    pool = pool or PoolOptions()
    url = async_url(database_url)
    # Connections kept open between requests: an aiosqlite connection is a thread and a few
    # PRAGMAs to set up, so a pool smaller than the usual concurrency would open and close
    # "overflow" connections over and over.
    kwargs: dict[str, Any] = {
        "pool_size": pool.size,
        "max_overflow": pool.max_overflow,
        "pool_timeout": pool.timeout_seconds,
        "pool_recycle": pool.recycle_seconds,
        "json_deserializer": json_loads,
        # A failed statement's error, which is logged, never shows its parameters: a webhook
        # attempt's body and signatures, hashes of passwords and API secrets, ciphers.
        "hide_parameters": True,
    }
    if url.get_backend_name() == "sqlite":
        # check_same_thread=False: statements of a write transaction run on the event loop's
        # thread, not aiosqlite's (db.sqlite_cursor); one at a time, never concurrently.
        kwargs["connect_args"] = {
            "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
            "check_same_thread": False,
        }
        if url.database in (None, "", ":memory:"):
            raise ValueError("an in-memory SQLite database is not shared between connections")
    else:
        # Reads run in autocommit (no BEGIN/ROLLBACK round trips per request); Tx.write and
        # independent_write open a READ COMMITTED transaction for every write. No pre-ping
        # either (a round trip per request): a dropped connection fails one request, and
        # SQLAlchemy (or db.driver_query) then replaces every connection the pool opened
        # before it, so after a server restart one request fails, not one per connection.
        kwargs["isolation_level"] = "AUTOCOMMIT"
        if not pool.statement_cache:
            kwargs["connect_args"] = _NO_NAMED_STATEMENTS
    engine = create_async_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    return engine


def _unnamed_statement() -> str:
    return ""


# Behind PgBouncer in transaction mode consecutive statements may run on different server
# connections, so none may rely on a statement prepared earlier on "its" connection. Without
# a cache asyncpg uses PostgreSQL's unnamed statement and parses it again in the same round
# trip as each execution (a DriverQuery's `fetch` too); SQLAlchemy's own cache of prepared
# statements is off, and the empty name keeps its `prepare()` on the unnamed statement
# (SQLAlchemy's documented recipe gives unique names instead, which still leaves named
# statements on the server). Costs a parse per statement.
_NO_NAMED_STATEMENTS: dict[str, Any] = {
    "statement_cache_size": 0,  # asyncpg's
    "prepared_statement_cache_size": 0,  # SQLAlchemy's asyncpg dialect's
    "prepared_statement_name_func": _unnamed_statement,
}


@cache
def _unavailable_driver_errors(postgresql: bool) -> tuple[type[BaseException], ...]:
    """Driver errors that say the server is away or going (restart, failover,
    max_connections) or the connection broke, rather than anything about the statement.
    asyncpg raises OSError when it cannot connect at all. asyncpg is imported only where a
    PostgreSQL engine has loaded it: a SQLite process never pays for it (2.6 MiB)."""
    if not postgresql:
        return (OSError,)
    import asyncpg  # type: ignore[import-untyped]

    return (
        OSError,
        asyncpg.PostgresConnectionError,  # SQLSTATE class 08
        asyncpg.AdminShutdownError,  # 57P01
        asyncpg.CrashShutdownError,  # 57P02
        asyncpg.CannotConnectNowError,  # 57P03: still starting up
        asyncpg.TooManyConnectionsError,  # 53300
    )


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` is the database being unavailable for the moment: no connection free
    in the pool within DB_POOL_TIMEOUT_SECONDS, the server unreachable or restarting, or the
    connection lost (after which SQLAlchemy, or a DriverQuery, replaces the pool's older
    connections). Of the moment: the same work may succeed shortly. Whether it may be sent
    again is another matter: a connection lost during COMMIT leaves it unknown whether the
    server applied it (gql_api.errors.masked_extensions says retryable only when no COMMIT of
    the request was sent)."""
    current: BaseException | None = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.TimeoutError):  # the pool's timeout
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, _unavailable_driver_errors("asyncpg" in sys.modules)):
            return True
        # SQLAlchemy's and its asyncpg adapter's errors are raised `from` the driver's.
        current = current.__cause__
    return False


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, open transactions, so BEGIN IMMEDIATE can be used.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        if isinstance(dbapi_connection, OneTripConnection):
            # WAL can be refused (some network file systems): then no statement may run on
            # the loop's thread, where it could wait for a lock (db.sqlite_cursor).
            dbapi_connection.in_wal = str(cursor.fetchone()[0]).lower() == "wal"
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        # SQLite's own lower() folds ASCII only; searches must match PostgreSQL's.
        dbapi_connection.run_async(
            lambda conn: conn.create_function("lower", 1, unicode_lower, deterministic=True)
        )

    turns = WriterTurns(SQLITE_BUSY_TIMEOUT_MS / 1000)
    if isinstance(engine.dialect, LeanAiosqliteDialect):
        engine.dialect.writer_turns = turns  # hands the turn on when a transaction ends

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Reads run in autocommit (no BEGIN/ROLLBACK round trips); writes take the write lock
        # up front with BEGIN IMMEDIATE (see Tx.write and independent_write), after waiting
        # for this process's turn (db.sqlite_writes: not in SQLite's busy handler).
        options = connection.get_execution_options()
        if options.get(_SQLITE_IMMEDIATE, False):
            dbapi_connection = connection.connection.dbapi_connection
            turns.take(dbapi_connection)
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                turns.give_back(dbapi_connection)
                raise
            set_statements_on_loop(dbapi_connection, options.get(_SQLITE_SHORT, False))


class Tx:
    """A unit of work's hold on the request's session, handed to an action by the transaction
    runner (gql_api.mutations), which alone commits it (when the action returns) or rolls it
    back (on any error).

    In order: reads on `db` (autocommit: no transaction, no lock); `await release()` before
    slow work (argon2, a wait), so that neither a transaction nor a connection is held
    meanwhile; then at most one `async with write() as db:` block, the unit's only write
    transaction. A rollback expires what was read, so read again inside the block what it
    changes, or release() first to keep what was read readable (detached).
    """

    def __init__(self, session: AsyncSession, engine: AsyncEngine) -> None:
        self._session = session
        self._write_begun = False
        # Only for the few writes that must commit on their own (see independent_write).
        self.engine = engine

    @property
    def db(self) -> AsyncSession:
        return self._session

    async def release(self) -> None:
        """Give the connection back to the pool before slow work, so requests queued behind
        that work do not hold connections other requests need. What was read stays readable,
        detached; the session takes a new connection when used again."""
        if self._write_begun:
            raise RuntimeError("release() inside or after the write: it would end it uncommitted")
        await self._session.close()

    @asynccontextmanager
    async def write(self, *, short: bool = False) -> AsyncIterator[AsyncSession]:
        """Begin the unit's write transaction; the runner commits it when the action returns.

        On SQLite a deferred transaction that read first and writes later fails at once with
        "database is locked" when another writer committed in between (the busy timeout does
        not apply to that upgrade), so writes start with BEGIN IMMEDIATE and wait their turn
        instead. On PostgreSQL the transaction is READ COMMITTED (reads run in autocommit).

        `short=True` promises that every statement of the block is an index lookup, a
        single-row write or a small bounded batch: on SQLite they then run on the event
        loop's thread while the transaction holds the write lock (db.sqlite_cursor). A scan
        in a short transaction would stop the whole process for its duration.
        """
        if self._write_begun:
            raise RuntimeError("one write transaction per unit of work")
        self._write_begun = True
        session = self._session
        if session.in_transaction():  # reads (autocommit) still hold the connection
            await session.rollback()
        await session.connection(execution_options=_write_options(session.bind, short=short))
        yield session


@asynccontextmanager
async def independent_write(
    engine: AsyncEngine, *, short: bool = False
) -> AsyncIterator[AsyncConnection]:
    """A short write transaction on a connection of its own, outside any request's session:
    it commits on its own when the block ends, whatever the request's transaction does.

    For the few writes that must stay although the request then fails (failed attempts
    counted, their audit events) or that happen where no unit of work runs (authentication,
    migrations); each caller says why. Never use it while the request's session holds a
    write transaction: on SQLite it would wait for that transaction, which waits for it.
    `short`: as for Tx.write.
    """
    async with engine.connect() as connection:
        connection = await connection.execution_options(**_write_options(engine, short=short))
        async with connection.begin():
            yield connection


def _write_options(bind: Any, *, short: bool) -> dict[str, Any]:
    """Execution options that make the next transaction a real write transaction."""
    if bind is not None and bind.dialect.name == "sqlite":
        return {_SQLITE_IMMEDIATE: True, _SQLITE_SHORT: short}
    return {"isolation_level": "READ COMMITTED"}


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
