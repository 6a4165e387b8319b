"""Ready claims: a host at its limit gets as many events claimed ahead, each sent the moment
one of the host's attempts ends (the next cycle records and claims meanwhile), never more in
flight than the limit; a stopping worker hands them back as if never claimed. The last three
tests come from a hostile review of the first version (each failed on it)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from gql_api.ids import pk_of
from gql_api.settings import Settings
from gql_api.webhooks import outbox
from tests.factories import seed_merchant
from tests.support import Api, SignedUp
from tests.webhooks.events_support import (
    PATIENT,
    SOON,
    FakeClock,
    assert_signed,
    event_body,
    event_settings,
    load_attempts,
    load_event,
    make_worker,
    publish,
    published,
    running,
    until,
    until_status,
)
from tests.webhooks.helpers import issue_secret, save_setting
from tests.webhooks.receiver import Receiver, Receivers


@pytest.fixture(name="settings")
def settings_for_events(database_url: str) -> Settings:
    return event_settings(database_url)


async def held_store(
    api: Api, db_engine: AsyncEngine, receiver_pool: Receivers
) -> tuple[SignedUp, str, Receiver]:
    """A merchant whose representative store sends to a receiver that holds its requests."""
    owner = (await seed_merchant(db_engine, roles=(), stores=())).owner
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start(hold=True)
    await save_setting(api, owner.token, store_id, receiver.url)
    return owner, store_id, receiver


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
    owner, store_id, receiver = await held_store(api, db_engine, receiver_pool)
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
    _, store_id, receiver = await held_store(api, db_engine, receiver_pool)
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


# --- a worker dying with ready claims: an event never sent is not EXHAUSTED "while sending it"
# (no ready claim is made for an event's last attempt)


async def test_an_event_never_sent_is_not_exhausted_when_its_worker_dies(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given two events with one attempt each (no retries), for a receiver that holds
    _, store_id, receiver = await held_store(api, db_engine, receiver_pool)
    first, second = [await published(client, event_body(store_id)) for _ in range(2)]
    clock = FakeClock()
    config: dict[str, Any] = {"schedule_minutes": (), "limits": PATIENT, "per_host_limit": 1}
    dying = make_worker(app, clock, concurrency=4, poll_seconds=0.05, **config)

    # when a worker sends the first (held) and has run a few cycles
    task = asyncio.create_task(dying.run())
    await until(lambda: len(receiver.requests) == 1)
    await asyncio.sleep(0.2)  # (cycles: the second is claimed ahead, ready)
    # and it dies: nothing it holds is sent, released or handed back
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    dying._stopping = True  # (a dead process: no callback sends anything more)
    held = list(dying._sending)
    for attempt in held:
        attempt.cancel()
    await asyncio.gather(*held, return_exceptions=True)

    # and another worker runs once every lease has run out
    clock.advance(seconds=2 * dying.config.lease.total_seconds())  # (a ready claim's too)
    receiver.hold = False
    await make_worker(app, clock, **config).deliver_due()

    # then the second event, which no worker ever sent, is sent now (not EXHAUSTED)
    event = await load_event(db_engine, second)
    attempts = [(a.attempt_number, a.error) for a in await load_attempts(db_engine, second)]
    assert event.status == "SUCCEEDED", (event.status, event.status_reason, attempts)
    assert len(receiver.requests) == 1 + 1
    assert (await load_event(db_engine, first)).status == "EXHAUSTED"  # (it was sent)


# --- resends: a handed-back claim never gives a console resend's number out again (no resend is
# made ready; unclaim undoes only a claim whose attempt is still the last counted)


RESEND = """
mutation Resend($id: ID!) {
  webhookEventResend(input: { id: $id }) {
    delivery { trigger attemptNumber succeeded }
    userErrors { field code message }
  }
}
"""

RESEND_FAILED = """
mutation ResendFailed($input: WebhookEventsResendFailedInput!) {
  webhookEventsResendFailed(input: $input) { queuedCount userErrors { field code message } }
}
"""


async def test_an_unclaimed_queued_resend_does_not_reuse_a_console_resends_number(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given two EXHAUSTED events of one receiver (answers 500), both queued for a resend
    seeded = await seed_merchant(db_engine, roles=(), stores=())
    token, store_id = seeded.owner.token, seeded.owner.representative_store_id
    receiver = await receiver_pool.start(status=500)
    await save_setting(api, token, store_id, receiver.url)
    ids = []
    for _ in range(2):
        answer = await publish(client, event_body(store_id))
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])
    first_pk, second_pk = (pk_of(i, "WebhookEvent") for i in ids)
    assert first_pk is not None and second_pk is not None
    assert await make_worker(app, schedule_minutes=()).deliver_due() == 2
    queued = await api.gql(RESEND_FAILED, {"input": {"storeId": store_id}}, token=token)
    assert queued.data["webhookEventsResendFailed"]["queuedCount"] == 2

    # when a worker (one request per host) sends the first, the second held ready (MANUAL)
    receiver.hold = True
    worker = make_worker(app, concurrency=4, per_host_limit=1, poll_seconds=0.05, limits=PATIENT)
    console: asyncio.Task[Any] | None = None
    async with running(worker, grace_seconds=0.2):
        await until(lambda: len(receiver.requests) == 3)
        await asyncio.sleep(0.2)  # (cycles: the second is claimed ahead, ready)
        # and the console resends the second meanwhile (counted at once, sent now)
        console = asyncio.create_task(api.gql(RESEND, {"id": ids[1]}, token=token))
        await until(lambda: len(receiver.requests) == 4)
    # and the worker stops: the ready claim is handed back
    receiver.release.set()
    assert console is not None
    resent = (await console).data["webhookEventResend"]
    assert resent["userErrors"] == [], resent
    receiver.hold = False
    await make_worker(app).deliver_due()

    # then the second event's MANUAL attempts each have their own number, and the count
    # of manual resends is the number of them made
    manual = [
        a.attempt_number for a in await load_attempts(db_engine, second_pk) if a.trigger == "MANUAL"
    ]
    event = await load_event(db_engine, second_pk)
    assert len(manual) == len(set(manual)), manual
    assert event.manual_resend_count == len(manual), (event.manual_resend_count, manual)


# --- the merchant's share: a host shared with another merchant takes no ready claim, so a
# merchant at its share gets no further attempt in when the other merchant's attempt ends


async def test_a_merchant_at_its_share_gets_no_more_attempts_through_a_shared_host(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given a receiver host H shared by merchants M1 and M2, and two slow receivers of M2
    m1 = (await seed_merchant(db_engine, roles=(), stores=())).owner
    m2 = await seed_merchant(db_engine, roles=(), stores=("T2", "H"))
    shared = await receiver_pool.start(hold=True)
    t1, t2 = await receiver_pool.start(hold=True), await receiver_pool.start(hold=True)
    token = m2.owner.token
    await save_setting(api, m1.token, m1.representative_store_id, shared.url)
    await save_setting(api, token, m2.owner.representative_store_id, t1.url)
    await save_setting(api, token, m2.stores["T2"], t2.url, usesRepresentativeSetting=False)
    await save_setting(api, token, m2.stores["H"], shared.url, usesRepresentativeSetting=False)
    m1_event = await published(client, event_body(m1.representative_store_id))
    await published(client, event_body(m2.owner.representative_store_id))
    await published(client, event_body(m2.stores["T2"]))
    for _ in range(2):
        await published(client, event_body(m2.stores["H"]))
    # (4 slots: one merchant may hold 2, one host 1)
    worker = make_worker(app, concurrency=4, per_host_limit=1, poll_seconds=0.05, limits=PATIENT)

    async with running(worker):
        # when M2 holds its two slots (T1, T2) and M1's attempt to H is being sent
        await until(lambda: (len(shared.requests), len(t1.requests), len(t2.requests)) == (1, 1, 1))
        await asyncio.sleep(0.2)  # (cycles: M2's first event to H is claimed ahead, ready)
        # and H answers M1
        shared.release.set()
        await until_status(db_engine, m1_event, "SUCCEEDED")
        await asyncio.sleep(0.1)  # (time for M2's request to H, were it sent)

        # then M2, at its share with T1 and T2 still holding, got no third attempt in flight
        assert len(shared.requests) == 1, "M2 sent a third attempt past its share"
        assert (len(t1.requests), len(t2.requests)) == (1, 1)
