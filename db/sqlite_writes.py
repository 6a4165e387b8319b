"""SQLite: the write transactions of one process take turns on the event loop.

SQLite has one write lock per database. A connection that asks for it while another holds it
waits in SQLite's busy handler, which polls: Python's sqlite3 sleeps 1, 2, 5, 10, ... then
100 ms at a time between tries, so a writer that arrives just after another began may sleep a
hundred milliseconds after the lock came free, and a newcomer may take the lock before it
(no order among the waiters). With the API's intake and the embedded delivery worker writing
in one process, deliveries stalled in bursts of seconds (the embedded-worker latency row of
`make bench`: p99 about 2 s at 50 events/s).

So before BEGIN IMMEDIATE a connection waits for its process's turn (`WriterTurns`): one
asyncio lock per engine and event loop, first come first served, handed on the moment the
holder's COMMIT or ROLLBACK returns. Writers of other processes still meet in SQLite's busy
handler, as before. The wait for a turn is bounded by the busy timeout, like SQLite's own
wait, and fails the same way ("database is locked"), so a transaction held open too long
fails its waiters as it did before, rather than hanging them.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import exc as sa_exc
from sqlalchemy.util.concurrency import await_, in_greenlet


class WriterTurns:
    """Who holds this process's write turn on one SQLite database (per event loop)."""

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self._locks: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            WeakKeyDictionary()
        )
        # _key(connection) -> the connection (kept alive: its id is not reused meanwhile), the
        # lock it holds and that lock's loop
        self._held: dict[int, tuple[Any, asyncio.Lock, asyncio.AbstractEventLoop]] = {}

    def take(self, dbapi_connection: Any) -> None:
        """Wait for the turn of `dbapi_connection` (called in SQLAlchemy's greenlet, just
        before BEGIN IMMEDIATE); outside an event loop's greenlet there is nothing to wait
        with, and SQLite's busy handler alone decides, as before."""
        if not in_greenlet():
            return
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        await_(self._acquire(lock))
        self._held[_key(dbapi_connection)] = (dbapi_connection, lock, loop)

    async def _acquire(self, lock: asyncio.Lock) -> None:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await lock.acquire()
        except TimeoutError:
            raise sa_exc.OperationalError(
                "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
            ) from None

    def give_back(self, dbapi_connection: Any) -> None:
        """The transaction of `dbapi_connection` ended (or never began): the next writer's
        turn. Nothing happens for a connection that holds no turn."""
        held = self._held.pop(_key(dbapi_connection), None)
        if held is None:
            return
        _, lock, loop = held
        if _running_loop() is loop:
            lock.release()
        elif not loop.is_closed():
            # Elsewhere (the garbage collector terminating a dropped connection on another
            # thread): an asyncio lock is released on its own loop's thread only.
            loop.call_soon_threadsafe(lock.release)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _key(connection: Any) -> int:
    """The DBAPI connection behind `connection`: SQLAlchemy hands the dialect either it or
    the pool's proxy of it."""
    return id(getattr(connection, "dbapi_connection", None) or connection)
