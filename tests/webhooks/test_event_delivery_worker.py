"""The delivery worker as a process part: per-host concurrency (a slow receiver does not hold
up the others), graceful shutdown and lease expiry (the same message, sent again by another
worker), retention, and the metrics it leaves.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.applications import Starlette

from db.models import WebhookDelivery, WebhookEvent
from db.types import utcnow
from gql_api.settings import Settings
from gql_api.webhooks import outbox
from gql_api.webhooks.sender import DeliveryResult
from tests.factories import seed_merchant
from tests.support import Api, SignedUp
from tests.webhooks.events_support import (
    PATIENT,
    SOON,
    FakeClock,
    assert_signed,
    event_body,
    event_pk,
    event_settings,
    load_attempts,
    load_event,
    make_worker,
    publish,
    published,
    receiving,
    running,
    state_of,
    until,
    until_status,
)
from tests.webhooks.helpers import delivered, issue_secret, save_setting
from tests.webhooks.receiver import Receivers


@pytest.fixture(name="settings")
def settings_for_events(database_url: str) -> Settings:
    return event_settings(database_url)


async def new_owner(db_engine: AsyncEngine) -> SignedUp:
    return (await seed_merchant(db_engine, roles=(), stores=())).owner


# --- per-host concurrency --------------------------------------------------------------------


async def test_a_slow_receiver_holds_one_slot_while_others_are_delivered(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given a slow receiver A with several due events, published first, and a fast one B
    slow_owner, fast_owner = await new_owner(db_engine), await new_owner(db_engine)
    slow, slow_secret = await receiving(api, slow_owner, receiver_pool, hold=True)
    fast, fast_secret = await receiving(api, fast_owner, receiver_pool)
    slow_events = [
        await published(client, event_body(slow_owner.representative_store_id)) for _ in range(4)
    ]
    fast_events = [
        await published(client, event_body(fast_owner.representative_store_id)) for _ in range(3)
    ]
    # (4 slots: one merchant may hold 2, one host 1)
    worker = make_worker(app, concurrency=4, per_host_limit=1, limits=PATIENT)  # real clock

    # when the worker runs
    async with running(worker):
        for pk in fast_events:
            await until_status(db_engine, pk, "SUCCEEDED")
        # then B got all its events while A holds its one slot
        assert len(fast.requests) == 3
        assert len(slow.requests) == 1

    assert [(await load_event(db_engine, pk)).status for pk in slow_events] == ["PENDING"] * 4
    assert_signed(fast.requests, fast_secret)
    assert_signed(slow.requests, slow_secret)


async def test_a_slow_receiver_does_not_hold_up_another_setting_of_the_same_store(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given one store whose V2 URL is slow and whose V1 URL is fast
    owner = await new_owner(db_engine)
    store_id = owner.representative_store_id
    slow, secret = await receiving(api, owner, receiver_pool, hold=True)
    fast = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, fast.url, module_version="V1")
    for _ in range(2):
        await published(client, event_body(store_id))
    # (4 slots: one merchant may hold 2, one host 1)
    worker = make_worker(app, concurrency=4, per_host_limit=1, limits=PATIENT)  # real clock

    async with running(worker):
        # when the slow host is full and the store's other V2 event had to wait
        await until(lambda: len(slow.requests) == 1)
        await asyncio.sleep(0.05)
        # and then a V1 event of the same store is published
        data = {"imp_uid": "imp_000000000001", "merchant_uid": "order-1"}
        v1 = await published(
            client, event_body(store_id, moduleVersion="V1", type="paid", data=data)
        )
        worker.wake()

        # then it is delivered while the V2 receiver still holds
        await until_status(db_engine, v1, "SUCCEEDED")
        assert len(fast.requests) == 1
        assert len(slow.requests) == 1
    assert_signed(slow.requests, secret)


# --- stopping and dying ----------------------------------------------------------------------


async def test_a_stopped_worker_releases_what_it_holds_and_another_worker_sends_it_again(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given a worker whose receiver holds the request
    owner = await new_owner(db_engine)
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start(hold=True)
    await save_setting(api, owner.token, store_id, receiver.url)
    secret = await issue_secret(api, owner.token, store_id)
    pk = await published(client, event_body(store_id))
    clock = FakeClock()
    stopping = make_worker(app, clock, limits=PATIENT)
    async with running(stopping, grace_seconds=0.2):
        await until(lambda: len(receiver.requests) == 1)
        leased = await load_event(db_engine, pk)
        assert leased.locked_until is not None and leased.lease_token is not None
    # when it has stopped: after the grace period it gave the lease back

    # then the event is due again at once, its attempt recorded as unfinished
    event = await load_event(db_engine, pk)
    assert (event.locked_until, event.lease_token) == (None, None)
    assert event.status == "PENDING"
    assert event.next_attempt_at is not None and event.next_attempt_at <= clock.now
    [unfinished] = await load_attempts(db_engine, pk)
    assert unfinished.error == outbox.UNFINISHED
    assert unfinished.status_code is None

    # when another worker runs
    receiver.hold = False
    assert await make_worker(app, clock).deliver_due() == 1

    # then it sent the same message again, and the event succeeded
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event.message_id
    assert first.body == second.body
    event = await load_event(db_engine, pk)
    assert (event.status, event.attempt_count) == ("SUCCEEDED", 2)
    assert [a.attempt_number for a in await load_attempts(db_engine, pk)] == [1, 2]
    assert_signed(receiver.requests, secret.secret)


async def test_an_attempt_that_ends_within_the_grace_period_is_finished_not_released(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    owner = await new_owner(db_engine)
    store_id = owner.representative_store_id
    receiver, secret = await receiving(api, owner, receiver_pool, hold=True)
    pk = await published(client, event_body(store_id))
    worker = make_worker(app, FakeClock(), limits=PATIENT)

    task = asyncio.create_task(worker.run(grace_seconds=SOON))
    await until(lambda: len(receiver.requests) == 1)
    worker.stop()
    await asyncio.sleep(0.05)
    receiver.release.set()  # the receiver answers while the worker is stopping
    await asyncio.wait_for(task, SOON)

    event = await load_event(db_engine, pk)
    assert (event.status, event.attempt_count, event.locked_until) == ("SUCCEEDED", 1, None)
    assert_signed(receiver.requests, secret)


async def test_a_lease_that_ran_out_passes_the_event_to_another_worker(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given an attempt claimed by a worker that then died (its claim is never finished)
    owner = await new_owner(db_engine)
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url)
    secret = await issue_secret(api, owner.token, store_id)
    pk = await published(client, event_body(store_id))
    clock = FakeClock()
    survivor = make_worker(app, clock)
    state = state_of(app)
    async with AsyncSession(db_engine, expire_on_commit=False) as db:
        claimed = await outbox.claim_due(
            db=db,
            encryptor=state.encryptor,
            now=clock.now,
            limit=1,
            lease=survivor.config.lease,
            capacity=outbox.Capacity(host_in_flight={}, per_host_limit=1),
        )
        await db.commit()
    [dead_claim] = claimed.claims

    # then nobody else takes it while the lease lasts
    clock.advance(seconds=survivor.config.lease.total_seconds() - 1)
    assert await survivor.deliver_due() == 0

    # when the lease has run out
    clock.advance(seconds=2)
    assert await survivor.deliver_due() == 1

    # then the event was sent by the other worker, as the same message, and succeeded
    [request] = receiver.requests
    event = await load_event(db_engine, pk)
    assert request.headers["webhook-id"] == event.message_id
    assert (event.status, event.attempt_count) == ("SUCCEEDED", 2)
    attempts = await load_attempts(db_engine, pk)
    assert [(a.attempt_number, a.error) for a in attempts] == [(1, outbox.UNFINISHED), (2, None)]
    # and the dead worker's claim, finished late, moves nothing
    late = await outbox_finish_failed(db_engine, dead_claim, clock.now)
    assert late.status is None
    assert (await load_event(db_engine, pk)).status == "SUCCEEDED"
    assert_signed(receiver.requests, secret.secret)


async def test_an_event_whose_last_attempt_killed_its_worker_ends_exhausted_not_retried(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given an event on its last scheduled attempt, claimed by a worker that then died
    owner = await new_owner(db_engine)
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url)
    pk = await published(client, event_body(store_id))
    clock = FakeClock()
    survivor = make_worker(app, clock)
    last = survivor.policy.max_attempts
    async with AsyncSession(db_engine, expire_on_commit=False) as db:
        await db.exec(
            update(WebhookEvent)
            .where(col(WebhookEvent.id) == pk)
            .values(attempt_count=last - 1, status="RETRYING")
        )
        claimed = await outbox.claim_due(
            db=db,
            encryptor=state_of(app).encryptor,
            now=clock.now,
            limit=1,
            lease=survivor.config.lease,
            capacity=outbox.Capacity(host_in_flight={}, per_host_limit=1),
            policy=survivor.policy,
        )
        await db.commit()
    assert [c.attempt_number for c in claimed.claims] == [last]

    # when its lease has run out
    clock.advance(seconds=survivor.config.lease.total_seconds() + 1)
    assert await survivor.deliver_due() == 0

    # then no seventh attempt is made: the event is EXHAUSTED, saying why
    assert receiver.requests == []
    event = await load_event(db_engine, pk)
    assert (event.status, event.attempt_count, event.next_attempt_at) == ("EXHAUSTED", last, None)
    assert event.status_reason is not None and "did not finish" in event.status_reason
    assert (event.locked_until, event.lease_token) == (None, None)


async def outbox_finish_failed(
    engine: AsyncEngine, claim: outbox.Claim, now: datetime
) -> outbox.Outcome:
    result = DeliveryResult(
        request_headers=claim.request.headers,
        status_code=500,
        response_body="late",
        error="The receiver answered HTTP 500; only 200 counts as received.",
        duration_ms=1,
    )
    async with AsyncSession(engine, expire_on_commit=False) as db:
        outcome = await outbox.finish(
            db=db, claim=claim, result=result, now=now, policy=outbox.RetryPolicy()
        )
        await db.commit()
    return outcome


# --- retention -------------------------------------------------------------------------------


async def test_the_prune_deletes_old_finished_events_and_attempts_and_keeps_scheduled_ones(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given events in every state, all published long ago but one
    owner = await new_owner(db_engine)
    store_id = owner.representative_store_id
    receiver, secret = await receiving(api, owner, receiver_pool)
    clock = FakeClock()
    worker = make_worker(app, clock)
    succeeded = await published(client, event_body(store_id))
    recent = await published(client, event_body(store_id))
    clock.now = utcnow()
    assert await worker.deliver_due() == 2
    receiver.status = 500
    exhausted = await published(client, event_body(store_id))
    clock.now = utcnow()
    assert await make_worker(app, clock, schedule_minutes=()).deliver_due() == 1
    retrying = await published(client, event_body(store_id))
    clock.now = utcnow()
    assert await worker.deliver_due() == 1
    skipped_answer = await publish(client, event_body(store_id, mode="LIVE"))
    skipped = event_pk(skipped_answer)
    await delivered(api, owner.token, store_id)  # a test call, recorded as a delivery
    old = [succeeded, exhausted, retrying, skipped]
    await age(db_engine, old, days=40)
    assert (await load_event(db_engine, retrying)).status == "RETRYING"

    # when the worker prunes, with 30 days of retention
    await worker._prune()

    # then the old finished events went with their attempts, and the old test call
    remaining = await event_pks(db_engine)
    assert remaining == {recent, retrying}
    for pk in (succeeded, exhausted):
        assert await load_attempts(db_engine, pk) == []
    assert len(await load_attempts(db_engine, recent)) == 1
    assert await count_test_calls(db_engine) == 0
    # and the event still scheduled is kept, and is still delivered
    receiver.status = 200
    clock.advance(minutes=1)
    assert await worker.deliver_due() == 1
    assert (await load_event(db_engine, retrying)).status == "SUCCEEDED"
    assert_signed(receiver.requests, secret)


async def age(engine: AsyncEngine, pks: list[int], *, days: int) -> None:
    """Move events and all their attempts (and every test call) `days` into the past."""
    then = datetime.now(UTC) - timedelta(days=days)
    async with AsyncSession(engine) as db:
        await db.exec(
            update(WebhookEvent).where(col(WebhookEvent.id).in_(pks)).values(published_at=then)
        )
        await db.exec(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.event_pk).in_(pks) | col(WebhookDelivery.event_pk).is_(None))
            .values(attempted_at=then)
        )
        await db.commit()


async def event_pks(engine: AsyncEngine) -> set[int]:
    async with AsyncSession(engine) as db:
        return {pk for pk in (await db.exec(select(WebhookEvent.id))).all() if pk is not None}


async def count_test_calls(engine: AsyncEngine) -> int:
    async with AsyncSession(engine) as db:
        statement = select(WebhookDelivery.id).where(col(WebhookDelivery.event_pk).is_(None))
        return len((await db.exec(statement)).all())


# --- metrics ---------------------------------------------------------------------------------


async def test_metrics_count_publishing_attempts_outcomes_and_latency(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given one event delivered at the second attempt, one duplicate, one skipped at publish
    owner = await new_owner(db_engine)
    store_id = owner.representative_store_id
    receiver, secret = await receiving(api, owner, receiver_pool, status=500)
    body = event_body(store_id)
    await published(client, body)
    assert (await publish(client, body)).status_code == 200
    assert (await publish(client, event_body(store_id, mode="LIVE"))).status_code == 202
    clock = FakeClock()
    worker = make_worker(app, clock)
    assert await worker.deliver_due() == 1
    receiver.status = 200
    clock.advance(minutes=1)
    assert await worker.deliver_due() == 1
    await worker._update_backlog()

    # then
    text = state_of(app).metrics.render().decode()
    for line in (
        'webhook_events_published_total{outcome="accepted"} 1.0',
        'webhook_events_published_total{outcome="duplicate"} 1.0',
        'webhook_events_published_total{outcome="skipped"} 1.0',
        'webhook_attempts_total{status_class="5xx",trigger="EVENT"} 1.0',
        'webhook_attempts_total{status_class="2xx",trigger="EVENT"} 1.0',
        'webhook_messages_total{outcome="succeeded"} 1.0',
        'webhook_messages_total{outcome="skipped"} 1.0',
        "webhook_delivery_latency_seconds_count 1.0",
        "webhook_due_backlog 0.0",
    ):
        assert line in text, line
    # the latency runs from publication to the first success, on the worker's clock
    [latency_line] = [
        line
        for line in text.splitlines()
        if line.startswith("webhook_delivery_latency_seconds_sum")
    ]
    assert 60.0 <= float(latency_line.split()[-1]) <= 120.0
    assert_signed(receiver.requests, secret)


async def test_the_backlog_gauges_count_due_events_and_the_oldest_wait(
    api: Api, client: httpx.AsyncClient, app: Starlette, db_engine: AsyncEngine
) -> None:
    owner = await new_owner(db_engine)
    store_id = owner.representative_store_id
    await save_setting(api, owner.token, store_id, "http://127.0.0.1:9/never-called")
    for _ in range(3):
        await published(client, event_body(store_id))
    clock = FakeClock()
    clock.advance(minutes=5)

    await make_worker(app, clock)._update_backlog()

    text = state_of(app).metrics.render().decode()
    assert "webhook_due_backlog 3.0" in text
    [oldest] = [line for line in text.splitlines() if line.startswith("webhook_oldest_due_age")]
    assert 300.0 <= float(oldest.split()[-1]) <= 360.0
