"""The leak scan (tests/leak_scan.py) finds a planted secret: else its silence proves nothing."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from db.engine import create_engine
from tests import leak_scan as leak_scan_module
from tests.channels.helpers import kcp_live_input
from tests.leak_scan import (
    LeakScan,
    postgresql_contents,
    record_database,
    record_output,
    sqlite_contents,
)
from tests.pg_server import PostgresServer
from tests.support import Api

ME = "query { me { email } }"


async def _admin(url: str, statement: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


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


async def test_a_secret_credential_sent_is_looked_for_and_found_in_a_subprocess_output(
    api: Api, leak_scan: LeakScan, database_url: str, db_engine: AsyncEngine
) -> None:
    # given a KCP LIVE channel whose private key password the test sent
    owner = await api.sign_up()
    password = "kcpPrivateKeyPassword0006"
    created = await api.gql(
        "mutation($input: ChannelCreateInput!) { channelCreate(input: $input) "
        "{ channel { id } userErrors { code } } }",
        {"input": kcp_live_input(owner.representative_store_id)},
        token=owner.token,
    )
    assert created.data["channelCreate"]["userErrors"] == []
    assert leak_scan.secrets[password].origin == "credential privateKeyPassword"
    # the database holds it sealed: nothing found there
    assert leak_scan.hits(await _database(database_url, db_engine)) == []

    # when a subprocess of the test writes it
    record_output("the log of a planted process", f"oops {password}\n".encode())

    # then
    hits = leak_scan.hits(await _database(database_url, db_engine))
    assert hits == [
        f"{password[:6]}… (credential privateKeyPassword) in the log of a planted process"
    ]
    leak_scan.outputs.clear()


async def test_every_httpx_client_of_the_test_is_watched(
    app: Starlette, leak_scan: LeakScan
) -> None:
    # given a client of the test's own, not the `client` fixture's
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://own") as http:
        # when it signs up
        await Api(http).sign_up()

    # then the session token it was handed is looked for
    assert any(s.origin == "response token" for s in leak_scan.secrets.values())
    assert leak_scan.bodies


def test_a_pg_dump_of_a_database_of_the_test_is_scanned(
    pg_server: PostgresServer, leak_scan: LeakScan
) -> None:
    # given a database of the test's own holding a secret it was handed
    name = f"leak_{uuid.uuid4().hex[:8]}"
    leak_scan.add("planted-token-0123456789", "response token", -1)
    asyncio.run(_admin(pg_server.url, f"CREATE DATABASE {name}"))
    try:
        asyncio.run(_admin(pg_server.database_url(name), "CREATE TABLE t (v text)"))
        asyncio.run(
            _admin(
                pg_server.database_url(name), "INSERT INTO t VALUES ('planted-token-0123456789')"
            )
        )

        # when the test's database is dumped before it is dropped
        record_database(pg_server, name)
    finally:
        asyncio.run(_admin(pg_server.url, f"DROP DATABASE {name} WITH (FORCE)"))

    # then
    assert leak_scan.hits([]) == [f"plante… (response token) in pg_dump of {name}"]
    leak_scan.databases.clear()


def test_a_token_the_test_sends_back_is_still_looked_for() -> None:
    # given a refresh token handed over, then sent back as a GraphQL variable
    scan = LeakScan()
    token = "rt_" + "RefreshTokenValue0123" * 2
    scan.on_response(httpx.Response(200, json={"data": {"login": {"refreshToken": token}}}))
    variables = {"refreshToken": token}
    scan.on_request(httpx.Request("POST", "http://t/graphql", json={"variables": variables}))

    # when it shows up in a row, a later body and a later response header
    scan.on_response(httpx.Response(200, json={"data": {"echo": token}}))
    scan.on_response(httpx.Response(200, headers={"x-debug": token}, json={}))
    hits = scan.hits([("table api_tokens", token.encode())])

    # then each is found
    assert len(hits) == 3, hits


def test_a_secret_in_a_webhook_the_app_sends_is_found() -> None:
    # given a webhook signing secret handed over
    scan = LeakScan()
    secret = "whsec_" + "A" * 43 + "="
    scan.on_response(httpx.Response(200, json={"data": {"issued": {"secret": secret}}}))

    # when a request the app sends out (not to /graphql) carries it
    scan.on_request(httpx.Request("POST", "http://127.0.0.1:9/hook", json={"note": secret}))

    # then
    assert scan.hits([]) == [f"{secret[:6]}… (response secret) in response body #1"]


def test_an_output_recorded_outside_a_test_is_scanned_for_every_secret_of_the_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a secret an earlier test was handed, and no test running (a module fixture's end)
    token = "pos_" + "SessionWideToken0123" * 2
    monkeypatch.setitem(leak_scan_module.SESSION.secrets, token, "pos_Se… (response token)")
    monkeypatch.setattr(leak_scan_module, "_current", None)
    found_before = len(leak_scan_module.SESSION.found)

    # when a server process stopped by that fixture wrote it
    record_output("the log of serve on port 1", f"token={token}".encode())

    # then the run is told (and the test takes its planted hit back)
    late = leak_scan_module.SESSION.found[found_before:]
    assert late == ["pos_Se… (response token) in the log of serve on port 1"]
    del leak_scan_module.SESSION.found[found_before:]
    leak_scan_module.SESSION.figures.hits -= 1
