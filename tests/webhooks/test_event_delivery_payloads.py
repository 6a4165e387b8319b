"""Where an event goes and what it carries, decided at send time: the setting in force (a
changed URL, a sub-store following the representative store, a removed URL), the body in the
setting's version and content type, and one signature per active secret.

Every signed request a receiver gets is verified with `standardwebhooks` and PortOne's SDK.
"""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette

from db.models import Store
from gql_api.settings import Settings
from gql_api.webhooks.events import rfc3339
from tests.factories import Seeded, seed_merchant
from tests.support import Api, SignedUp
from tests.webhooks.events_support import (
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
    state_of,
)
from tests.webhooks.helpers import SECRET_EXPIRE, issue_secret, save_setting
from tests.webhooks.receiver import Receivers

SUB_STORE = "Sub store"


@pytest.fixture(name="settings")
def settings_for_events(database_url: str) -> Settings:
    return event_settings(database_url)


@pytest.fixture
async def seeded(db_engine: AsyncEngine) -> Seeded:
    return await seed_merchant(db_engine, roles=(), stores=(SUB_STORE,))


@pytest.fixture
def owner(seeded: Seeded) -> SignedUp:
    return seeded.owner


# --- the setting in force --------------------------------------------------------------------


async def test_a_changed_url_is_used_from_the_next_attempt_on(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
) -> None:
    # given an event that failed at the old URL
    store_id = owner.representative_store_id
    old = await receiver_pool.start(status=500)
    new = await receiver_pool.start(status=200)
    await save_setting(api, owner.token, store_id, old.url)
    secret = await issue_secret(api, owner.token, store_id)
    pk = await published(client, event_body(store_id))
    clock = FakeClock()
    worker = make_worker(app, clock)
    assert await worker.deliver_due() == 1

    # when the merchant saves another URL before the retry
    await save_setting(api, owner.token, store_id, new.url)
    clock.advance(minutes=1)
    assert await worker.deliver_due() == 1

    # then the retry went to the new URL, as the same message
    assert len(old.requests) == 1 and len(new.requests) == 1
    assert old.requests[0].headers["webhook-id"] == new.requests[0].headers["webhook-id"]
    assert old.requests[0].body == new.requests[0].body
    assert [a.url for a in await load_attempts(db_engine, pk)] == [old.url, new.url]
    assert (await load_event(db_engine, pk)).status == "SUCCEEDED"
    assert_signed([*old.requests, *new.requests], secret.secret)


async def test_a_sub_store_following_the_representative_store_is_sent_there_with_its_secrets(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    seeded: Seeded,
    owner: SignedUp,
    receiver_pool: Receivers,
) -> None:
    # given the representative store's URL and two secrets, and a sub-store with a secret of
    # its own but no setting (it follows the representative store)
    representative = owner.representative_store_id
    sub_store = seeded.stores[SUB_STORE]
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, representative, receiver.url)
    secrets = [(await issue_secret(api, owner.token, representative)).secret for _ in range(2)]
    own_secret = await issue_secret(api, owner.token, sub_store)

    # when an event of the sub-store is delivered
    pk = await published(client, event_body(sub_store))
    assert await make_worker(app, FakeClock()).deliver_due() == 1

    # then it went to the representative's URL, signed with the representative's secrets only
    [request] = receiver.requests
    assert json.loads(request.body)["data"]["storeId"] == sub_store
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert_signed(receiver.requests, *secrets)
    with pytest.raises(WebhookVerificationError):
        assert_signed(receiver.requests, own_secret.secret)
    assert (await load_event(db_engine, pk)).status == "SUCCEEDED"


async def test_without_a_url_nothing_is_sent_and_the_event_is_skipped_at_publish(
    client: httpx.AsyncClient, app: Starlette, db_engine: AsyncEngine, owner: SignedUp
) -> None:
    answer = await publish(client, event_body(owner.representative_store_id))
    assert answer.json()["status"] == "SKIPPED"

    assert await make_worker(app, FakeClock()).deliver_due() == 0

    assert await load_attempts(db_engine, event_pk(answer)) == []
    assert (await load_event(db_engine, event_pk(answer))).status == "SKIPPED"


