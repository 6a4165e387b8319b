"""The leak scan (tests/leak_scan.py) finds a planted secret: else its silence proves nothing."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.leak_scan import LeakScan, postgresql_contents, sqlite_contents
from tests.support import Api

ME = "query { me { email } }"


async def _database(url: str, engine: AsyncEngine) -> list[tuple[str, bytes]]:
    if url.startswith("sqlite"):
        return sqlite_contents(Path(url.removeprefix("sqlite:///")))
    return await postgresql_contents(engine)


async def test_a_clean_test_has_no_hits(
    api: Api, leak_scan: LeakScan, database_url: str, db_engine: AsyncEngine
) -> None:
    # given
    await api.sign_up()

    # when
    hits = leak_scan.hits(await _database(database_url, db_engine))

    # then
    assert hits == []


async def test_the_scan_finds_a_secret_planted_in_the_database_a_log_and_a_later_body(
    api: Api, leak_scan: LeakScan, database_url: str, db_engine: AsyncEngine
) -> None:
    # given: a session token the suite was handed
    owner = await api.sign_up()
    assert owner.token in leak_scan.secrets
    # planted where it must never be
    async with db_engine.begin() as conn:
        await conn.execute(text("UPDATE merchants SET name = :name"), {"name": owner.token})
    logging.getLogger("gql_api.planted").info("session %s", owner.token)
    await api.gql(ME, token=owner.token)
    leak_scan.bodies.append(b'{"echo": "' + owner.token.encode() + b'"}')

    # when
    hits = leak_scan.hits(await _database(database_url, db_engine))

    # then
    prefix = owner.token[:6]
    in_database = ("in table merchants", "in test.db")
    assert any(h.startswith(prefix) and any(w in h for w in in_database) for h in hits), hits
    assert any("log record of gql_api.planted" in h for h in hits), hits
    assert any(f"response body #{len(leak_scan.bodies) - 1}" in h for h in hits), hits
    assert all(owner.token not in h for h in hits)  # never the whole secret

    # the planted secret is this test's own: the teardown scan must not fail on it
    leak_scan.secrets.clear()
