"""Ready claims: a host at its limit gets as many events claimed ahead, each sent the moment
one of the host's attempts ends (the next cycle records and claims meanwhile), never more in
flight than the limit; a stopping worker hands them back as if never claimed."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from gql_api.settings import Settings
from gql_api.webhooks import outbox
from gql_api.webhooks.sender import Limits
from tests.factories import seed_merchant
from tests.support import Api
from tests.webhooks.events_support import (
    SOON,
    FakeClock,
    assert_signed,
    event_body,
    event_settings,
    load_attempts,
    load_event,
    make_worker,
    published,
    running,
    until,
    until_status,
)
from tests.webhooks.helpers import issue_secret, save_setting
from tests.webhooks.receiver import Receivers

# Long enough that a held receiver holds for the whole test (it is released, never timed out).
PATIENT = Limits(connect_seconds=5.0, read_seconds=30.0, response_max_bytes=65536)


@pytest.fixture(name="settings")
def settings_for_events(database_url: str) -> Settings:
    return event_settings(database_url)


async def leased(db_engine: AsyncEngine, pks: list[int]) -> list[bool]:
    return [(await load_event(db_engine, pk)).lease_token is not None for pk in pks]


async def until_leased(db_engine: AsyncEngine, pks: list[int], expected: list[bool]) -> None:
    async with asyncio.timeout(SOON):
        while await leased(db_engine, pks) != expected:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_the_next_event_of_a_full_host_is_claimed_ahead_and_sent_when_the_host_has_room(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given a receiver that holds its requests, and three events for it
    owner = (await seed_merchant(db_engine, roles=(), stores=())).owner
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start(hold=True)
    await save_setting(api, owner.token, store_id, receiver.url)
    secret = await issue_secret(api, owner.token, store_id)
    pks = [await published(client, event_body(store_id)) for _ in range(3)]
    worker = make_worker(app, concurrency=4, per_host_limit=1, limits=PATIENT)

    async with running(worker):
        # when the first is being sent
        await until(lambda: len(receiver.requests) == 1)

        # then the second is leased, ready, but not sent (one in flight at most), the third
        # waits in the database
        await until_leased(db_engine, pks, [True, True, False])
        await asyncio.sleep(0.1)  # (time for a second request, were it sent)
        assert len(receiver.requests) == 1
        assert await leased(db_engine, pks) == [True, True, False]

        # when the receiver answers
        receiver.release.set()

        # then every event is delivered, each once, in order
        for pk in pks:
            await until_status(db_engine, pk, "SUCCEEDED")
    ids = [request.headers["webhook-id"] for request in receiver.requests]
    assert ids == [(await load_event(db_engine, pk)).message_id for pk in pks]
    assert_signed(receiver.requests, secret.secret)
    for pk in pks:
        assert [a.attempt_number for a in await load_attempts(db_engine, pk)] == [1]


async def test_a_stopping_worker_hands_its_ready_claims_back_uncounted(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given a worker sending one event to a receiver that holds it, the second one ready
    owner = (await seed_merchant(db_engine, roles=(), stores=())).owner
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start(hold=True)
    await save_setting(api, owner.token, store_id, receiver.url)
    pks = [await published(client, event_body(store_id)) for _ in range(2)]
    first, second = pks
    clock = FakeClock()
    worker = make_worker(app, clock, concurrency=4, per_host_limit=1, limits=PATIENT)
    async with running(worker, grace_seconds=0.2):
        await until(lambda: len(receiver.requests) == 1)
        await until_leased(db_engine, [first, second], [True, True])
        # (the ready one's lease also covers its wait for the first one's attempt)
        sending, waiting = [(await load_event(db_engine, pk)).locked_until for pk in pks]
        assert sending == clock.now + worker.config.lease
        assert waiting == clock.now + worker.config.lease + worker.config.attempt_time
    # when it has stopped (after the grace period)

    # then the one being sent was released, its attempt counted and recorded as unfinished
    sent = await load_event(db_engine, first)
    assert (sent.lease_token, sent.attempt_count) == (None, 1)
    [unfinished] = await load_attempts(db_engine, first)
    assert unfinished.error == outbox.UNFINISHED
    # and the ready one is due again as if never claimed: no attempt counted or recorded
    ready = await load_event(db_engine, second)
    assert (ready.lease_token, ready.locked_until, ready.attempt_count) == (None, None, 0)
    assert ready.status == "PENDING"
    assert await load_attempts(db_engine, second) == []

    # when another worker delivers them
    receiver.release.set()
    assert await make_worker(app, clock).deliver_due() == 2

    # then the ready one's first attempt is its attempt 1
    assert [a.attempt_number for a in await load_attempts(db_engine, second)] == [1]
    assert (await load_event(db_engine, second)).status == "SUCCEEDED"
