"""The issue's "done when", end to end over real HTTP on 127.0.0.1.

The app is served by uvicorn on a loopback port and called with a real HTTP client; webhooks go
to loopback receivers (WEBHOOK_ALLOWED_NETWORKS opens 127.0.0.0/8), and signatures are checked
with the `standardwebhooks` reference library, one secret at a time.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette

from tests.support import Api
from tests.webhooks.helpers import (
    DELIVERY_FIELDS,
    delivered,
    errors_of,
    issue_secret,
    loopback_settings,  # noqa: F401  (the `settings` fixture)
    save_setting,
    update_setting,
)
from tests.webhooks.receiver import LOOPBACK, Receivers

LOG = f"""
query Log($storeId: String!) {{
  store(storeId: $storeId) {{
    webhookSetting(moduleVersion: V2, mode: TEST) {{
      url contentType payloadVersion secrets {{ id hint expiredAt }}
      deliveries(first: 20) {{ nodes {{ {DELIVERY_FIELDS} }} }}
    }}
  }}
}}
"""


@asynccontextmanager
async def served(app: Starlette) -> AsyncIterator[Api]:
    """The app behind uvicorn on a free loopback port, in this event loop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        # A loaded machine may take seconds to sign up (argon2): not the subject here.
        async with httpx.AsyncClient(
            base_url=f"http://{LOOPBACK}:{port}", trust_env=False, timeout=60
        ) as http:
            yield Api(http)
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def http_api(app: Starlette) -> AsyncIterator[Api]:
    async with served(app) as api:
        yield api


async def log_of(api: Api, token: str, store_id: str) -> dict[str, Any]:
    result = await api.gql(LOG, {"storeId": store_id}, token=token)
    setting: dict[str, Any] = result.data["store"]["webhookSetting"]
    return setting


@pytest.mark.parametrize(
    ("content_type", "payload_version"),
    [("JSON", "V2024_04_25"), ("FORM_URLENCODED", "V2024_01_01")],
)
async def test_save_issue_press_test_and_see_the_delivery_in_the_log(
    http_api: Api, receiver_pool: Receivers, content_type: str, payload_version: str
) -> None:
    # given
    owner = await http_api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(
        http_api,
        owner.token,
        store_id,
        receiver.url,
        contentType=content_type,
        payloadVersion=payload_version,
    )
    first = await issue_secret(http_api, owner.token, store_id)
    second = await issue_secret(http_api, owner.token, store_id)

    # when
    delivery = await delivered(http_api, owner.token, store_id)

    # then: received once, signed with both secrets, each verifying on its own
    assert len(receiver.requests) == 1
    received = receiver.requests[0]
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    for secret in (first.secret, second.secret):
        Webhook(secret).verify(received.body, received.headers, json_parse=False)
    if content_type == "JSON":
        assert received.headers["content-type"] == "application/json"
        event = json.loads(received.body)
        assert event["data"]["storeId"] == store_id
    else:
        assert received.headers["content-type"] == "application/x-www-form-urlencoded"
        assert set(received.form()) == {"payment_id", "tx_id", "status"}
    # and the log shows it as returned, the body as sent
    setting = await log_of(http_api, owner.token, store_id)
    assert setting["url"] == receiver.url
    assert [s["id"] for s in setting["secrets"]] == [first.id, second.id]
    assert setting["deliveries"]["nodes"] == [delivery]
    assert delivery["requestBody"].encode() == received.body
    assert (delivery["statusCode"], delivery["succeeded"]) == (200, True)
    assert first.secret not in json.dumps(setting)


async def test_failing_receivers_each_leave_a_failed_delivery(
    http_api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await http_api.sign_up()
    store_id = owner.representative_store_id
    target = await receiver_pool.start()
    receivers = {
        "500": await receiver_pool.start(status=500, body=b"boom"),
        "hang": await receiver_pool.start(hold=True),
        "redirect": await receiver_pool.start(
            status=302, body=b"", headers=[("Location", target.url)]
        ),
        "close": await receiver_pool.start(close_without_answer=True),
    }
    await issue_secret(http_api, owner.token, store_id)

    # when
    deliveries = {}
    for name, receiver in receivers.items():
        await save_setting(http_api, owner.token, store_id, receiver.url)
        deliveries[name] = await delivered(http_api, owner.token, store_id)

    # then
    assert {name: len(r.requests) for name, r in receivers.items()} == dict.fromkeys(receivers, 1)
    assert target.requests == []
    assert {name: d["statusCode"] for name, d in deliveries.items()} == {
        "500": 500,
        "hang": None,
        "redirect": 302,
        "close": None,
    }
    for name, delivery in deliveries.items():
        assert delivery["succeeded"] is False, name
        assert delivery["error"], name
        assert delivery["url"] == receivers[name].url
    logged = (await log_of(http_api, owner.token, store_id))["deliveries"]["nodes"]
    assert [d["id"] for d in logged] == [d["id"] for d in reversed(deliveries.values())]


async def test_the_test_call_goes_to_the_saved_url(http_api: Api, receiver_pool: Receivers) -> None:
    # given: A saved; B refused (form bodies are not allowed with 2024-04-25)
    owner = await http_api.sign_up()
    store_id = owner.representative_store_id
    a = await receiver_pool.start()
    b = await receiver_pool.start()
    await save_setting(http_api, owner.token, store_id, a.url)
    await issue_secret(http_api, owner.token, store_id)
    refused = await update_setting(
        http_api, owner.token, store_id, b.url, contentType="FORM_URLENCODED"
    )

    # when
    to_a = await delivered(http_api, owner.token, store_id)
    await save_setting(http_api, owner.token, store_id, b.url)
    to_b = await delivered(http_api, owner.token, store_id)

    # then
    assert errors_of(refused) == [("CONTENT_TYPE_NOT_SUPPORTED", ["input", "contentType"])]
    assert (to_a["url"], to_b["url"]) == (a.url, b.url)
    assert (len(a.requests), len(b.requests)) == (1, 1)
