"""Review: a queued resend held as a ready claim, handed back (outbox.unclaim) after a console
resend of the same event was counted meanwhile, must not leave two MANUAL attempts with one
number: unclaim decrements manual_resend_count whatever happened to it since the claim."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from gql_api.ids import pk_of
from gql_api.settings import Settings
from gql_api.webhooks.sender import Limits
from tests.factories import seed_merchant
from tests.support import Api
from tests.webhooks.events_support import (
    event_body,
    event_settings,
    load_attempts,
    load_event,
    make_worker,
    publish,
    running,
    until,
)
from tests.webhooks.helpers import save_setting
from tests.webhooks.receiver import Receivers

PATIENT = Limits(connect_seconds=5.0, read_seconds=30.0, response_max_bytes=65536)

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


@pytest.fixture(name="settings")
def settings_for_events(database_url: str) -> Settings:
    return event_settings(database_url)


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
