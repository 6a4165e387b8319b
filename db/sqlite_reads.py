"""Small SQLite reads without leaving the event loop (authentication, dashboard channel pages).

With aiosqlite every statement is a trip to the connection's own thread and back, and under
load each trip costs the event loop more (queueing, waking the thread, handing the GIL back
and forth) than a small indexed read itself: the lookup of one row by a unique index in a WAL
database takes some 20 microseconds. So the reads that are known to be small run here, on a
plain `sqlite3` connection of the event loop's thread: authentication's one row on every
request, and the unfiltered channel pages of a dashboard (index lookups, at most a page per
store; a filtered or searched listing may scan a store and stays on aiosqlite):

- WAL readers never wait for writers, and this connection never waits at all (busy timeout
  0): if SQLite reports the database busy or locked, `read` returns None and the caller takes
  the usual asynchronous path instead;
- the connection is `query_only`: it cannot write, whatever it is given;
- it reads the latest committed data (each statement is its own read transaction).

Everything else, and all of PostgreSQL, stays on the asynchronous drivers.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from db.sqlite_dialect import unicode_lower

_BUSY = ("database is locked", "database is busy", "database table is locked")


class _Reader(threading.local):
    connection: sqlite3.Connection | None = None


_readers: WeakKeyDictionary[Engine, _Reader] = WeakKeyDictionary()


def _connection(engine: AsyncEngine) -> sqlite3.Connection:
    reader = _readers.get(engine.sync_engine)
    if reader is None:
        reader = _readers[engine.sync_engine] = _Reader()
    if reader.connection is None:
        database = engine.url.database
        assert database, "SQLite file path missing"
        connection = sqlite3.connect(database, timeout=0, isolation_level=None)
        connection.execute("PRAGMA query_only=ON")
        connection.create_function("lower", 1, unicode_lower, deterministic=True)
        reader.connection = connection
    return reader.connection


def read(engine: AsyncEngine, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]] | None:
    """The rows, or None when SQLite is busy (ask again asynchronously)."""
    try:
        return _connection(engine).execute(sql, args).fetchall()
    except sqlite3.OperationalError as error:
        if str(error).lower().startswith(_BUSY):
            return None
        raise


def close(engine: AsyncEngine) -> None:
    """Close this thread's reader of `engine` (others close when their engine is collected)."""
    reader = _readers.get(engine.sync_engine)
    if reader is not None and reader.connection is not None:
        reader.connection.close()
        reader.connection = None
