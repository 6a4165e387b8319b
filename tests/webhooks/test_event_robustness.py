"""What the hostile review of the delivery engine found, reproduced: one event's trouble never
stops the others, an attempt never stays unfinished because sending raised, one merchant's
receivers never take every slot however they are named, and retention keeps up."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.applications import Starlette

from db.models import WebhookSecret, WebhookSetting
from gql_api.settings import Settings
from gql_api.webhooks import outbox, upkeep
from tests.factories import seed_merchant
from tests.support import Api, SignedUp
from tests.webhooks.events_support import (
    PATIENT,
    SOON,
    FakeClock,
    count_events,
    event_body,
    event_settings,
    load_attempts,
    load_event,
    make_worker,
    published,
    receiving,
    running,
    until,
)
from tests.webhooks.helpers import save_setting
from tests.webhooks.receiver import Receivers


@pytest.fixture(name="settings")
def settings_for_events(database_url: str) -> Settings:
    return event_settings(database_url)


async def new_owner(db_engine: AsyncEngine, stores: tuple[str, ...] = ()) -> SignedUp:
    return (await seed_merchant(db_engine, roles=(), stores=stores)).owner


async def test_a_secret_no_key_decrypts_fails_its_event_and_not_the_others(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given two merchants, the first of whose signing secrets no configured key decrypts (a key
    # dropped from ENCRYPTION_KEYS too early), each with an event due, the broken one first
    broken_owner, working_owner = await new_owner(db_engine), await new_owner(db_engine)
    broken, _ = await receiving(api, broken_owner, receiver_pool)
    async with AsyncSession(db_engine) as db:
        await db.exec(update(WebhookSecret).values(cipher="v1.deadbeef.AAAA"))
        await db.commit()
    working, _ = await receiving(api, working_owner, receiver_pool)  # its secret comes after
    bad = await published(client, event_body(broken_owner.representative_store_id))
    good = await published(client, event_body(working_owner.representative_store_id))
    clock = FakeClock()

    # when a worker runs
    await make_worker(app, clock).deliver_due()

    # then the other merchant's event is delivered, and the broken one failed its attempt,
    # saying why, and waits for its retry (nothing sent, nothing left unfinished)
    assert (await load_event(db_engine, good)).status == "SUCCEEDED"
    assert len(working.requests) == 1 and broken.requests == []
    event = await load_event(db_engine, bad)
    assert (event.status, event.attempt_count) == ("RETRYING", 1)
    assert event.locked_until is None and event.next_attempt_at is not None
    [attempt] = await load_attempts(db_engine, bad)
    assert attempt.error is not None and attempt.error.startswith("Not sent: the request could")
    assert "deadbeef" not in attempt.error


async def test_a_url_the_http_client_refuses_is_a_failed_attempt_not_an_unfinished_one(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given a URL with a control character, saved before such URLs were refused
    owner = await new_owner(db_engine)
    receiver, _ = await receiving(api, owner, receiver_pool)
    async with AsyncSession(db_engine) as db:
        await db.exec(update(WebhookSetting).values(url=receiver.url + "/a\u0001b"))
        await db.commit()
    pk = await published(client, event_body(owner.representative_store_id))
    clock = FakeClock()
    worker = make_worker(app, clock, schedule_minutes=(1.0,))

    # when every scheduled attempt is made
    assert await worker.deliver_due() == 1
    clock.advance(minutes=2)
    assert await worker.deliver_due() == 1
    clock.advance(minutes=600)
    assert await worker.deliver_due() == 0

    # then both attempts were recorded as failures, and the event ended
    event = await load_event(db_engine, pk)
    assert (event.status, event.attempt_count, event.locked_until) == ("EXHAUSTED", 2, None)
    attempts = await load_attempts(db_engine, pk)
    assert [a.error != outbox.UNFINISHED and a.error is not None for a in attempts] == [True] * 2
    assert receiver.requests == []


async def test_one_merchants_receiver_named_twice_gets_no_more_than_the_merchants_share(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given one slow receiver that a merchant's two stores name differently (an address and
    # a host name of the same machine), and another merchant's fast receiver
    seeded = await seed_merchant(db_engine, roles=(), stores=("Second",))
    owner = seeded.owner
    slow, _ = await receiving(api, owner, receiver_pool, hold=True)
    second = seeded.stores["Second"]
    await save_setting(
        api,
        owner.token,
        second,
        slow.url.replace("127.0.0.1", "localhost"),
        usesRepresentativeSetting=False,
    )
    other = await new_owner(db_engine)
    fast, _ = await receiving(api, other, receiver_pool)
    for store in (owner.representative_store_id, second, owner.representative_store_id, second):
        await published(client, event_body(store))
    # 4 slots: one merchant may hold 2, one host name 2
    worker = make_worker(app, concurrency=4, per_host_limit=2, limits=PATIENT)

    async with running(worker):
        await until(lambda: len(slow.requests) == 2)
        # when the other merchant's event is published
        fast_event = await published(client, event_body(other.representative_store_id))
        worker.wake()
        async with asyncio.timeout(SOON):
            while (await load_event(db_engine, fast_event)).status != "SUCCEEDED":  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        # then the slow receiver never had more than the merchant's share, under either name
        await asyncio.sleep(0.1)
        assert len(slow.requests) == 2
        assert len(fast.requests) == 1
        slow.release.set()


async def test_retention_deletes_more_than_one_batch_a_cycle(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given five finished events past the retention, and batches of two
    owner = await new_owner(db_engine)
    await receiving(api, owner, receiver_pool)
    pks = [await published(client, event_body(owner.representative_store_id)) for _ in range(5)]
    clock = FakeClock()
    worker = make_worker(app, clock)
    while await worker.deliver_due():  # 4 at a time: one receiver host
        pass
    monkeypatch.setattr(upkeep, "PRUNE_BATCH", 2)
    clock.advance(days=31)

    # when the worker prunes once
    await worker._prune()

    # then all of them are gone, with their attempts
    assert await count_events(db_engine) == 0
    for pk in pks:
        assert await load_attempts(db_engine, pk) == []