async def test_a_url_removed_before_a_retry_skips_the_event_at_that_attempt(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
) -> None:
    # given an event waiting for its retry
    store_id = owner.representative_store_id
    receiver, secret = await receiving(api, owner, receiver_pool, status=500)
    pk = await published(client, event_body(store_id))
    clock = FakeClock()
    worker = make_worker(app, clock)
    assert await worker.deliver_due() == 1

    # when the URL is removed, then the retry is due
    await save_setting(api, owner.token, store_id, None)
    clock.advance(minutes=1)
    assert await worker.deliver_due() == 0

    # then the event ends SKIPPED, visibly, with no further attempt
    event = await load_event(db_engine, pk)
    assert event.status == "SKIPPED"
    assert event.status_reason is not None and "No V2 TEST webhook URL" in event.status_reason
    assert (event.next_attempt_at, event.locked_until, event.attempt_count) == (None, None, 1)
    assert len(await load_attempts(db_engine, pk)) == 1
    assert len(receiver.requests) == 1
    metrics = state_of(app).metrics.render().decode()
    assert 'webhook_messages_total{outcome="skipped"} 1.0' in metrics
    assert_signed(receiver.requests, secret)


async def test_an_event_of_a_store_deleted_before_its_retry_is_skipped(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    seeded: Seeded,
    owner: SignedUp,
    receiver_pool: Receivers,
) -> None:
    # given an event of a sub-store waiting for its retry
    sub_store = seeded.stores[SUB_STORE]
    receiver, secret = await receiving(api, owner, receiver_pool, status=500)
    pk = await published(client, event_body(sub_store))
    clock = FakeClock()
    worker = make_worker(app, clock)
    assert await worker.deliver_due() == 1

    # when the sub-store is deleted, then the retry is due
    async with AsyncSession(db_engine) as db:
        await db.exec(
            update(Store).where(col(Store.store_id) == sub_store).values(deleted_at=clock.now)
        )
        await db.commit()
    clock.advance(minutes=1)
    assert await worker.deliver_due() == 0

    # then nothing more is sent, and the event says why
    event = await load_event(db_engine, pk)
    assert (event.status, event.status_reason) == ("SKIPPED", "The store was deleted.")
    assert len(receiver.requests) == 1
    assert_signed(receiver.requests, secret)


# --- the body, rendered from the setting at send time ---------------------------------------


async def test_v2_2024_04_25_json_carries_type_publish_timestamp_and_data(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
) -> None:
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url, payloadVersion="V2024_04_25")
    secret = await issue_secret(api, owner.token, store_id)
    body = event_body(
        store_id,
        type="Transaction.Cancelled",
        data={
            "paymentId": "payment-1",
            "transactionId": "tx-1",
            "cancellationId": "cancel-1",
            "extra": {"kept": [1, 2]},
        },
    )
    pk = await published(client, body)

    assert await make_worker(app, FakeClock()).deliver_due() == 1

    event = await load_event(db_engine, pk)
    [request] = receiver.requests
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {
        "type": "Transaction.Cancelled",
        "timestamp": rfc3339(event.published_at),
        "data": {**body["data"], "storeId": store_id},
    }
    assert rfc3339(event.published_at).endswith("Z")
    assert len(rfc3339(event.published_at)) == len("2024-04-25T10:00:00.000Z")
    assert_signed(receiver.requests, secret.secret)


