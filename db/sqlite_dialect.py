"""aiosqlite, without a ROLLBACK after every read.

Reads run in SQLite's autocommit mode (no BEGIN; see db/engine.py), yet SQLAlchemy rolls back
when a connection is released, and with aiosqlite every call, even a ROLLBACK of nothing, is a
trip to the connection's thread and back: about a tenth of a millisecond on each request. This
dialect rolls back only when SQLite says a transaction is open.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite

from db.sqlite_cursor import OneTripDBAPI, set_statements_on_loop
from db.sqlite_writes import WriterTurns

DRIVER_NAME = "sqlite+aiosqlite_lean"


class LeanAiosqliteDialect(SQLiteDialect_aiosqlite):
    """Also hands the process's write turn (db.sqlite_writes) on when a write transaction
    ends: right after its COMMIT or ROLLBACK returns, or its connection is closed or
    terminated."""

    supports_statement_cache = True
    writer_turns: WriterTurns | None = None  # set by db.engine.create_engine

    @classmethod
    def import_dbapi(cls) -> OneTripDBAPI:
        # Each statement one trip to the connection's thread (db.sqlite_cursor).
        return OneTripDBAPI(__import__("aiosqlite"), __import__("sqlite3"))

    def do_rollback(self, dbapi_connection: Any) -> None:
        try:
            driver = getattr(dbapi_connection, "driver_connection", None)
            if driver is not None and getattr(driver, "in_transaction", True) is False:
                return
            super().do_rollback(dbapi_connection)  # type: ignore[no-untyped-call]
        finally:
            self._give_back(dbapi_connection)

    def do_commit(self, dbapi_connection: Any) -> None:
        try:
            super().do_commit(dbapi_connection)  # type: ignore[no-untyped-call]
        finally:
            self._give_back(dbapi_connection)

    def do_close(self, dbapi_connection: Any) -> None:
        try:
            super().do_close(dbapi_connection)  # type: ignore[no-untyped-call]
        finally:
            self._give_back(dbapi_connection)

    def do_terminate(self, dbapi_connection: Any) -> None:
        """A connection dropped without being returned (its task cancelled, its session
        never closed): the pool terminates it, and its turn must not stay taken."""
        try:
            super().do_terminate(dbapi_connection)
        finally:
            self._give_back(dbapi_connection)

    def _give_back(self, dbapi_connection: Any) -> None:
        set_statements_on_loop(dbapi_connection, False)
        if self.writer_turns is not None:
            self.writer_turns.give_back(dbapi_connection)


def unicode_lower(value: str | bytes | int | float | None) -> str | bytes | int | float | None:
    """lower() for every connection: SQLite's own folds ASCII only; searches must match
    PostgreSQL's."""
    return value.lower() if isinstance(value, str) else value


registry.register("sqlite.aiosqlite_lean", __name__, "LeanAiosqliteDialect")
