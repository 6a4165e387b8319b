"""Review: a ready claim is counted and recorded as an unfinished attempt when claimed, never
sent until its host has room. When its worker dies (no stop(): killed, out of memory), the
claim rule for unfinished attempts ("its worker stopped while sending it") ends an event at
its last attempt EXHAUSTED although nothing was ever sent for it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from gql_api.settings import Settings
from gql_api.webhooks.sender import Limits
from tests.factories import seed_merchant
from tests.support import Api
from tests.webhooks.events_support import (
    FakeClock,
    event_body,
    event_settings,
    load_attempts,
    load_event,
    make_worker,
    published,
    until,
)
from tests.webhooks.helpers import save_setting
from tests.webhooks.receiver import Receivers

PATIENT = Limits(connect_seconds=5.0, read_seconds=30.0, response_max_bytes=65536)


@pytest.fixture(name="settings")
def settings_for_events(database_url: str) -> Settings:
    return event_settings(database_url)


async def test_an_event_never_sent_is_not_exhausted_when_its_worker_dies(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given two events with one attempt each (no retries), for a receiver that holds
    owner = (await seed_merchant(db_engine, roles=(), stores=())).owner
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start(hold=True)
    await save_setting(api, owner.token, store_id, receiver.url)
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
