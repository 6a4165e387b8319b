"""WebhookSetting is a Node: one stable ID per store, module version and mode, saved or not, that
`node(id:)` resolves under the visibility rules of Store.webhookSettings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_api.ids import global_id
from gql_api.settings import Settings
from tests.factories import Seeded, seed_merchant
from tests.support import Api
from tests.webhooks.helpers import loopback_settings  # noqa: F401  (the `settings` fixture)

FIELDS = "id moduleVersion mode url usesRepresentativeSetting updatedAt"

SETTINGS = f"""
query Settings($storeId: String!) {{
  store(storeId: $storeId) {{ webhookSettings {{ {FIELDS} }} }}
}}
"""

NODE = f"""
query Node($id: ID!) {{
  node(id: $id) {{ __typename id ... on WebhookSetting {{ {FIELDS} }} }}
}}
"""

UPDATE = f"""
mutation Update($input: WebhookSettingUpdateInput!) {{
  webhookSettingUpdate(input: $input) {{
    webhookSetting {{ {FIELDS} }}
    userErrors {{ code }}
  }}
}}
"""

STORE_DELETE = """
mutation StoreDelete($storeId: String!) {
  storeDelete(input: { storeId: $storeId }) { userErrors { code } }
}
"""

URL = "http://127.0.0.1:9/hook?token=rep-s3cr3t"


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
    def store_manager(self) -> str:  # bound to sub-store A
        return self.seeded.members["STORE_MANAGER"].token


@pytest.fixture
async def scene(db_engine: AsyncEngine, settings: Settings) -> Scene:
    seeded = await seed_merchant(
        db_engine, roles=("STORE_MANAGER", "DEVELOPER"), stores=("A", "B"), settings=settings
    )
    return Scene(
        seeded, seeded.owner.representative_store_id, seeded.stores["A"], seeded.stores["B"]
    )


async def settings_of(api: Api, token: str, store_id: str) -> dict[tuple[str, str], Any]:
    result = await api.gql(SETTINGS, {"storeId": store_id}, token=token)
    return {(s["moduleVersion"], s["mode"]): s for s in result.data["store"]["webhookSettings"]}


async def node(api: Api, token: str, node_id: str) -> dict[str, Any] | None:
    result = await api.gql(NODE, {"id": node_id}, token=token)
    found: dict[str, Any] | None = result.data["node"]
    return found


async def save(api: Api, token: str, store_id: str, url: str | None) -> dict[str, Any]:
    values = {"storeId": store_id, "moduleVersion": "V2", "mode": "TEST", "url": url}
    result = await api.gql(UPDATE, {"input": values}, token=token)
    payload = result.data["webhookSettingUpdate"]
    assert payload["userErrors"] == [], payload
    setting: dict[str, Any] = payload["webhookSetting"]
    return setting


async def test_each_setting_has_an_id_that_node_resolves_to_it(api: Api, scene: Scene) -> None:
    # given: nothing saved yet
    rep = await settings_of(api, scene.owner, scene.rep)
    sub = await settings_of(api, scene.owner, scene.a)

    # when
    found = {key: await node(api, scene.owner, s["id"]) for key, s in rep.items()}

    # then
    ids = [s["id"] for s in (*rep.values(), *sub.values())]
    assert len(set(ids)) == 8
    assert found == {key: {"__typename": "WebhookSetting", **s} for key, s in rep.items()}


async def test_the_id_stays_the_same_once_the_setting_is_saved(api: Api, scene: Scene) -> None:
    # given
    before = (await settings_of(api, scene.owner, scene.rep))[("V2", "TEST")]

    # when
    saved = await save(api, scene.owner, scene.rep, URL)
    after = (await settings_of(api, scene.owner, scene.rep))[("V2", "TEST")]
    refetched = await node(api, scene.owner, before["id"])

    # then: a normalized cache merges the mutation's payload into the object it holds
    assert before["url"] is None
    assert saved["id"] == after["id"] == before["id"]
    assert refetched is not None
    assert refetched["url"] == saved["url"] == URL


async def test_a_store_scoped_member_sees_its_own_store_s_settings_as_listed(
    api: Api, scene: Scene
) -> None:
    # given: the representative store has a URL with a token, which sub-store A follows
    await save(api, scene.owner, scene.rep, URL)
    listed = (await settings_of(api, scene.store_manager, scene.a))[("V2", "TEST")]

    # when
    found = await node(api, scene.store_manager, listed["id"])

    # then: the same as in the list, the representative store's URL hidden
    assert found == {"__typename": "WebhookSetting", **listed}
    assert found["usesRepresentativeSetting"] is True
    assert found["url"] is None


async def test_a_store_scoped_member_does_not_see_other_stores_settings(
    api: Api, scene: Scene
) -> None:
    # given
    await save(api, scene.owner, scene.rep, URL)
    rep = (await settings_of(api, scene.owner, scene.rep))[("V2", "TEST")]
    other = (await settings_of(api, scene.owner, scene.b))[("V1", "LIVE")]

    # when
    owner_sees = await node(api, scene.owner, rep["id"])
    developer_sees = await node(api, scene.seeded.members["DEVELOPER"].token, rep["id"])
    rep_for_scoped = await node(api, scene.store_manager, rep["id"])
    other_for_scoped = await node(api, scene.store_manager, other["id"])

    # then
    assert owner_sees is not None and owner_sees["url"] == URL
    assert developer_sees is not None and developer_sees["url"] == URL
    assert rep_for_scoped is None
    assert other_for_scoped is None


async def test_another_merchant_does_not_see_the_setting(
    api: Api, db_engine: AsyncEngine, settings: Settings, scene: Scene
) -> None:
    # given
    setting = (await settings_of(api, scene.owner, scene.rep))[("V2", "LIVE")]
    other = await seed_merchant(db_engine, roles=(), stores=(), settings=settings)

    # when
    found = await node(api, other.owner.token, setting["id"])

    # then
    assert found is None


async def test_a_deleted_store_s_setting_is_gone(api: Api, scene: Scene) -> None:
    # given
    setting = (await settings_of(api, scene.owner, scene.b))[("V2", "TEST")]

    # when
    deleted = await api.gql(STORE_DELETE, {"storeId": scene.b}, token=scene.owner)
    found = await node(api, scene.owner, setting["id"])

    # then
    assert deleted.data["storeDelete"]["userErrors"] == []
    assert found is None


@pytest.mark.parametrize("key", [0, 3, 2**33, 10**10])
async def test_an_id_of_no_setting_is_null(api: Api, scene: Scene, key: int) -> None:
    # when
    result = await api.gql(NODE, {"id": global_id("WebhookSetting", key)}, token=scene.owner)

    # then
    assert result.data["node"] is None
