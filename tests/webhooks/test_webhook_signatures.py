"""The received signature verifies with the `standardwebhooks` reference library, per secret."""

from __future__ import annotations

import base64
import json
import secrets

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support import Api
from tests.webhooks.helpers import (
    SECRET_EXPIRE,
    delivered,
    errors_of,
    header_map,
    issue_secret,
    loopback_settings,  # noqa: F401  (the `settings` fixture)
    run_test_call,
    save_setting,
)
from tests.webhooks.receiver import Receivers

STRANGER_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signatures(header: str) -> list[str]:
    return header.split(" ")


async def test_a_json_body_verifies_with_its_secret(api: Api, receiver_pool: Receivers) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url)
    issued = await issue_secret(api, owner.token, store_id)

    # when
    await delivered(api, owner.token, store_id)

    # then
    received = receiver.requests[0]
    event = Webhook(issued.secret).verify(received.body, received.headers)
    assert event == json.loads(received.body)
    assert event["data"]["storeId"] == store_id
    with pytest.raises(WebhookVerificationError):
        Webhook(STRANGER_SECRET).verify(received.body, received.headers)


@pytest.mark.parametrize(
    ("content_type", "payload_version"),
    [("JSON", "V2024_04_25"), ("JSON", "V2024_01_01"), ("FORM_URLENCODED", "V2024_01_01")],
)
async def test_with_two_active_secrets_each_one_verifies_on_its_own(
    api: Api, receiver_pool: Receivers, content_type: str, payload_version: str
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(
        api,
        owner.token,
        store_id,
        receiver.url,
        contentType=content_type,
        payloadVersion=payload_version,
    )
    first = await issue_secret(api, owner.token, store_id)
    second = await issue_secret(api, owner.token, store_id)

    # when
    delivery = await delivered(api, owner.token, store_id)

    # then
    received = receiver.requests[0]
    entries = signatures(received.headers["webhook-signature"])
    assert len(entries) == 2
    assert all(entry.startswith("v1,") for entry in entries)
    for secret in (first.secret, second.secret):
        Webhook(secret).verify(received.body, received.headers, json_parse=False)
        Webhook(secret).verify(delivery["requestBody"], header_map(delivery), json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(STRANGER_SECRET).verify(received.body, received.headers, json_parse=False)
    if content_type == "FORM_URLENCODED":
        assert received.headers["content-type"] == "application/x-www-form-urlencoded"
        assert set(received.form()) == {"payment_id", "tx_id", "status"}
    else:
        assert received.headers["content-type"] == "application/json"
        json.loads(received.body)


async def test_a_changed_body_or_id_does_not_verify(api: Api, receiver_pool: Receivers) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url)
    issued = await issue_secret(api, owner.token, store_id)
    await delivered(api, owner.token, store_id)
    received = receiver.requests[0]

    # when / then
    with pytest.raises(WebhookVerificationError):
        Webhook(issued.secret).verify(received.body + b" ", received.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(issued.secret).verify(
            received.body, {**received.headers, "webhook-id": "msg_other"}
        )


async def test_an_expired_secret_no_longer_signs(api: Api, receiver_pool: Receivers) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url)
    old = await issue_secret(api, owner.token, store_id)
    new = await issue_secret(api, owner.token, store_id)
    expired = await api.gql(SECRET_EXPIRE, {"id": old.id}, token=owner.token)
    assert expired.data["webhookSecretExpire"]["userErrors"] == []

    # when
    await delivered(api, owner.token, store_id)

    # then
    received = receiver.requests[0]
    assert len(signatures(received.headers["webhook-signature"])) == 1
    Webhook(new.secret).verify(received.body, received.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old.secret).verify(received.body, received.headers)


async def test_a_live_secret_does_not_sign_test_mode_calls(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url)
    live = await issue_secret(api, owner.token, store_id, "LIVE")
    test = await issue_secret(api, owner.token, store_id, "TEST")

    # when
    await delivered(api, owner.token, store_id)

    # then
    received = receiver.requests[0]
    assert len(signatures(received.headers["webhook-signature"])) == 1
    Webhook(test.secret).verify(received.body, received.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(live.secret).verify(received.body, received.headers)


async def test_with_only_an_expired_or_another_modes_secret_nothing_is_sent_unsigned(
    api: Api, receiver_pool: Receivers
) -> None:
    # given: the TEST secret expired; a LIVE one active (it signs LIVE webhooks only)
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url)
    await issue_secret(api, owner.token, store_id, "LIVE")
    old = await issue_secret(api, owner.token, store_id, "TEST")
    expired = await api.gql(SECRET_EXPIRE, {"id": old.id}, token=owner.token)
    assert expired.data["webhookSecretExpire"]["userErrors"] == []

    # when
    result = await run_test_call(api, owner.token, store_id)

    # then: refused, rather than sent without a signature
    payload = result.data["webhookTest"]
    assert errors_of(payload) == [("WEBHOOK_SECRET_NOT_SET", ["input", "mode"])]
    assert payload["delivery"] is None
    assert receiver.requests == []
