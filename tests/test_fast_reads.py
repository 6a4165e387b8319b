"""Authentication's one-row read and channel pages run as DriverQuery statements (on SQLite,
on the event loop's own reader): the answers must be what SQLAlchemy would give, a busy
SQLite must not fail or stall the request, and every statement must stay countable."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, literal, select
from starlette.applications import Starlette

from db import sqlite_reads
from db.driver_query import DriverQuery, watch_statements
from db.engine import create_engine
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


async def test_a_busy_sqlite_database_makes_a_read_wait_without_blocking(tmp_path: Path) -> None:
    # given: a database another process holds locked (rollback journal, exclusive lock), so
    # the event loop's reader is refused at once
    path = tmp_path / "busy.db"
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("CREATE TABLE numbers (n INTEGER)")
    blocker.execute("INSERT INTO numbers VALUES (42)")
    blocker.execute("BEGIN EXCLUSIVE")
    engine = create_engine(f"sqlite:///{path}")
    numbers = Table("numbers", MetaData(), Column("n", Integer))
    query = DriverQuery(select(numbers.c.n))
    assert sqlite_reads.read(engine, "SELECT n FROM numbers", []) is None

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def release_soon() -> None:
        await asyncio.sleep(0.3)
        blocker.execute("COMMIT")

    # when
    ticking = asyncio.create_task(ticker())
    releasing = asyncio.create_task(release_soon())
    try:
        row = await query.first(engine)
        await releasing
    finally:
        ticking.cancel()
        blocker.close()
        sqlite_reads.close(engine)
        await engine.dispose()

    # then: the read waited for the lock on aiosqlite's thread while the loop kept running
    assert row == (42,)
    assert ticks >= 10


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_event_loops_reader_cannot_write(api: Api, app: Starlette) -> None:
    # given
    await api.sign_up()
    engine = app.state.app_state.engine

    # when / then
    with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
        sqlite_reads.read(engine, "UPDATE merchants SET name = 'x'", [])


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_cancelled_read_leaves_no_busy_connection_in_the_pool(database_url: str) -> None:
    # given: reads cancelled while the server is still working on them
    engine = create_engine(database_url)
    slow = DriverQuery(select(func.pg_sleep(2)))
    quick = DriverQuery(select(literal(7)))
    try:
        for _ in range(3):
            task = asyncio.create_task(slow.first(engine))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        # when: more reads than the pool keeps connections, one after the other
        answers = [await quick.first(engine) for _ in range(25)]
    finally:
        await engine.dispose()

    # then: none of them met a connection still busy with a cancelled statement
    assert answers == [(7,)] * 25
