"""The delivery engine's hot path: kept-alive connections to a receiver, and claims and
records made for many events at once (a fixed number of statements, whatever their number).

What a receiver notices: one connection carrying a worker's successive webhooks instead of a
new one for each; what the database notices: the same statements for 12 events as for 3.
"""

from __future__ import annotations

import asyncio
import ipaddress
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from db.driver_query import watch_statements
from gql_api.settings import Settings
from gql_api.webhooks.addresses import Target
from gql_api.webhooks.sender import Connections
from tests.factories import seed_merchant
from tests.support import Api, SignedUp
from tests.webhooks.events_support import (
    SOON,
    assert_signed,
    event_body,
    event_settings,
    make_worker,
    published,
    receiving,
    running,
    state_of,
    until,
    until_status,
)
from tests.webhooks.receiver import Receivers


@pytest.fixture(name="settings")
def settings_for_events(database_url: str) -> Settings:
    return event_settings(database_url)


@pytest.fixture
async def owner(db_engine: AsyncEngine) -> SignedUp:
    return (await seed_merchant(db_engine, roles=(), stores=())).owner


async def test_a_running_worker_sends_successive_webhooks_over_one_kept_connection(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
) -> None:
    # given a receiver that keeps connections open, and six events for it
    receiver, secret = await receiving(api, owner, receiver_pool, keep_alive=True)
    pks = [
        await published(client, event_body(owner.representative_store_id, id=f"evt-{n}"))
        for n in range(6)
    ]
    worker = make_worker(app, concurrency=1, per_host_limit=1)

    # when a worker delivers them one after another
    async with running(worker):
        await until(lambda: len(receiver.requests) == 6)
        for pk in pks:
            await until_status(db_engine, pk, "SUCCEEDED")

    # then every webhook came over the same connection, each signed as always
    assert {request.connection for request in receiver.requests} == {1}
    assert len({request.headers["webhook-id"] for request in receiver.requests}) == 6
    assert_signed(receiver.requests, secret)


async def test_a_cookie_a_receiver_sets_is_never_sent_back_on_a_kept_connection(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
) -> None:
    # given a receiver that keeps connections open and sets a cookie in every answer
    receiver, _ = await receiving(
        api,
        owner,
        receiver_pool,
        keep_alive=True,
        headers=[("Set-Cookie", "session=from-the-receiver; Path=/")],
    )
    pks = [
        await published(client, event_body(owner.representative_store_id, id=f"evt-{n}"))
        for n in range(3)
    ]
    worker = make_worker(app, concurrency=1, per_host_limit=1)

    # when a worker delivers the events one after another over one connection
    async with running(worker):
        for pk in pks:
            await until_status(db_engine, pk, "SUCCEEDED")

    # then no webhook carried a cookie: a kept client serves every store sending to that
    # host, and one merchant's receiver must not hand anything to another's webhooks
    assert {request.connection for request in receiver.requests} == {1}
    assert all("cookie" not in request.headers for request in receiver.requests)


async def test_on_postgresql_a_publish_wakes_an_idle_worker_of_another_process_at_once(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
    backend: str,
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has no NOTIFY: a worker of another process learns at its next poll")
    # given an idle worker that polls only every 10 minutes, and is not the intake's own
    # (the app embeds none: only the database can tell it of a publish)
    receiver, _ = await receiving(api, owner, receiver_pool)
    worker = make_worker(app, poll_seconds=600.0)

    async with running(worker):
        await asyncio.wait_for(worker.listening.wait(), SOON)

        # when an event is published
        pk = await published(client, event_body(owner.representative_store_id))

        # then the worker delivers it long before its next poll
        await until_status(db_engine, pk, "SUCCEEDED")
    assert len(receiver.requests) == 1


async def test_claiming_and_recording_take_the_same_statements_for_3_events_as_for_12(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    owner: SignedUp,
    receiver_pool: Receivers,
) -> None:
    # given a receiver, and a worker that may send 16 at once to it
    receiver, _ = await receiving(api, owner, receiver_pool)
    worker = make_worker(app, concurrency=16, per_host_limit=16)
    statements: list[str] = []
    stop = watch_statements(state_of(app).engine, statements.append)
    counts = []
    try:
        for batch, size in enumerate((3, 12)):
            for n in range(size):
                await published(
                    client, event_body(owner.representative_store_id, id=f"evt-{batch}-{n}")
                )
            statements.clear()

            # when the worker claims, sends and records a round of `size` events
            assert await worker.deliver_due() == size
            counts.append(len(statements))
    finally:
        stop()

    # then the database did the same work for 12 events as for 3
    assert len(receiver.requests) == 15
    assert counts[0] == counts[1]


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_kept_connections_are_per_checked_address_and_host_name(scheme: str) -> None:
    # given two host names checked to the same address, and one name checked to another
    def target(host: str, address: str) -> Target:
        url = f"{scheme}://{host}/hook"
        return Target(
            url=url,
            parts=urlsplit(url),
            host=host,
            port=443 if scheme == "https" else 80,
            addresses=(ipaddress.ip_address(address),),
        )

    connections = Connections(per_pool=4)
    try:
        # when each is sent over the kept connections
        async with connections.client(target("a.example.com", "203.0.113.7")) as first:
            pass
        async with connections.client(target("a.example.com", "203.0.113.7")) as again:
            pass
        async with connections.client(target("b.example.com", "203.0.113.7")) as other_name:
            pass
        async with connections.client(target("a.example.com", "203.0.113.8")) as moved:
            pass
    finally:
        await connections.aclose()

    # then only the same name at the same checked address shares connections: a connection
    # verified for one name never carries another's requests, nor goes to another address
    assert again is first
    assert other_name is not first
    assert moved is not first
    assert moved is not other_name
