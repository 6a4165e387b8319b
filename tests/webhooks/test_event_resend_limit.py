"""webhookEventResend is limited per store, as test calls are: at most 10 manual resends a
minute, counted in the database before anything is sent or counted against the event."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import WebhookDelivery
from gql_api.settings import Settings
from tests.factories import seed_merchant
from tests.support import Api
from tests.webhooks.events_support import event_body, event_settings, publish
from tests.webhooks.helpers import errors_of, save_setting
from tests.webhooks.receiver import Receivers

RESENDS_PER_MINUTE = 10

RESEND = """
mutation Resend($id: ID!) {
  webhookEventResend(input: { id: $id }) {
    event { id manualResendCount }
    delivery { trigger attemptNumber succeeded }
    userErrors { field code message }
  }
}
"""

EVENT = """
query Event($id: ID!) {
  node(id: $id) { ... on WebhookEvent { manualResendCount attempts { nodes { trigger } } } }
}
"""


@pytest.fixture(name="settings")
def settings_for_events(database_url: str) -> Settings:
    return event_settings(database_url)


async def resend(api: Api, token: str, event_id: str) -> dict[str, Any]:
    result = await api.gql(RESEND, {"id": event_id}, token=token)
    payload: dict[str, Any] = result.data["webhookEventResend"]
    return payload


async def event(api: Api, token: str, event_id: str) -> dict[str, Any]:
    result = await api.gql(EVENT, {"id": event_id}, token=token)
    found: dict[str, Any] = result.data["node"]
    return found


async def test_the_eleventh_resend_in_a_minute_of_a_store_is_refused_and_changes_nothing(
    api: Api, client: httpx.AsyncClient, db_engine: AsyncEngine, receiver_pool: Receivers
) -> None:
    # given: eleven events of a store whose V2 TEST URL is a receiver
    seeded = await seed_merchant(db_engine)
    token, store_id = seeded.owner.token, seeded.owner.representative_store_id
    receiver = await receiver_pool.start(status=200)
    await save_setting(api, token, store_id, receiver.url)
    event_ids = []
    for _ in range(RESENDS_PER_MINUTE + 1):
        answer = await publish(client, event_body(store_id))
        assert answer.status_code == 202, answer.text
        event_ids.append(answer.json()["id"])
    *first_ten, eleventh = event_ids

    # when: each is resent once
    sent = [await resend(api, token, event_id) for event_id in first_ten]
    refused = await resend(api, token, eleventh)

    # then: ten go through; the eleventh is refused, before anything is sent or counted
    assert [(p["userErrors"], p["delivery"]["trigger"]) for p in sent] == [([], "MANUAL")] * 10
    assert errors_of(refused) == [("WEBHOOK_RESEND_RATE_LIMITED", ["input", "id"])]
    assert "10 resends a minute per store" in refused["userErrors"][0]["message"]
    assert refused["event"] is None and refused["delivery"] is None
    assert len(receiver.requests) == RESENDS_PER_MINUTE
    assert await event(api, token, eleventh) == {
        "manualResendCount": 0,
        "attempts": {"nodes": []},
    }

    # and once those resends are a minute old, the eleventh goes through as its first resend
    async with AsyncSession(db_engine) as db:
        manual = select(WebhookDelivery).where(col(WebhookDelivery.trigger) == "MANUAL")
        for row in (await db.exec(manual)).all():
            row.attempted_at -= timedelta(seconds=61)
            db.add(row)
        await db.commit()
    later = await resend(api, token, eleventh)
    assert later["userErrors"] == []
    assert (later["event"]["manualResendCount"], later["delivery"]["attemptNumber"]) == (1, 1)
