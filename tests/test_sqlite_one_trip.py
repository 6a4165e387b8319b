"""SQLite statements through aiosqlite make one trip to the connection's thread
(db.sqlite_cursor), and answer exactly as SQLAlchemy's own cursor did: rows, row counts,
inserted ids, errors, a connection still usable after one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.engine import create_engine, independent_write

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, unique=True, nullable=False),
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'one-trip.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


class _CountingQueue:
    """Stands in for an aiosqlite connection's queue of work for its thread: counts what is
    put on it and passes it on (the thread keeps reading the real queue)."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.trips = 0

    def put_nowait(self, item: Any) -> None:
        self.trips += 1
        self.queue.put_nowait(item)


async def _counted(conn: AsyncConnection) -> _CountingQueue:
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    counting = _CountingQueue(driver._tx)
    driver._tx = counting
    return counting


async def test_a_select_is_one_trip_to_the_connection_thread(engine: AsyncEngine) -> None:
    # given
    async with engine.begin() as conn:
        await conn.execute(insert(things), [{"name": "a"}, {"name": "b"}])

    async with engine.connect() as conn:
        counting = await _counted(conn)

        # when
        rows = (await conn.execute(select(things.c.name).order_by(things.c.name))).all()
        trips_for_select = counting.trips
        count = (await conn.execute(select(func.count()).select_from(things))).scalar_one()

    # then: SQLAlchemy's own adapter made four (cursor, execute, fetchall, close)
    assert [row.name for row in rows] == ["a", "b"]
    assert count == 2
    assert trips_for_select == 1
    assert counting.trips == 2


async def test_writes_report_row_counts_ids_and_errors_as_before(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        # an insert's id, several rows at once, an update's row count
        first = await conn.execute(insert(things).values(name="first"))
        assert first.inserted_primary_key is not None
        first_id = first.inserted_primary_key[0]
        many = await conn.execute(insert(things), [{"name": f"n{i}"} for i in range(5)])
        assert many.rowcount == 5
        updated = await conn.execute(
            text("UPDATE things SET name = name || '!' WHERE name LIKE 'n%'")
        )
        assert updated.rowcount == 5
        returned = await conn.execute(
            insert(things).values(name="returned").returning(things.c.id, things.c.name)
        )
        returned_row = returned.one()
        assert returned_row.name == "returned" and returned_row.id > first_id

    # a constraint violation is SQLAlchemy's IntegrityError, and the connection goes on
    async with engine.connect() as conn:
        with pytest.raises(IntegrityError):
            await conn.execute(insert(things).values(name="first"))
        await conn.rollback()
        names = (await conn.execute(select(things.c.name).where(things.c.id == first_id))).all()
    assert [row.name for row in names] == ["first"]


async def test_a_statement_with_no_rows_has_no_description(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        result = await conn.execute(text("DELETE FROM things WHERE id = -1"))
        assert result.rowcount == 0
        assert not result.returns_rows
        empty = (await conn.execute(select(things).where(things.c.id == -1))).all()
    assert empty == []


async def test_statements_of_a_short_write_transaction_make_no_trip(engine: AsyncEngine) -> None:
    # given: a short write transaction (BEGIN IMMEDIATE: this connection holds the write lock)
    async with independent_write(engine, short=True) as conn:
        counting = await _counted(conn)

        # when: it reads and writes
        await conn.execute(insert(things), [{"name": "x"}, {"name": "y"}])
        inside = (await conn.execute(select(func.count()).select_from(things))).scalar_one()
        trips_inside = counting.trips

    # then: none of its statements went to the connection's thread (before: four each); what
    # it wrote is committed and seen by the others
    assert inside == 2
    assert trips_inside == 0
    async with engine.connect() as other:
        names = (await other.execute(select(things.c.name).order_by(things.c.name))).all()
    assert [row.name for row in names] == ["x", "y"]

    # and the next transaction on that connection, not short, goes to the thread again
    async with independent_write(engine) as conn:
        counting = await _counted(conn)
        await conn.execute(insert(things).values(name="z"))
    assert counting.trips >= 1


SCAN = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000)"
    " SELECT count(*) FROM c"
)


async def test_the_event_loop_runs_during_a_long_statement_of_a_write_transaction(
    engine: AsyncEngine,
) -> None:
    """A write transaction not declared short (a retention prune, a cascade) keeps its
    statements on the connection's thread: the process goes on meanwhile."""
    ticks = 0
    stop = False

    async def heartbeat() -> None:
        nonlocal ticks
        while not stop:
            ticks += 1
            await asyncio.sleep(0)

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)
    async with independent_write(engine) as conn:
        before = ticks
        await conn.execute(text(SCAN))
        during = ticks - before
    stop = True
    await beat
    assert during > 0, "the event loop was frozen for the whole statement"


async def test_fetchmany_without_a_size_reads_arraysize_rows(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(things), [{"name": f"n{i}"} for i in range(5)])
    async with engine.connect() as conn:
        result = await conn.execute(select(things.c.name).order_by(things.c.id))
        first = result.fetchmany()
        rest = result.fetchmany(10)
    assert [row.name for row in first] == ["n0"]  # sqlite3's arraysize is 1
    assert [row.name for row in rest] == ["n1", "n2", "n3", "n4"]


async def test_a_failed_statement_in_a_write_transaction_rolls_it_back(
    engine: AsyncEngine,
) -> None:
    async with independent_write(engine) as conn:
        await conn.execute(insert(things).values(name="kept"))

    with pytest.raises(IntegrityError):
        async with independent_write(engine) as conn:
            await conn.execute(insert(things).values(name="dropped"))
            await conn.execute(insert(things).values(name="kept"))

    async with engine.connect() as conn:
        names = (await conn.execute(select(things.c.name))).all()
    assert [row.name for row in names] == ["kept"]
