"""totalCount on every connection: what the connection lists on all its pages together, under
the same filters and what the caller may see, whatever page was asked for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import WebhookDelivery, WebhookEvent
from db.types import utcnow
from gql_api.settings import Settings
from tests.channels.helpers import (
    CHANNEL_DELETE,
    create_channel,
    inicis_live_input,
    kcp_shared_test_input,
)
from tests.factories import Seeded, seed_merchant
from tests.support import Api
from tests.webhooks.helpers import issue_api_secret

STORES = """
query Stores($first: Int, $after: String) {
  merchant {
    stores(first: $first, after: $after) {
      totalCount
      nodes { storeId }
      pageInfo { endCursor }
    }
  }
}
"""

EVERY_STORE = """
query EveryStore($first: Int, $filter: ChannelFilter) {
  merchant {
    stores(first: 100) {
      nodes {
        storeId
        subStores(first: $first) { totalCount }
        channels(first: $first, filter: $filter) { totalCount nodes { name } }
        apiSecrets(first: $first) { totalCount }
      }
    }
  }
}
"""

CHANNELS_AFTER = """
query Channels($storeId: String!, $after: String) {
  store(storeId: $storeId) {
    channels(first: 1, after: $after) { totalCount nodes { name } pageInfo { endCursor } }
  }
}
"""

MEMBERS_AND_AUDIT = """
query MembersAndAudit($first: Int) {
  merchant {
    members(first: $first) { totalCount nodes { id } }
    auditEvents(first: $first, action: "channel.create") { totalCount nodes { id } }
  }
}
"""

MEMBERS = """
query Members($first: Int) {
  merchant { members(first: $first) { totalCount nodes { id } } }
}
"""

STORE_WEBHOOKS = """
query StoreWebhooks($storeId: String!, $first: Int) {
  store(storeId: $storeId) {
    webhookSetting(moduleVersion: V2, mode: TEST) {
      deliveries(first: $first) { totalCount nodes { id } }
    }
    webhookEvents(first: $first) {
      totalCount
      nodes { eventId attempts(first: $first) { totalCount nodes { id } } }
    }
  }
}
"""

STORE_DELETE = """
mutation StoreDelete($storeId: String!) {
  storeDelete(input: { storeId: $storeId }) { userErrors { code } }
}
"""


@dataclass
class Scene:
    seeded: Seeded
    rep: str
    a: str
    b: str

    @property
    def owner(self) -> str:
        return self.seeded.owner.token

    @property
    def store_manager(self) -> str:
        return self.seeded.members["STORE_MANAGER"].token


@pytest.fixture
async def scene(api: Api, db_engine: AsyncEngine, settings: Settings) -> Scene:
    """A representative store, sub-store A (3 channels, 2 API secrets, a STORE_MANAGER) and
    sub-store B (1 channel)."""
    seeded = await seed_merchant(
        db_engine, roles=("STORE_MANAGER", "DEVELOPER"), stores=("A", "B"), settings=settings
    )
    scene = Scene(
        seeded, seeded.owner.representative_store_id, seeded.stores["A"], seeded.stores["B"]
    )
    token = seeded.owner.token
    await create_channel(api, token, kcp_shared_test_input(scene.a, "KCP test"))
    await create_channel(api, token, inicis_live_input(scene.a, "INICIS live"))
    await create_channel(api, token, inicis_live_input(scene.a, "INICIS test", mode="TEST"))
    await create_channel(api, token, kcp_shared_test_input(scene.b, "KCP test"))
    await issue_api_secret(api, token, scene.a)
    await issue_api_secret(api, token, scene.a)
    return scene


def by_store(data: dict[str, Any], field: str) -> dict[str, int]:
    return {
        store["storeId"]: store[field]["totalCount"]
        for store in data["merchant"]["stores"]["nodes"]
    }


async def test_stores_count_every_page_and_only_the_stores_the_caller_sees(
    api: Api, scene: Scene
) -> None:
    # when
    first = (await api.gql(STORES, {"first": 1}, token=scene.owner)).data["merchant"]["stores"]
    after = {"first": 1, "after": first["pageInfo"]["endCursor"]}
    second = (await api.gql(STORES, after, token=scene.owner)).data["merchant"]["stores"]
    scoped = await api.gql(STORES, {"first": 1}, token=scene.store_manager)

    # then
    assert (len(first["nodes"]), first["totalCount"]) == (1, 3)
    assert (len(second["nodes"]), second["totalCount"]) == (1, 3)
    assert scoped.data["merchant"]["stores"]["totalCount"] == 1


async def test_a_deleted_store_is_no_longer_counted(api: Api, scene: Scene) -> None:
    # when
    deleted = await api.gql(STORE_DELETE, {"storeId": scene.b}, token=scene.owner)
    result = await api.gql(STORES, {"first": 1}, token=scene.owner)

    # then
    assert deleted.data["storeDelete"]["userErrors"] == []
    assert result.data["merchant"]["stores"]["totalCount"] == 2


async def test_per_store_connections_count_each_store_in_one_query(api: Api, scene: Scene) -> None:
    # when: pages of one item, counts of everything
    result = await api.gql(EVERY_STORE, {"first": 1}, token=scene.owner)

    # then
    data = result.data
    assert by_store(data, "channels") == {scene.rep: 0, scene.a: 3, scene.b: 1}
    assert by_store(data, "subStores") == {scene.rep: 2, scene.a: 0, scene.b: 0}
    assert by_store(data, "apiSecrets") == {scene.rep: 0, scene.a: 2, scene.b: 0}
    pages = [len(s["channels"]["nodes"]) for s in data["merchant"]["stores"]["nodes"]]
    assert pages == [0, 1, 1]


async def test_channel_counts_follow_the_filter_and_the_callers_scope(
    api: Api, scene: Scene
) -> None:
    # when
    live = await api.gql(EVERY_STORE, {"filter": {"mode": "LIVE"}}, token=scene.owner)
    search = await api.gql(EVERY_STORE, {"filter": {"search": "kcp"}}, token=scene.owner)
    scoped = await api.gql(EVERY_STORE, {"first": 1}, token=scene.store_manager)

    # then
    assert by_store(live.data, "channels") == {scene.rep: 0, scene.a: 1, scene.b: 0}
    assert by_store(search.data, "channels") == {scene.rep: 0, scene.a: 1, scene.b: 1}
    assert by_store(scoped.data, "channels") == {scene.a: 3}


async def test_channel_count_is_the_same_on_every_page_and_drops_deleted_channels(
    api: Api, scene: Scene
) -> None:
    # given
    first = await api.gql(CHANNELS_AFTER, {"storeId": scene.a}, token=scene.owner)
    cursor = first.data["store"]["channels"]["pageInfo"]["endCursor"]

    # when
    second = await api.gql(CHANNELS_AFTER, {"storeId": scene.a, "after": cursor}, token=scene.owner)
    listed = await api.gql(EVERY_STORE, {"first": 20}, token=scene.owner)
    channel_id = await first_channel_id(api, scene)
    deleted = await api.gql(CHANNEL_DELETE, {"input": {"id": channel_id}}, token=scene.owner)
    after_delete = await api.gql(CHANNELS_AFTER, {"storeId": scene.a}, token=scene.owner)

    # then
    assert second.data["store"]["channels"]["totalCount"] == 3
    assert len(second.data["store"]["channels"]["nodes"]) == 1
    assert by_store(listed.data, "channels")[scene.a] == 3
    assert deleted.data["channelDelete"]["userErrors"] == []
    assert after_delete.data["store"]["channels"]["totalCount"] == 2


async def first_channel_id(api: Api, scene: Scene) -> str:
    query = "query($s: String!) { store(storeId: $s) { channels(first: 1) { nodes { id } } } }"
    result = await api.gql(query, {"s": scene.a}, token=scene.owner)
    channel_id: str = result.data["store"]["channels"]["nodes"][0]["id"]
    return channel_id


async def test_members_and_audit_events_count_what_the_caller_may_list(
    api: Api, scene: Scene
) -> None:
    # when
    owner_page = await api.gql(MEMBERS_AND_AUDIT, {"first": 1}, token=scene.owner)
    owner_all = await api.gql(MEMBERS_AND_AUDIT, {"first": 100}, token=scene.owner)
    scoped_page = await api.gql(MEMBERS, {"first": 1}, token=scene.store_manager)
    scoped_all = await api.gql(MEMBERS, {"first": 100}, token=scene.store_manager)

    # then
    merchant, everything = owner_page.data["merchant"], owner_all.data["merchant"]
    assert merchant["members"]["totalCount"] == len(everything["members"]["nodes"]) == 3
    assert merchant["auditEvents"]["totalCount"] == 4  # the four channel.create events
    assert len(everything["auditEvents"]["nodes"]) == 4
    scoped = scoped_page.data["merchant"]["members"]["totalCount"]
    assert scoped == len(scoped_all.data["merchant"]["members"]["nodes"])
    assert scoped < 3


async def add_webhook_rows(engine: AsyncEngine, scene: Scene) -> None:
    """Sub-store A, which follows the representative store's setting: 2 test calls and 2
    events (2 and 1 attempts), all made while it followed."""
    store_pk = scene.seeded.store_pks[scene.a]
    merchant_pk = scene.seeded.merchant_pk
    now = utcnow()

    def delivery(trigger: str, event_pk: int | None, number: int | None) -> WebhookDelivery:
        return WebhookDelivery(
            merchant_id=merchant_pk,
            store_pk=store_pk,
            module_version="V2",
            mode="TEST",
            trigger=trigger,
            url="https://receiver.example.com/hook",
            request_body="{}",
            attempted_at=now - timedelta(minutes=1),
            event_pk=event_pk,
            attempt_number=number,
        )

    async with AsyncSession(engine) as db:
        events = [
            WebhookEvent(
                merchant_id=merchant_pk,
                store_pk=store_pk,
                event_id=f"evt-{n}",
                module_version="V2",
                mode="TEST",
                type="Transaction.Paid",
                message_id=f"msg_{n}",
                status="SUCCEEDED",
                published_at=now - timedelta(minutes=2),
            )
            for n in (1, 2)
        ]
        db.add_all(events)
        await db.flush()
        assert events[0].id is not None and events[1].id is not None
        db.add_all(
            [
                delivery("TEST", None, None),
                delivery("TEST", None, None),
                delivery("EVENT", events[0].id, 1),
                delivery("EVENT", events[0].id, 2),
                delivery("EVENT", events[1].id, 1),
            ]
        )
        await db.commit()


async def test_webhook_connections_count_only_what_the_caller_may_see(
    api: Api, db_engine: AsyncEngine, scene: Scene
) -> None:
    # given
    await add_webhook_rows(db_engine, scene)
    variables = {"storeId": scene.a, "first": 1}

    # when
    owner = await api.gql(STORE_WEBHOOKS, variables, token=scene.owner)
    scoped = await api.gql(STORE_WEBHOOKS, variables, token=scene.store_manager)

    # then: the owner sees every delivery; the store manager none of those made while its
    # store followed the representative store's setting, but every event
    seen = owner.data["store"]
    assert seen["webhookSetting"]["deliveries"]["totalCount"] == 5
    assert len(seen["webhookSetting"]["deliveries"]["nodes"]) == 1
    assert seen["webhookEvents"]["totalCount"] == 2
    attempts = {e["eventId"]: e["attempts"]["totalCount"] for e in seen["webhookEvents"]["nodes"]}
    assert attempts == {"evt-2": 1}  # newest first, one per page
    hidden = scoped.data["store"]
    assert hidden["webhookSetting"]["deliveries"]["totalCount"] == 0
    assert hidden["webhookEvents"]["totalCount"] == 2
    assert [e["attempts"]["totalCount"] for e in hidden["webhookEvents"]["nodes"]] == [0]


async def test_attempt_counts_of_a_page_of_events(
    api: Api, db_engine: AsyncEngine, scene: Scene
) -> None:
    # given
    await add_webhook_rows(db_engine, scene)

    # when
    result = await api.gql(STORE_WEBHOOKS, {"storeId": scene.a, "first": 10}, token=scene.owner)

    # then
    events = result.data["store"]["webhookEvents"]["nodes"]
    counts = {e["eventId"]: e["attempts"]["totalCount"] for e in events}
    assert counts == {"evt-1": 2, "evt-2": 1}
    assert all(e["attempts"]["totalCount"] == len(e["attempts"]["nodes"]) for e in events)
