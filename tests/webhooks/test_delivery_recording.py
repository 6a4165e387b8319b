"""An attempt the receiver answered is recorded, whatever else the worker's cycle meets: a
claim that fails after it, a database away when it is recorded, the worker's housekeeping, an
event whose request cannot be prepared. Dropped, its lease would run out and the same
webhook-id would be sent again although the receiver had answered.

Faults are injected where the database would raise them (a statement timeout, a lost
connection): the outbox's functions, as the intake's tests do for SQLite's write lock."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.applications import Starlette

from db.models import WebhookSetting
from gql_api.settings import Settings
from gql_api.webhooks import outbox, upkeep
from tests.factories import seed_merchant
from tests.support import Api, SignedUp
from tests.webhooks.events_support import (
    FakeClock,
    event_body,
    event_settings,
    load_attempts,
    load_event,
    make_worker,
    published,
    receiving,
    running,
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


def statement_timeout() -> OperationalError:
    return OperationalError("SELECT …", {}, Exception("canceling statement due to timeout"))


async def test_an_answered_attempt_is_recorded_though_the_claim_after_it_fails(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given an event its receiver answers with 200, and a claim that fails (a statement
    # timeout) in the cycle that records that answer
    receiver, _ = await receiving(api, owner, receiver_pool)
    pk = await published(client, event_body(owner.representative_store_id))
    clock = FakeClock()
    worker = make_worker(app, clock)
    claim_due = outbox.claim_due
    claims = 0

    async def failing_once(**arguments: Any) -> outbox.ClaimResult:
        nonlocal claims
        claims += 1
        if claims == 2:  # the first claim leased the event; the second runs once it ended
            raise statement_timeout()
        return await claim_due(**arguments)

    monkeypatch.setattr(outbox, "claim_due", failing_once)

    # when the worker sends it, and its cycle fails
    async with running(worker):
        await until(lambda: claims >= 2)
        await until_status(db_engine, pk, "SUCCEEDED")

    # then the answer is recorded, and no worker sends the event again once the lease is over
    clock.advance(seconds=worker.config.lease.total_seconds() + 1)
    assert await make_worker(app, clock).deliver_due() == 0
    assert [attempt.status_code for attempt in await load_attempts(db_engine, pk)] == [200]
    assert len(receiver.requests) == 1


async def test_an_answered_attempt_is_recorded_by_a_later_cycle_when_the_database_was_away(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given an event its receiver answers with 200, and a database that refuses to record it
    # for a while (the cycle's transaction, then the attempt's own, fail)
    receiver, _ = await receiving(api, owner, receiver_pool)
    pk = await published(client, event_body(owner.representative_store_id))
    clock = FakeClock()
    worker = make_worker(app, clock)
    finish_many = outbox.finish_many
    refused = 0
    away = True

    async def while_away(**arguments: Any) -> list[outbox.Outcome]:
        nonlocal refused
        if away and arguments["finished"]:  # the claim before the attempt goes through
            refused += 1
            raise statement_timeout()
        return await finish_many(**arguments)

    monkeypatch.setattr(outbox, "finish_many", while_away)

    # when the database comes back
    async with running(worker):
        await until(lambda: refused >= 2)
        away = False
        await until_status(db_engine, pk, "SUCCEEDED")

    # then the answer is recorded once, and the event is not sent again
    clock.advance(seconds=worker.config.lease.total_seconds() + 1)
    assert await make_worker(app, clock).deliver_due() == 0
    assert [attempt.status_code for attempt in await load_attempts(db_engine, pk)] == [200]
    assert len(receiver.requests) == 1


async def test_an_answered_attempt_is_recorded_while_the_worker_keeps_house(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a worker whose housekeeping (the backlog read, then the retention prune) is slow
    # (a large table, a busy database), and an event its receiver answers with 200
    receiver, _ = await receiving(api, owner, receiver_pool)
    slow = asyncio.Event()
    backlog = upkeep.backlog

    async def slow_backlog(db: AsyncSession, now: datetime) -> upkeep.Backlog:
        await slow.wait()
        return await backlog(db, now)

    monkeypatch.setattr(upkeep, "backlog", slow_backlog)
    pk = await published(client, event_body(owner.representative_store_id))
    worker = make_worker(app, FakeClock())

    # when the event is delivered while the housekeeping is still running
    async with running(worker):
        try:
            await until(lambda: len(receiver.requests) == 1)

            # then the answer is recorded without waiting for it (nor for the lease's margin)
            await until_status(db_engine, pk, "SUCCEEDED")
        finally:
            slow.set()
    assert [attempt.status_code for attempt in await load_attempts(db_engine, pk)] == [200]
    assert len(receiver.requests) == 1


async def test_a_stored_url_that_no_longer_parses_fails_its_event_and_not_the_others(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given two merchants with an event due each, the first with a URL whose port is out of
    # range (stored before such URLs were refused)
    broken_owner = (await seed_merchant(db_engine, roles=(), stores=())).owner
    working_owner = (await seed_merchant(db_engine, roles=(), stores=())).owner
    broken, _ = await receiving(api, broken_owner, receiver_pool)
    async with AsyncSession(db_engine) as db:
        await db.exec(update(WebhookSetting).values(url="http://127.0.0.1:99999/hook"))
        await db.commit()
    working, _ = await receiving(api, working_owner, receiver_pool)
    bad = await published(client, event_body(broken_owner.representative_store_id))
    good = await published(client, event_body(working_owner.representative_store_id))
    clock = FakeClock()
    worker = make_worker(app, clock, schedule_minutes=(1.0,))

    # when a worker makes every scheduled attempt
    await worker.deliver_due()
    clock.advance(minutes=2)
    await worker.deliver_due()
    clock.advance(minutes=600)
    assert await worker.deliver_due() == 0

    # then the other merchant's event is delivered, and the broken one failed both of its
    # attempts, saying why, and ended (nothing sent, nothing left leased)
    assert (await load_event(db_engine, good)).status == "SUCCEEDED"
    assert len(working.requests) == 1 and broken.requests == []
    event = await load_event(db_engine, bad)
    assert (event.status, event.attempt_count, event.locked_until) == ("EXHAUSTED", 2, None)
    attempts = await load_attempts(db_engine, bad)
    assert len(attempts) == 2
    assert all(a.error and a.error.startswith("Not sent: the request could") for a in attempts)
