"""WebhookSetting.deliveries: newest first, keyset pages, per store, version and mode."""

from __future__ import annotations

from typing import Any

from tests.support import Api
from tests.webhooks.helpers import (
    DELIVERY_FIELDS,
    delivered,
    issue_secret,
    loopback_settings,  # noqa: F401  (the `settings` fixture)
    save_setting,
)
from tests.webhooks.receiver import Receivers

LOG = f"""
query Log($storeId: String!, $moduleVersion: ModuleVersion!, $mode: IntegrationMode!,
          $first: Int, $after: String) {{
  store(storeId: $storeId) {{
    webhookSetting(moduleVersion: $moduleVersion, mode: $mode) {{
      deliveries(first: $first, after: $after) {{
        edges {{ cursor node {{ {DELIVERY_FIELDS} }} }}
        pageInfo {{ hasNextPage endCursor }}
      }}
    }}
  }}
}}
"""

LAST_PAGE = """
query Log($storeId: String!, $last: Int, $before: String) {
  store(storeId: $storeId) {
    webhookSetting(moduleVersion: V2, mode: TEST) {
      deliveries(last: $last, before: $before) {
        edges { cursor node { id } }
        pageInfo { hasPreviousPage startCursor }
      }
    }
  }
}
"""

NODE = """
query Node($id: ID!) {
  node(id: $id) { id ... on WebhookDelivery { url statusCode succeeded } }
}
"""


async def page(
    api: Api,
    token: str,
    store_id: str,
    *,
    first: int | None = None,
    after: str | None = None,
    version: str = "V2",
    mode: str = "TEST",
) -> dict[str, Any]:
    result = await api.gql(
        LOG,
        {
            "storeId": store_id,
            "moduleVersion": version,
            "mode": mode,
            "first": first,
            "after": after,
        },
        token=token,
    )
    deliveries: dict[str, Any] = result.data["store"]["webhookSetting"]["deliveries"]
    return deliveries


def ids(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in connection["edges"]]


async def test_deliveries_are_listed_newest_first_in_stable_pages(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url)
    await issue_secret(api, owner.token, store_id)
    made = [(await delivered(api, owner.token, store_id))["id"] for _ in range(3)]

    # when
    first = await page(api, owner.token, store_id, first=2)
    newer = await delivered(api, owner.token, store_id)
    second = await page(api, owner.token, store_id, first=2, after=first["pageInfo"]["endCursor"])
    everything = await page(api, owner.token, store_id)

    # then
    assert ids(first) == [made[2], made[1]]
    assert first["pageInfo"]["hasNextPage"] is True
    assert ids(second) == [made[0]]
    assert second["pageInfo"]["hasNextPage"] is False
    assert ids(everything) == [newer["id"], made[2], made[1], made[0]]
    times = [edge["node"]["attemptedAt"] for edge in everything["edges"]]
    assert times == sorted(times, reverse=True)


async def test_the_log_keeps_what_was_sent_and_what_came_back(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    failing = await receiver_pool.start(status=500, body=b"down")
    await save_setting(api, owner.token, store_id, failing.url)
    await issue_secret(api, owner.token, store_id)
    returned = await delivered(api, owner.token, store_id)

    # when
    logged = await page(api, owner.token, store_id)

    # then
    assert [edge["node"] for edge in logged["edges"]] == [returned]
    assert returned["statusCode"] == 500
    assert returned["requestBody"].encode() == failing.requests[0].body


async def test_each_version_and_mode_has_its_own_log(api: Api, receiver_pool: Receivers) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url)
    await issue_secret(api, owner.token, store_id)
    await save_setting(api, owner.token, store_id, receiver.url, module_version="V1")
    v2 = await delivered(api, owner.token, store_id)
    v1 = await delivered(api, owner.token, store_id, "V1")

    # when
    v2_log = await page(api, owner.token, store_id)
    v1_log = await page(api, owner.token, store_id, version="V1")
    live_log = await page(api, owner.token, store_id, mode="LIVE")

    # then
    assert ids(v2_log) == [v2["id"]]
    assert ids(v1_log) == [v1["id"]]
    assert ids(live_log) == []


async def test_a_delivery_is_a_node_only_for_its_merchant(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    stranger = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url)
    await issue_secret(api, owner.token, store_id)
    delivery = await delivered(api, owner.token, store_id)

    # when
    mine = await api.gql(NODE, {"id": delivery["id"]}, token=owner.token)
    theirs = await api.gql(NODE, {"id": delivery["id"]}, token=stranger.token)

    # then
    assert mine.data["node"] == {
        "id": delivery["id"],
        "url": receiver.url,
        "statusCode": 200,
        "succeeded": True,
    }
    assert theirs.data["node"] is None


async def test_a_page_larger_than_100_is_refused(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(
        LOG,
        {
            "storeId": owner.representative_store_id,
            "moduleVersion": "V2",
            "mode": "TEST",
            "first": 101,
        },
        token=owner.token,
    )

    # then
    assert result.error_codes == ["BAD_REQUEST"]


async def test_deliveries_page_backwards_with_last_and_before(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url)
    await issue_secret(api, owner.token, store_id)
    made = [(await delivered(api, owner.token, store_id))["id"] for _ in range(3)]

    # when
    result = await api.gql(
        LAST_PAGE,
        {"storeId": store_id, "last": 2, "before": None},
        token=owner.token,
    )
    oldest_two = result.data["store"]["webhookSetting"]["deliveries"]
    result = await api.gql(
        LAST_PAGE,
        {"storeId": store_id, "last": 2, "before": oldest_two["pageInfo"]["startCursor"]},
        token=owner.token,
    )
    newest = result.data["store"]["webhookSetting"]["deliveries"]

    # then
    assert ids(oldest_two) == [made[1], made[0]]
    assert oldest_two["pageInfo"]["hasPreviousPage"] is True
    assert ids(newest) == [made[2]]
    assert newest["pageInfo"]["hasPreviousPage"] is False
