"""The engine end to end: published over HTTP, delivered by a worker, retried, recorded."""

from __future__ import annotations

import json

import httpx
import pytest
from standardwebhooks import Webhook

from gql_api.settings import Settings
from tests.factories import seed_merchant
from tests.support import Api
from tests.webhooks.events_support import (
    FakeClock,
    event_body,
    event_settings,
    make_worker,
    publish,
)
from tests.webhooks.helpers import issue_secret, save_setting
from tests.webhooks.receiver import Receivers


@pytest.fixture(name="settings")
def settings_for_events(database_url: str) -> Settings:
    return event_settings(database_url)


async def test_published_event_is_delivered_signed_and_retried_with_the_same_id(
    api: Api, client: httpx.AsyncClient, app: object, database_url: str, receiver_pool: Receivers
) -> None:
    seeded = await seed_merchant(database_url, roles=())
    store_id = seeded.owner.representative_store_id
    token = seeded.owner.token
    receiver = await receiver_pool.start(status=500)
    await save_setting(api, token, store_id, receiver.url)
    secret = await issue_secret(api, token, store_id)

    body = event_body(store_id)
    answer = await publish(client, body)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "PENDING"
    again = await publish(client, body)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["id"] == answer.json()["id"]

    clock = FakeClock()
    worker = make_worker(app, clock)  # type: ignore[arg-type]
    assert await worker.deliver_due() == 1
    assert len(receiver.requests) == 1
    assert await worker.deliver_due() == 0  # the retry is not due yet
    receiver.status = 200
    clock.advance(minutes=1)
    assert await worker.deliver_due() == 1
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    for request in receiver.requests:
        payload = Webhook(secret.secret).verify(request.body, request.headers)
        assert payload["type"] == "Transaction.Paid"
        assert payload["data"]["storeId"] == store_id
    assert json.loads(first.body)["data"]["paymentId"] == body["data"]["paymentId"]
    clock.advance(minutes=600)
    assert await worker.deliver_due() == 0
