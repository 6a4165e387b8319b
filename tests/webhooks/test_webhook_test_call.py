"""webhookTest (호출 테스트): what is sent, to where, and what is recorded whatever happens."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support import Api, create_store, invite_and_join
from tests.webhooks.helpers import (
    WEBHOOK_TEST,
    Caller,
    delivered,
    errors_of,
    header_map,
    issue_api_secret,
    issue_secret,
    loopback_settings,  # noqa: F401  (the `settings` fixture)
    run_test_call,
    save_setting,
    update_setting,
)
from tests.webhooks.receiver import Receiver, Receivers, unused_loopback_port

DELIVERY_LOG = """
query Log($storeId: String!, $moduleVersion: ModuleVersion!, $mode: IntegrationMode!) {
  store(storeId: $storeId) {
    webhookSetting(moduleVersion: $moduleVersion, mode: $mode) {
      deliveries(first: 10) { nodes { id url statusCode succeeded } }
    }
  }
}
"""

BIG_RESPONSE = b"x" * 200_000
RESPONSE_LIMIT = 65536


async def log_ids(api: Api, token: str, store_id: str, version: str = "V2") -> list[str]:
    result = await api.gql(
        DELIVERY_LOG, {"storeId": store_id, "moduleVersion": version, "mode": "TEST"}, token=token
    )
    return [n["id"] for n in result.data["store"]["webhookSetting"]["deliveries"]["nodes"]]


def only_request(receiver: Receiver) -> Any:
    assert len(receiver.requests) == 1, receiver.requests
    return receiver.requests[0]


def assert_recorded_as_received(delivery: dict[str, Any], receiver: Receiver) -> None:
    received = only_request(receiver)
    assert received.method == "POST"
    assert delivery["requestBody"].encode() == received.body
    for name, value in header_map(delivery).items():
        assert received.headers.get(name) == value, name


# --- where it goes ---------------------------------------------------------------------------


async def test_without_a_saved_url_nothing_is_sent(api: Api, receiver_pool: Receivers) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url)
    await save_setting(api, owner.token, store_id, None)
    await issue_secret(api, owner.token, store_id)

    # when
    result = await run_test_call(api, owner.token, store_id)

    # then
    payload = result.data["webhookTest"]
    assert errors_of(payload) == [("WEBHOOK_URL_NOT_SET", ["input"])]
    assert payload["delivery"] is None
    assert receiver.requests == []
    assert await log_ids(api, owner.token, store_id) == []


async def test_a_store_that_never_saved_a_url_gets_url_not_set(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await run_test_call(api, owner.token, owner.representative_store_id, "V1", "LIVE")

    # then
    assert errors_of(result.data["webhookTest"]) == [("WEBHOOK_URL_NOT_SET", ["input"])]


async def test_the_call_goes_to_the_saved_url_not_to_a_refused_edit(
    api: Api, receiver_pool: Receivers
) -> None:
    # given: URL A saved, an attempt to save B with a refused content type
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    a = await receiver_pool.start()
    b = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, a.url)
    refused = await update_setting(api, owner.token, store_id, b.url, contentType="FORM_URLENCODED")
    assert errors_of(refused) == [("CONTENT_TYPE_NOT_SUPPORTED", ["input", "contentType"])]
    await issue_secret(api, owner.token, store_id)

    # when
    first = await delivered(api, owner.token, store_id)
    await save_setting(api, owner.token, store_id, b.url)
    second = await delivered(api, owner.token, store_id)

    # then
    assert (first["url"], second["url"]) == (a.url, b.url)
    assert len(a.requests) == 1
    assert len(b.requests) == 1
    assert a.requests[0].headers["content-type"] == "application/json"
    assert first["succeeded"] is True
    assert second["succeeded"] is True


async def test_another_merchants_store_is_not_found_and_nothing_is_sent(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    stranger = await api.sign_up()
    receiver = await receiver_pool.start()
    await save_setting(api, stranger.token, stranger.representative_store_id, receiver.url)

    # when
    result = await run_test_call(api, owner.token, stranger.representative_store_id)

    # then
    payload = result.data["webhookTest"]
    assert errors_of(payload) == [("NOT_FOUND", ["input", "storeId"])]
    assert payload["delivery"] is None
    assert receiver.requests == []
    assert await log_ids(api, stranger.token, stranger.representative_store_id) == []


async def test_a_host_name_is_sent_as_host_while_connecting_to_its_checked_address(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    infos = socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)  # /etc/hosts
    resolved = {str(info[4][0]) for info in infos}
    if not resolved or not all(address.startswith("127.") for address in resolved):
        pytest.skip(f"localhost resolves to {resolved} here")
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    url = f"http://localhost:{receiver.port}/webhooks"
    await save_setting(api, owner.token, store_id, url)
    await issue_secret(api, owner.token, store_id)

    # when
    delivery = await delivered(api, owner.token, store_id)

    # then
    received = only_request(receiver)
    assert received.headers["host"] == f"localhost:{receiver.port}"
    assert delivery["url"] == url
    assert delivery["succeeded"] is True


async def test_each_mode_and_version_uses_its_own_saved_url(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    v2 = await receiver_pool.start()
    v1 = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, v2.url)
    await save_setting(api, owner.token, store_id, v1.url, module_version="V1")

    # when
    await delivered(api, owner.token, store_id, "V1")

    # then
    assert v2.requests == []
    assert len(v1.requests) == 1


async def test_a_following_sub_store_sends_to_the_representative_url_and_secrets(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    rep = owner.representative_store_id
    sub, _ = await create_store(api, owner.token, "Branch")
    rep_receiver = await receiver_pool.start()
    own_receiver = await receiver_pool.start()
    await save_setting(api, owner.token, rep, rep_receiver.url)
    rep_secret = await issue_secret(api, owner.token, rep)
    own_secret = await issue_secret(api, owner.token, sub)

    # when
    following = await delivered(api, owner.token, sub)
    await save_setting(api, owner.token, sub, own_receiver.url, usesRepresentativeSetting=False)
    own = await delivered(api, owner.token, sub)

    # then
    first = only_request(rep_receiver)
    assert following["url"] == rep_receiver.url
    assert json.loads(first.body)["data"]["storeId"] == sub
    Webhook(rep_secret.secret).verify(first.body, first.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(own_secret.secret).verify(first.body, first.headers)
    second = only_request(own_receiver)
    assert own["url"] == own_receiver.url
    Webhook(own_secret.secret).verify(second.body, second.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(rep_secret.secret).verify(second.body, second.headers)
    assert await log_ids(api, owner.token, sub) == [own["id"], following["id"]]


# --- a V2 call needs a signing secret --------------------------------------------------------

NO_SECRET = (
    "This store has no active TEST signing secret to sign the test call with. Issue one with "
    "webhookSecretIssue, then test again."
)
NO_REPRESENTATIVE_SECRET = (
    "This store follows the representative store's webhook setting, which has no active TEST "
    "signing secret to sign the test call with. Issue one for the representative store with "
    "webhookSecretIssue, then test again."
)


async def test_a_v2_call_without_a_signing_secret_is_refused_and_nothing_is_sent(
    api: Api, receiver_pool: Receivers
) -> None:
    # given: a saved V2 URL, no secret ever issued
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url)

    # when
    refused = (await run_test_call(api, owner.token, store_id)).data["webhookTest"]
    issued = await issue_secret(api, owner.token, store_id)
    after_issuing = await delivered(api, owner.token, store_id)

    # then: told to issue one; nothing sent or recorded until it is, then the call is signed
    assert refused["userErrors"] == [
        {"field": ["input", "mode"], "code": "WEBHOOK_SECRET_NOT_SET", "message": NO_SECRET}
    ]
    assert refused["delivery"] is None
    received = only_request(receiver)
    Webhook(issued.secret).verify(received.body, received.headers)
    assert await log_ids(api, owner.token, store_id) == [after_issuing["id"]]


@pytest.mark.parametrize("who", ["DEVELOPER", "STORE_MANAGER", "API_SECRET"])
async def test_a_caller_allowed_to_test_is_told_to_issue_a_secret_too(
    api: Api, receiver_pool: Receivers, who: str
) -> None:
    # given: the store the caller may test has its own V2 URL and no secret
    owner = await api.sign_up()
    sub, _ = await create_store(api, owner.token, "Branch")
    receiver = await receiver_pool.start()
    if who == "DEVELOPER":  # merchant-wide: the representative store
        store_id = owner.representative_store_id
        await save_setting(api, owner.token, store_id, receiver.url)
        caller = Caller(token=(await invite_and_join(api, owner.token, who)).token)
    else:  # bound to the sub-store, whose own setting it may test
        store_id = sub
        await save_setting(api, owner.token, sub, receiver.url, usesRepresentativeSetting=False)
        if who == "API_SECRET":
            api_secret = await issue_api_secret(api, owner.token, sub)
            caller = Caller(authorization=f"PortOne {api_secret}")
        else:
            caller = Caller(token=(await invite_and_join(api, owner.token, who, sub)).token)

    # when
    result = await caller.gql(
        api, WEBHOOK_TEST, {"input": {"storeId": store_id, "moduleVersion": "V2", "mode": "TEST"}}
    )

    # then
    payload = result.data["webhookTest"]
    assert errors_of(payload) == [("WEBHOOK_SECRET_NOT_SET", ["input", "mode"])]
    assert payload["userErrors"][0]["message"] == NO_SECRET
    assert payload["delivery"] is None
    assert receiver.requests == []
    assert await log_ids(api, owner.token, store_id) == []


async def test_a_following_sub_store_needs_the_representative_stores_secret(
    api: Api, receiver_pool: Receivers
) -> None:
    # given: the sub-store follows the representative store, which has no secret; the
    # sub-store's own secret would sign only its own setting
    owner = await api.sign_up()
    rep = owner.representative_store_id
    sub, _ = await create_store(api, owner.token, "Branch")
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, rep, receiver.url)
    await issue_secret(api, owner.token, sub)

    # when
    result = await run_test_call(api, owner.token, sub)

    # then
    payload = result.data["webhookTest"]
    assert payload["userErrors"] == [
        {
            "field": ["input", "mode"],
            "code": "WEBHOOK_SECRET_NOT_SET",
            "message": NO_REPRESENTATIVE_SECRET,
        }
    ]
    assert receiver.requests == []
    assert await log_ids(api, owner.token, sub) == []


async def test_no_url_and_no_secret_are_reported_together(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await run_test_call(api, owner.token, owner.representative_store_id)

    # then
    assert errors_of(result.data["webhookTest"]) == [
        ("WEBHOOK_URL_NOT_SET", ["input"]),
        ("WEBHOOK_SECRET_NOT_SET", ["input", "mode"]),
    ]


async def test_a_v1_call_needs_no_secret(api: Api, receiver_pool: Receivers) -> None:
    # given: V1 webhooks carry no Standard Webhooks signature
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url, module_version="V1")

    # when
    delivery = await delivered(api, owner.token, store_id, "V1")

    # then
    assert delivery["succeeded"] is True
    assert "webhook-signature" not in only_request(receiver).headers


# --- what is sent ----------------------------------------------------------------------------


async def test_v2_2024_04_25_sends_the_typed_event_as_json(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url, payloadVersion="V2024_04_25")
    await issue_secret(api, owner.token, store_id)

    # when
    delivery = await delivered(api, owner.token, store_id)

    # then
    received = only_request(receiver)
    assert received.path == "/webhooks"
    assert received.headers["content-type"] == "application/json"
    event = json.loads(received.body)
    assert set(event) == {"type", "timestamp", "data"}
    assert set(event["data"]) == {"storeId", "paymentId", "transactionId"}
    assert event["data"]["storeId"] == store_id
    assert received.headers["webhook-id"]
    assert received.headers["webhook-timestamp"].isdigit()
    assert received.headers["webhook-signature"].startswith("v1,")
    assert_recorded_as_received(delivery, receiver)
    assert {"content-type", "webhook-id", "webhook-timestamp", "webhook-signature"} <= set(
        header_map(delivery)
    )
    assert delivery["trigger"] == "TEST"
    assert delivery["url"] == receiver.url
    assert delivery["statusCode"] == 200
    assert delivery["responseBody"] == "ok"
    assert delivery["error"] is None
    assert delivery["succeeded"] is True
    assert delivery["durationMs"] >= 0
    assert delivery["attemptedAt"]


@pytest.mark.parametrize("content_type", ["JSON", "FORM_URLENCODED"])
async def test_v2_2024_01_01_sends_payment_id_tx_id_and_status(
    api: Api, receiver_pool: Receivers, content_type: str
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
        payloadVersion="V2024_01_01",
    )
    await issue_secret(api, owner.token, store_id)

    # when
    delivery = await delivered(api, owner.token, store_id)

    # then
    received = only_request(receiver)
    if content_type == "JSON":
        assert received.headers["content-type"] == "application/json"
        fields = json.loads(received.body)
    else:
        assert received.headers["content-type"] == "application/x-www-form-urlencoded"
        form = received.form()
        assert all(len(values) == 1 for values in form.values())
        fields = {name: values[0] for name, values in form.items()}
    assert set(fields) == {"payment_id", "tx_id", "status"}
    assert all(isinstance(v, str) and v for v in fields.values())
    assert_recorded_as_received(delivery, receiver)
    assert delivery["succeeded"] is True


@pytest.mark.parametrize("content_type", ["JSON", "FORM_URLENCODED"])
async def test_v1_sends_imp_uid_merchant_uid_and_status_unsigned(
    api: Api, receiver_pool: Receivers, content_type: str
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(
        api, owner.token, store_id, receiver.url, module_version="V1", contentType=content_type
    )
    await issue_secret(api, owner.token, store_id)  # a V2 secret does not sign V1

    # when
    delivery = await delivered(api, owner.token, store_id, "V1")

    # then
    received = only_request(receiver)
    if content_type == "JSON":
        fields = json.loads(received.body)
    else:
        assert received.headers["content-type"] == "application/x-www-form-urlencoded"
        fields = {name: values[0] for name, values in received.form().items()}
    assert set(fields) == {"imp_uid", "merchant_uid", "status"}
    assert "webhook-signature" not in received.headers
    assert "webhook-signature" not in header_map(delivery)
    assert_recorded_as_received(delivery, receiver)
    assert await log_ids(api, owner.token, store_id, "V1") == [delivery["id"]]
    assert await log_ids(api, owner.token, store_id, "V2") == []


async def test_the_path_and_query_of_the_saved_url_are_kept(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    url = f"http://127.0.0.1:{receiver.port}/hooks/portone?shop=a%20b&x=1"
    await save_setting(api, owner.token, store_id, url)
    await issue_secret(api, owner.token, store_id)

    # when
    delivery = await delivered(api, owner.token, store_id)

    # then
    assert only_request(receiver).path == "/hooks/portone?shop=a%20b&x=1"
    assert delivery["url"] == url


async def test_each_call_has_its_own_message_id(api: Api, receiver_pool: Receivers) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url)
    await issue_secret(api, owner.token, store_id)

    # when
    await delivered(api, owner.token, store_id)
    await delivered(api, owner.token, store_id)

    # then
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == 2
    assert ids[0] != ids[1]


# --- what comes back -------------------------------------------------------------------------


async def test_a_500_answer_is_a_recorded_failure(api: Api, receiver_pool: Receivers) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start(status=500, body=b"boom")
    await save_setting(api, owner.token, store_id, receiver.url)
    await issue_secret(api, owner.token, store_id)

    # when
    delivery = await delivered(api, owner.token, store_id)

    # then
    assert len(receiver.requests) == 1
    assert delivery["statusCode"] == 500
    assert delivery["responseBody"] == "boom"
    assert delivery["succeeded"] is False
    assert "500" in delivery["error"]
    assert await log_ids(api, owner.token, store_id) == [delivery["id"]]


async def test_a_4xx_answer_is_a_recorded_failure(api: Api, receiver_pool: Receivers) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start(status=404, body=b"no such hook")
    await save_setting(api, owner.token, store_id, receiver.url)
    await issue_secret(api, owner.token, store_id)

    # when
    delivery = await delivered(api, owner.token, store_id)

    # then
    assert (delivery["statusCode"], delivery["succeeded"]) == (404, False)
    assert delivery["error"]


async def test_a_receiver_that_hangs_past_the_read_timeout_is_a_recorded_failure(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start(hold=True)
    await save_setting(api, owner.token, store_id, receiver.url)
    await issue_secret(api, owner.token, store_id)

    # when
    delivery = await delivered(api, owner.token, store_id)

    # then
    assert len(receiver.requests) == 1
    assert delivery["statusCode"] is None
    assert delivery["responseBody"] is None
    assert delivery["succeeded"] is False
    assert delivery["error"]
    assert await log_ids(api, owner.token, store_id) == [delivery["id"]]


async def test_a_redirect_is_not_followed_and_is_a_recorded_failure(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    target = await receiver_pool.start()
    redirecting = await receiver_pool.start(
        status=302, body=b"", headers=[("Location", target.url)]
    )
    await save_setting(api, owner.token, store_id, redirecting.url)
    await issue_secret(api, owner.token, store_id)

    # when
    delivery = await delivered(api, owner.token, store_id)

    # then
    assert len(redirecting.requests) == 1
    assert target.requests == []
    assert delivery["statusCode"] == 302
    assert delivery["succeeded"] is False
    assert delivery["error"]
    assert delivery["url"] == redirecting.url


async def test_a_connection_closed_without_an_answer_is_a_recorded_failure(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start(close_without_answer=True)
    await save_setting(api, owner.token, store_id, receiver.url)
    await issue_secret(api, owner.token, store_id)

    # when
    delivery = await delivered(api, owner.token, store_id)

    # then
    assert len(receiver.requests) == 1
    assert delivery["statusCode"] is None
    assert delivery["succeeded"] is False
    assert delivery["error"]


async def test_a_refused_connection_is_a_recorded_failure(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    url = f"http://127.0.0.1:{unused_loopback_port()}/webhooks"
    await save_setting(api, owner.token, store_id, url)
    await issue_secret(api, owner.token, store_id)

    # when
    delivery = await delivered(api, owner.token, store_id)

    # then
    assert delivery["url"] == url
    assert delivery["statusCode"] is None
    assert delivery["succeeded"] is False
    assert delivery["error"]
    assert await log_ids(api, owner.token, store_id) == [delivery["id"]]


async def test_a_large_response_is_recorded_up_to_64_kib(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start(body=BIG_RESPONSE)
    await save_setting(api, owner.token, store_id, receiver.url)
    await issue_secret(api, owner.token, store_id)

    # when
    delivery = await delivered(api, owner.token, store_id)

    # then
    body = delivery["responseBody"]
    assert 0 < len(body) <= RESPONSE_LIMIT
    assert BIG_RESPONSE.decode().startswith(body)
    assert delivery["statusCode"] == 200
    assert delivery["succeeded"] is True
