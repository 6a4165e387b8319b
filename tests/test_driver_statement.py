"""DriverStatement: a write transaction's hot statements (the delivery worker's cycle), run
straight on the driver inside the caller's transaction (asyncpg; sqlite3 on the event loop's
thread in a short write transaction), else through SQLAlchemy.
What it writes and reads is what SQLAlchemy writes and reads; it never runs outside the
transaction it is given; a lost connection is reported as SQLAlchemy reports one; a parameter
left out is refused as SQLAlchemy refuses it (not bound as NULL); what it compiles and keeps
stays small however many batch sizes a worker meets."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.driver_query import DriverStatement, watch_statements
from db.engine import create_engine, independent_write
from db.types import UTCDateTime

WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class RolledBack(Exception):
    pass


def scratch_table() -> Table:
    table = Table(
        f"scratch_{uuid.uuid4().hex[:12]}",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("name", String(40), nullable=False),
        Column("at", UTCDateTime, nullable=True),
        Column("doc", JSON, nullable=True),
        Column("flag", Boolean, nullable=False),
        Column("n", Integer, nullable=False, default=5),
    )
    return table


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def table(engine: AsyncEngine) -> AsyncIterator[Table]:
    table = scratch_table()
    async with engine.begin() as conn:
        await conn.run_sync(table.create)
    try:
        yield table
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(table.drop)


def row(name: str, *, at: datetime | None = WHEN, flag: bool = False) -> dict[str, object]:
    return {"name": name, "at": at, "doc": {"name": name, "amount": 2**40}, "flag": flag, "n": 1}


# short: on SQLite, the statements of a short write transaction run on the loop's thread.
@pytest.mark.parametrize("short", [False, True], ids=["write", "short-write"])
async def test_what_it_writes_and_reads_is_what_sqlalchemy_writes_and_reads(
    engine: AsyncEngine, table: Table, short: bool
) -> None:
    add = DriverStatement(insert(table).returning(table.c.name, table.c.id))
    named = DriverStatement(
        select(table.c.id, table.c.at, table.c.doc, table.c.flag, func.length(table.c.name))
        .where(table.c.id.in_(bindparam("pks", expanding=True)))
        .order_by(table.c.id)
        .with_for_update(),
        lists=("pks",),
    )
    change = DriverStatement(
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(at=bindparam("b_at", type_=UTCDateTime), flag=bindparam("b_flag"))
    )
    statements: list[str] = []
    stop = watch_statements(engine, statements.append)

    # when: rows are inserted (first in the transaction, then once it has begun), read back
    # by a list of ids, and changed by a batch, in one transaction
    try:
        async with independent_write(engine, short=short) as conn:
            first = await add.run(conn, [row("a"), row("b", at=None), row("c")])
            more = await add.run(conn, [row("d"), row("e", flag=True)])
            ids = {name: pk for name, pk in [*first, *more]}
            read = await named.run(conn, {"pks": [ids["a"], ids["b"], ids["e"]]})
            later = WHEN + timedelta(hours=9)
            await change.run(
                conn,
                [
                    {"b_id": ids["a"], "b_at": later.astimezone(), "b_flag": True},
                    {"b_id": ids["c"], "b_at": None, "b_flag": True},
                ],
            )
    finally:
        stop()

    # then: every row was written, as SQLAlchemy reads them back
    assert sorted(ids) == ["a", "b", "c", "d", "e"]
    async with engine.connect() as conn:
        stored = {r.name: r for r in await conn.execute(select(table).order_by(table.c.id))}
    assert [tuple(r) for r in read] == [
        (ids["a"], WHEN, row("a")["doc"], False, 1),
        (ids["b"], None, row("b")["doc"], False, 1),
        (ids["e"], WHEN, row("e")["doc"], True, 1),
    ]
    assert read[0][1].tzinfo is not None
    assert stored["a"].at == later and stored["a"].flag is True
    assert stored["c"].at is None and stored["c"].flag is True
    assert stored["d"].doc == {"name": "d", "amount": 2**40} and stored["d"].flag is False
    assert {r.n for r in stored.values()} == {1}
    # and every statement was heard of, a batch as one
    assert len([sql for sql in statements if table.name in sql]) == 4, statements


@pytest.mark.parametrize("short", [False, True], ids=["write", "short-write"])
async def test_the_first_statement_of_a_transaction_is_rolled_back_with_it(
    engine: AsyncEngine, table: Table, short: bool
) -> None:
    add = DriverStatement(insert(table).returning(table.c.id))

    # when: the transaction's first statement, then one more, are rolled back
    with pytest.raises(RolledBack):
        async with independent_write(engine, short=short) as conn:
            await add.run(conn, [row("a")])
            await add.run(conn, [row("b"), row("c")])
            raise RolledBack

    # then: nothing was written (neither ran outside the transaction)
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(table))).scalar_one() == 0


async def test_an_insert_leaving_out_a_column_with_a_python_default_is_refused(
    engine: AsyncEngine, table: Table
) -> None:
    add = DriverStatement(insert(table).returning(table.c.id))
    without_n = {key: value for key, value in row("a").items() if key != "n"}

    # when / then: refused, on SQLite as on PostgreSQL (where nothing would fill the default)
    async with independent_write(engine) as conn:
        await conn.execute(select(1))
        with pytest.raises(ValueError, match="'n'"):
            await add.run(conn, [row("b"), without_n])
        with pytest.raises(ValueError, match="same columns"):
            await add.run(
                conn,
                [
                    row("b"),
                    without_n | {"n": 2, "flag": True} | {"at": None},
                    {**row("c"), "extra": 1},
                ],
            )


async def test_a_lost_connection_is_reported_as_sqlalchemy_reports_it(pg_migrated: str) -> None:
    engine = create_engine(pg_migrated)
    table = scratch_table()
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.create)
        add = DriverStatement(insert(table).returning(table.c.id))

        # given: a transaction under way, whose connection the server then ends
        with pytest.raises(sa_exc.DBAPIError) as raised:
            async with independent_write(engine) as conn:
                await add.run(conn, [row("a")])
                pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                async with engine.connect() as other:
                    await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

                # when: the next statement runs on it
                await add.run(conn, [row("b")])

        # then: reported as a connection SQLAlchemy found lost, and the next one works
        assert raised.value.connection_invalidated
        async with independent_write(engine) as conn:
            await add.run(conn, [row("c")])
            await add.run(conn, [row("d")])
        async with engine.connect() as conn:
            names = (await conn.execute(select(table.c.name).order_by(table.c.id))).scalars()
            assert list(names) == ["c", "d"]
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(table.drop)
        await engine.dispose()


LARGEST = 70  # batch sizes 1..LARGEST: a worker at WEBHOOK_WORKER_CONCURRENCY=40 meets them


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
    table = scratch_table()
    async with engine.begin() as conn:
        await conn.run_sync(table.create)
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
                rows = [row(f"{size}-{i}") for i in range(size)]
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
    assert sorted(tuple(r) for r in stored) == sorted(
        pair for pairs in inserted.values() for pair in pairs
    )
    # and: few shapes were compiled for all those sizes (1-32 rows an INSERT, a power of two
    # of ids a list), not one per size
    inserts = {sql for sql in sent if sql.startswith(f"INSERT INTO {table.name}")}
    reads = {sql for sql in sent if sql.startswith("SELECT") and table.name in sql}
    assert len(inserts) <= 32, len(inserts)
    assert len(reads) <= 8, len(reads)


@pytest.mark.parametrize("short", [False, True], ids=["write", "short-write"])
async def test_a_parameter_left_out_is_refused_as_sqlalchemy_refuses_it(
    engine: AsyncEngine, table: Table, short: bool
) -> None:
    add = DriverStatement(insert(table).returning(table.c.id))
    change = DriverStatement(
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(name=bindparam("b_name"), at=bindparam("b_at", type_=UTCDateTime))
    )
    async with independent_write(engine) as conn:
        [(pk,)] = await add.run(conn, [row("a")])

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
    async with engine.connect() as conn:
        stored = (await conn.execute(select(table.c.name, table.c.at))).all()
    assert [tuple(r) for r in stored] == [("a", WHEN)]
