"""A receiver that takes its time must not stall other requests to the same app.

No clock is involved: the receiver holds the request until the test releases it, and the
order of events (the call still pending while the other requests complete) is what is checked.
"""

from __future__ import annotations

import asyncio

import pytest

from gql_api.settings import Settings
from tests.conftest import make_settings
from tests.support import Api
from tests.webhooks.helpers import SECRET_ISSUE, issue_secret, run_test_call, save_setting
from tests.webhooks.receiver import Receivers

VIEWER = "{ viewer { role } }"


@pytest.fixture
def settings(database_url: str) -> Settings:
    # A read timeout far longer than the test needs: the receiver is released by an event.
    return make_settings(
        database_url,
        webhook_allowed_networks=["127.0.0.0/8"],
        webhook_read_timeout_seconds=60.0,
        webhook_connect_timeout_seconds=60.0,
    )


async def test_other_requests_complete_while_the_receiver_hangs(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start(hold=True)
    await save_setting(api, owner.token, store_id, receiver.url)
    await issue_secret(api, owner.token, store_id)
    call = asyncio.create_task(run_test_call(api, owner.token, store_id))
    arrived = asyncio.create_task(receiver.arrived.wait())
    await asyncio.wait({call, arrived}, return_when=asyncio.FIRST_COMPLETED)
    assert not call.done(), call.result().body
    assert len(receiver.requests) == 1

    # when: a read and two writes (one locks the store row on PostgreSQL) meanwhile
    viewer = await api.gql(VIEWER, token=owner.token)
    saved = await save_setting(api, owner.token, store_id, receiver.url, module_version="V1")
    issued = await api.gql(
        SECRET_ISSUE, {"input": {"storeId": store_id, "mode": "TEST"}}, token=owner.token
    )

    # then
    assert viewer.data == {"viewer": {"role": "OWNER"}}
    assert saved["url"] == receiver.url
    assert issued.data["webhookSecretIssue"]["userErrors"] == []
    assert not call.done()
    receiver.release.set()
    payload = (await call).data["webhookTest"]
    assert payload["userErrors"] == []
    assert payload["delivery"]["statusCode"] == 200
    assert payload["delivery"]["succeeded"] is True
