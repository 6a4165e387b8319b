"""DriverStatement, reviewed: what it compiles and keeps stays small however many batch sizes
a worker meets, and a parameter left out is refused on every database, as SQLAlchemy refuses
it, rather than bound as NULL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.driver_query import DriverStatement, watch_statements
from db.engine import create_engine, independent_write
from db.types import UTCDateTime

WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LARGEST = 70  # batch sizes 1..LARGEST: a worker at WEBHOOK_WORKER_CONCURRENCY=40 meets them


def scratch_table() -> Table:
    return Table(
        f"scratch_{uuid.uuid4().hex[:12]}",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("name", String(40), nullable=False),
        Column("at", UTCDateTime, nullable=True),
    )


async def create_table(engine: AsyncEngine) -> Table:
    table = scratch_table()
    async with engine.begin() as conn:
        await conn.run_sync(table.create)
    return table


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def begun(conn: AsyncConnection) -> None:
    """A statement through SQLAlchemy, so that the next runs inside the begun transaction
    (straight on the driver on PostgreSQL)."""
    await conn.execute(select(1))


async def test_every_batch_size_compiles_few_shapes_and_reads_and_writes_every_row(
    pg_migrated: str,
) -> None:
    # Each distinct statement text is a shape compiled (an INSERT's: ~0.7 ms of the event loop
    # per row) and kept for the process's life (~3 KiB per row): one per batch size would
    # cost a worker at high concurrency seconds of its loop and gigabytes of memory.
    engine = create_engine(pg_migrated)
    table = await create_table(engine)
    add = DriverStatement(insert(table).returning(table.c.id, table.c.name))
    locked = DriverStatement(
        select(table.c.id, table.c.name)
        .where(table.c.id.in_(bindparam("pks", expanding=True)))
        .order_by(table.c.id)
        .with_for_update(),
        lists=("pks",),
    )
    sent: list[str] = []
    stop = watch_statements(engine, sent.append)
    try:
        # when: batches of every size from 1 to LARGEST are inserted, then read back by id
        inserted: dict[int, list[tuple[int, str]]] = {}
        read: dict[int, list[tuple[int, str]]] = {}
        async with independent_write(engine) as conn:
            await begun(conn)
            for size in range(1, LARGEST + 1):
                rows = [{"name": f"{size}-{i}", "at": WHEN} for i in range(size)]
                inserted[size] = [(pk, name) for pk, name in await add.run(conn, rows)]
            for size in range(1, LARGEST + 1):
                pks = [pk for pk, _ in inserted[size]]
                read[size] = [(pk, name) for pk, name in await locked.run(conn, {"pks": pks})]
    finally:
        stop()
        async with engine.begin() as conn:
            stored = (await conn.execute(select(table.c.id, table.c.name))).all()
            await conn.run_sync(table.drop)
        await engine.dispose()

    # then: every row was inserted once and returned, and each read returned exactly its rows
    for size in range(1, LARGEST + 1):
        assert sorted(name for _, name in inserted[size]) == sorted(
            f"{size}-{i}" for i in range(size)
        )
        assert read[size] == sorted(inserted[size])
    assert len(stored) == LARGEST * (LARGEST + 1) // 2
    assert sorted(tuple(row) for row in stored) == sorted(
        row for rows in inserted.values() for row in rows
    )
    # and: few shapes were compiled for all those sizes (1-32 rows an INSERT, a power of two
    # of ids a list), not one per size
    inserts = {sql for sql in sent if sql.startswith(f"INSERT INTO {table.name}")}
    reads = {sql for sql in sent if sql.startswith("SELECT") and table.name in sql}
    assert len(inserts) <= 32, len(inserts)
    assert len(reads) <= 8, len(reads)


@pytest.mark.parametrize("short", [False, True], ids=["write", "short"])
async def test_a_parameter_left_out_is_refused_as_sqlalchemy_refuses_it(
    engine: AsyncEngine, short: bool
) -> None:
    table = await create_table(engine)
    add = DriverStatement(insert(table).returning(table.c.id))
    change = DriverStatement(
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(name=bindparam("b_name"), at=bindparam("b_at", type_=UTCDateTime))
    )
    async with independent_write(engine) as conn:
        [(pk,)] = await add.run(conn, [{"name": "a", "at": WHEN}])

    # when: a batch of changes leaves `b_at` out of its second set, and a single change leaves
    # out `b_id`
    with pytest.raises(sa_exc.SQLAlchemyError, match="value is required for bind parameter"):
        async with independent_write(engine, short=short) as conn:
            await begun(conn)
            await change.run(
                conn,
                [
                    {"b_id": pk, "b_name": "b", "b_at": WHEN},
                    {"b_id": pk, "b_name": "c"},
                ],
            )
    with pytest.raises(sa_exc.SQLAlchemyError, match="value is required for bind parameter"):
        async with independent_write(engine, short=short) as conn:
            await begun(conn)
            await change.run(conn, {"b_name": "d", "b_at": WHEN})

    # then: refused, on PostgreSQL as on SQLite (not run with NULL for what was left out)
    async with engine.begin() as conn:
        stored = (await conn.execute(select(table.c.name, table.c.at))).all()
        await conn.run_sync(table.drop)
    assert [tuple(row) for row in stored] == [("a", WHEN)]
