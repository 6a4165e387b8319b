"""Authentication's one-row read and channel pages run as DriverQuery statements (on SQLite,
on the event loop's own reader): the answers must be what SQLAlchemy would give, a busy
SQLite must not fail or stall the request, and every statement must stay countable."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from db import sqlite_reads
from db.driver_query import watch_statements
from tests.support import Api

SMALL = "{ viewer { merchant { name createdAt } role } }"


async def test_the_small_query_is_one_statement_and_answers_like_the_database(
    api: Api, app: Starlette
) -> None:
    # given
    owner = await api.sign_up(merchant_name="Fast Reads 상점")
    statements: list[str] = []
    stop = watch_statements(app.state.app_state.engine, statements.append)

    # when
    try:
        result = await api.gql(SMALL, token=owner.token)
    finally:
        stop()

    # then: authentication read the merchant with the session, nothing else was asked
    assert len(statements) == 1, statements
    viewer = result.data["viewer"]
    assert viewer["role"] == "OWNER"
    assert viewer["merchant"]["name"] == "Fast Reads 상점"
    created = datetime.fromisoformat(viewer["merchant"]["createdAt"])
    assert created.tzinfo is not None and created.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - created).total_seconds()) < 600


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_busy_sqlite_database_makes_authentication_wait_without_blocking(
    api: Api, app: Starlette, database_url: str
) -> None:
    # given: another process holds SQLite's exclusive lock, so the event loop's reader is
    # refused at once
    owner = await api.sign_up(merchant_name="Busy")
    path = make_url(database_url).database
    assert path
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("PRAGMA locking_mode=EXCLUSIVE")
    blocker.execute("BEGIN EXCLUSIVE")
    blocker.execute("UPDATE merchants SET name = name")
    engine = app.state.app_state.engine
    assert sqlite_reads.read(engine, "SELECT 1", []) is None

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def release_soon() -> None:
        await asyncio.sleep(0.3)
        blocker.execute("COMMIT")
        blocker.execute("PRAGMA locking_mode=NORMAL")
        blocker.execute("SELECT 1 FROM merchants LIMIT 1")  # gives the lock up

    # when
    ticking = asyncio.create_task(ticker())
    releasing = asyncio.create_task(release_soon())
    try:
        result = await api.gql(SMALL, token=owner.token)
        await releasing
    finally:
        ticking.cancel()
        blocker.close()

    # then: the request waited for the lock on aiosqlite's thread, the loop kept running
    assert result.status == 200
    assert result.data["viewer"]["merchant"]["name"] == "Busy"
    assert ticks >= 10
    assert sqlite_reads.read(engine, "SELECT 1", []) == [(1,)]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_event_loops_reader_cannot_write(api: Api, app: Starlette) -> None:
    # given
    await api.sign_up()
    engine = app.state.app_state.engine

    # when / then
    with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|query_only"):
        sqlite_reads.read(engine, "UPDATE merchants SET name = 'x'", [])