@pytest.mark.parametrize(
    ("content_type", "media_type"),
    [("JSON", "application/json"), ("FORM_URLENCODED", "application/x-www-form-urlencoded")],
)
async def test_legacy_2024_01_01_carries_payment_id_tx_id_and_status(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    owner: SignedUp,
    receiver_pool: Receivers,
    content_type: str,
    media_type: str,
) -> None:
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(
        api,
        owner.token,
        store_id,
        receiver.url,
        payloadVersion="V2024_01_01",
        contentType=content_type,
    )
    secret = await issue_secret(api, owner.token, store_id)
    body = event_body(store_id, type="Transaction.VirtualAccountIssued")
    await published(client, body)

    assert await make_worker(app, FakeClock()).deliver_due() == 1

    [request] = receiver.requests
    assert request.headers["content-type"] == media_type
    expected = {
        "payment_id": body["data"]["paymentId"],
        "tx_id": body["data"]["transactionId"],
        "status": "VirtualAccountIssued",
    }
    if content_type == "JSON":
        assert json.loads(request.body) == expected
    else:
        assert request.form() == {name: [value] for name, value in expected.items()}
    assert_signed(receiver.requests, secret.secret)


async def test_a_billing_key_event_on_a_2024_01_01_setting_is_skipped_with_the_reason(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    owner: SignedUp,
    receiver_pool: Receivers,
) -> None:
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url, payloadVersion="V2024_01_01")
    body = event_body(store_id, type="BillingKey.Issued", data={"billingKey": "billing-key-1"})

    answer = await publish(client, body)

    assert answer.status_code == 202 and answer.json()["status"] == "SKIPPED"
    assert await make_worker(app, FakeClock()).deliver_due() == 0
    assert receiver.requests == []
    event = await load_event(db_engine, event_pk(answer))
    assert event.status_reason is not None
    assert "BillingKey.Issued" in event.status_reason and "2024-04-25" in event.status_reason


@pytest.mark.parametrize("content_type", ["JSON", "FORM_URLENCODED"])
async def test_v1_carries_imp_uid_merchant_uid_and_status(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    owner: SignedUp,
    receiver_pool: Receivers,
    content_type: str,
) -> None:
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(
        api, owner.token, store_id, receiver.url, module_version="V1", contentType=content_type
    )
    data = {"imp_uid": "imp_123456789012", "merchant_uid": "order-1", "cancellation_id": "c-1"}
    await published(client, event_body(store_id, moduleVersion="V1", type="cancelled", data=data))

    assert await make_worker(app, FakeClock()).deliver_due() == 1

    [request] = receiver.requests
    expected = {**data, "status": "cancelled"}
    if content_type == "JSON":
        assert json.loads(request.body) == expected
    else:
        assert request.form() == {name: [value] for name, value in expected.items()}
    assert "webhook-signature" not in request.headers  # V1 notices are not signed


# --- signatures ------------------------------------------------------------------------------


async def test_every_active_secret_signs_and_an_expired_one_no_longer_does(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    owner: SignedUp,
    receiver_pool: Receivers,
) -> None:
    # given two active secrets, as while rotating
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start(status=500)
    await save_setting(api, owner.token, store_id, receiver.url)
    old = await issue_secret(api, owner.token, store_id)
    new = await issue_secret(api, owner.token, store_id)
    await published(client, event_body(store_id))
    clock = FakeClock()
    worker = make_worker(app, clock)

    # when the first attempt is made
    assert await worker.deliver_due() == 1

    # then it carries two signatures, each verifying alone
    first = receiver.requests[0]
    assert len(first.headers["webhook-signature"].split(" ")) == 2
    assert_signed([first], old.secret)
    assert_signed([first], new.secret)

    # when the old secret is expired before the retry
    expired = await api.gql(SECRET_EXPIRE, {"id": old.id}, token=owner.token)
    assert expired.data["webhookSecretExpire"]["userErrors"] == []
    clock.advance(minutes=1)
    assert await worker.deliver_due() == 1

    # then the retry is signed with the new secret only
    second = receiver.requests[1]
    assert len(second.headers["webhook-signature"].split(" ")) == 1
    assert_signed([second], new.secret)
    with pytest.raises(WebhookVerificationError):
        assert_signed([second], old.secret)
