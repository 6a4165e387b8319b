"""Publishing an event while its store's webhook setting changes: the publish reads the setting
before its write transaction, and an event it would skip (final) is confirmed in the write."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.applications import Starlette

from gql_api.settings import Settings
from gql_api.webhooks import outbox
from gql_api.webhooks.events import EventInput
from tests.factories import seed_merchant
from tests.support import Api
from tests.webhooks.events_support import (
    FakeClock,
    event_body,
    event_pk,
    event_settings,
    load_event,
    make_worker,
    publish,
    receiving,
)
from tests.webhooks.receiver import Receiver, Receivers


@pytest.fixture(name="settings")
def settings_for_events(database_url: str) -> Settings:
    return event_settings(database_url)


async def test_a_url_saved_while_an_event_is_published_gets_the_event_delivered(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a store without a webhook URL, whose owner saves one just after the publish read
    # the setting (and before it stored the event)
    owner = (await seed_merchant(db_engine, roles=(), stores=())).owner
    prepare_publish = outbox.prepare_publish
    saved: list[Receiver] = []

    async def then_a_url_is_saved(
        *, db: AsyncSession, event: EventInput, now: datetime
    ) -> outbox.Accepting:
        accepting = await prepare_publish(db=db, event=event, now=now)
        receiver, _ = await receiving(api, owner, receiver_pool)
        saved.append(receiver)
        return accepting

    monkeypatch.setattr(outbox, "prepare_publish", then_a_url_is_saved)

    # when the event is published
    answer = await publish(client, event_body(owner.representative_store_id))

    # then it is accepted for delivery, not skipped, and a worker delivers it
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "PENDING"
    assert await make_worker(app, FakeClock()).deliver_due() == 1
    [receiver] = saved
    assert len(receiver.requests) == 1
    assert (await load_event(db_engine, event_pk(answer))).status == "SUCCEEDED"
