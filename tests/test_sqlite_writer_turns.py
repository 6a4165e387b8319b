"""SQLite: write transactions of one process take turns, first come first served.

Without turns, writers waiting for SQLite's write lock each sleep in SQLite's busy handler
and whoever polls first after the lock comes free wins: the first to ask often goes last,
after growing sleeps of up to 100 ms each (the embedded delivery worker and the intake, in
one process, stalled for seconds so). With turns (db.sqlite_writes), they queue on the event
loop and write in the order they asked, whether they commit or roll back.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from db.engine import Tx, create_engine, create_session_factory, independent_write
from gql_api.mutations import run_unit

WRITERS = 8


class Refused(Exception):
    """A writer whose transaction fails (it is rolled back)."""


async def test_writers_of_one_process_write_in_the_order_they_asked(
    sqlite_template: Path, tmp_path: Path
) -> None:
    # given: a write transaction held open, and writers asking for the write lock one after
    # the other meanwhile (through a unit of work, or a write of its own), one of which fails
    target = tmp_path / "turns.db"
    shutil.copyfile(sqlite_template, target)
    engine = create_engine(f"sqlite:///{target}")
    sessions = create_session_factory(engine)
    async with independent_write(engine) as conn:
        await conn.execute(text("CREATE TABLE turn_log (writer INTEGER NOT NULL)"))
    holding, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async def unit(tx: Tx) -> None:
            async with tx.write() as db:
                await db.exec(text("INSERT INTO turn_log VALUES (-1)"))  # type: ignore[call-overload]
                holding.set()
                await release.wait()
                raise Refused  # rolled back: the turn is handed on all the same

        async with sessions() as session:
            with pytest.raises(Refused):
                await run_unit(session, engine, unit)

    async def writer(number: int) -> None:
        if number % 2:
            async with independent_write(engine) as conn:
                await conn.execute(text("INSERT INTO turn_log VALUES (:n)"), {"n": number})
            return

        async def unit(tx: Tx) -> None:
            async with tx.write() as db:
                await db.exec(text("INSERT INTO turn_log VALUES (:n)"), params={"n": number})  # type: ignore[call-overload]
                if number == 4:
                    raise Refused

        async with sessions() as session:
            with contextlib.suppress(Refused):
                await run_unit(session, engine, unit)

    try:
        held = asyncio.create_task(holder())
        await holding.wait()
        writers = []
        for number in range(WRITERS):
            writers.append(asyncio.create_task(writer(number)))
            await asyncio.sleep(0.1)  # pacing only: each is waiting before the next asks

        # when: the first transaction ends
        release.set()
        await asyncio.gather(held, *writers)

        # then: every writer wrote, in the order it asked (the failed ones wrote nothing)
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT writer FROM turn_log ORDER BY rowid"))).all()
        assert [row.writer for row in rows] == [n for n in range(WRITERS) if n != 4]
    finally:
        await engine.dispose()
