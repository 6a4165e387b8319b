"""Without WEBHOOK_ALLOWED_NETWORKS, loopback is refused: on save, and again at send time."""

from __future__ import annotations

import pytest

from tests.conftest import make_settings
from tests.support import Api
from tests.webhooks.helpers import (
    delivered,
    errors_of,
    issue_secret,
    other_instance,
    read_setting,
    save_setting,
    update_setting,
)
from tests.webhooks.receiver import Receivers

SETTING_NAME = "WEBHOOK_ALLOWED_NETWORKS"

DELIVERY_LOG = """
query Log($storeId: String!) {
  store(storeId: $storeId) {
    webhookSetting(moduleVersion: V2, mode: TEST) {
      deliveries(first: 10) { nodes { id statusCode error succeeded } }
    }
  }
}
"""


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/webhooks",
        "http://127.1.2.3:{port}/webhooks",
        "http://localhost:{port}/webhooks",
        "http://[::1]:{port}/webhooks",
        "http://[::ffff:127.0.0.1]:{port}/webhooks",
        "http://2130706433:{port}/webhooks",  # 127.0.0.1 as one number
        "http://0x7f000001:{port}/webhooks",  # ... in hexadecimal
        "http://127.1:{port}/webhooks",  # ... abbreviated
    ],
)
async def test_loopback_is_refused_by_default(api: Api, receiver_pool: Receivers, url: str) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()

    # when
    payload = await update_setting(api, owner.token, store_id, url.format(port=receiver.port))

    # then
    assert errors_of(payload) == [("WEBHOOK_URL_FORBIDDEN", ["input", "url"])]
    assert SETTING_NAME in payload["userErrors"][0]["message"]
    assert (await read_setting(api, owner.token, store_id))["url"] is None
    assert receiver.requests == []


async def test_the_address_is_checked_again_at_send_time(
    api: Api, receiver_pool: Receivers, database_url: str
) -> None:
    # given: saved by an instance that allowed loopback then
    receiver = await receiver_pool.start()
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    allowing = make_settings(database_url, webhook_allowed_networks=["127.0.0.0/8"])
    async with other_instance(allowing) as permissive:
        await save_setting(permissive, owner.token, store_id, receiver.url)
        await issue_secret(permissive, owner.token, store_id)

    # when: this instance does not allow it
    delivery = await delivered(api, owner.token, store_id)

    # then
    assert receiver.requests == []
    assert delivery["url"] == receiver.url
    assert delivery["statusCode"] is None
    assert delivery["responseBody"] is None
    assert delivery["succeeded"] is False
    assert SETTING_NAME in delivery["error"]
    log = await api.gql(DELIVERY_LOG, {"storeId": store_id}, token=owner.token)
    nodes = log.data["store"]["webhookSetting"]["deliveries"]["nodes"]
    assert [n["id"] for n in nodes] == [delivery["id"]]
    assert nodes[0]["succeeded"] is False
