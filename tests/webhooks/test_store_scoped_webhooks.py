"""Store-scoped callers and the representative store's webhook; test calls per store and minute.

A sub-store follows the representative store's setting until it opts out. A store-scoped
caller (STORE_* roles, a sub-store API secret) sees that it follows, never the representative
store's URL (it may carry a token), secrets or deliveries, and cannot send to that URL.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col

from db.engine import create_engine
from db.models import WebhookSecret
from db.types import utcnow
from gql_api.ids import pk_of
from gql_api.settings import Settings
from gql_api.webhooks.calls import TEST_CALLS_PER_MINUTE
from gql_api.webhooks.service import EXPIRED_SECRET_RETENTION, MAX_LISTED_SECRETS
from tests.support import Api, GraphQLResponse, create_store, invite_and_join
from tests.webhooks.helpers import (
    SECRET_EXPIRE,
    SETTING_FIELDS,
    WEBHOOK_TEST,
    Caller,
    delivered,
    errors_of,
    issue_api_secret,
    issue_secret,
    loopback_settings,  # noqa: F401  (the `settings` fixture)
    other_instance,
    save_setting,
)
from tests.webhooks.receiver import Receiver, Receivers

SETTINGS_WITH_LOG = f"""
query Settings($storeId: String!) {{
  store(storeId: $storeId) {{
    webhookSettings {{
      {SETTING_FIELDS}
      deliveries(first: 20) {{ nodes {{ id url requestHeaders {{ name value }} requestBody }} }}
    }}
  }}
}}
"""

NODE = """
query Node($id: ID!) {
  node(id: $id) { id ... on WebhookDelivery { url requestBody responseBody } }
}
"""

TOKEN = "rep-s3cr3t-t0ken"


@dataclass
class Scene:
    """A representative store with a tokenised URL and a secret; a sub-store following it,
    whose owner-made test call went to the representative store's receiver."""

    owner_token: str
    rep: str
    sub: str
    receiver: Receiver
    rep_url: str
    secret_hint: str
    delivery_id: str


async def following_sub_store(api: Api, receiver_pool: Receivers) -> Scene:
    owner = await api.sign_up()
    rep = owner.representative_store_id
    sub, _ = await create_store(api, owner.token, "Branch")
    receiver = await receiver_pool.start()
    rep_url = f"{receiver.url}?token={TOKEN}"
    await save_setting(api, owner.token, rep, rep_url)
    secret = await issue_secret(api, owner.token, rep)
    delivery = await delivered(api, owner.token, sub)
    assert delivery["url"] == rep_url
    assert len(receiver.requests) == 1
    return Scene(owner.token, rep, sub, receiver, rep_url, secret.hint, delivery["id"])


async def store_scoped(api: Api, scene: Scene, who: str) -> Caller:
    if who == "API_SECRET":
        secret = await issue_api_secret(api, scene.owner_token, scene.sub)
        return Caller(authorization=f"PortOne {secret}")
    member = await invite_and_join(api, scene.owner_token, who, scene.sub)
    return Caller(token=member.token)


async def settings_of(api: Api, caller: Caller, store_id: str) -> list[dict[str, Any]]:
    result = await caller.gql(api, SETTINGS_WITH_LOG, {"storeId": store_id})
    settings: list[dict[str, Any]] = result.data["store"]["webhookSettings"]
    return settings


def v2_test(settings: list[dict[str, Any]]) -> dict[str, Any]:
    return next(s for s in settings if (s["moduleVersion"], s["mode"]) == ("V2", "TEST"))


async def call_test(api: Api, caller: Caller, store_id: str) -> GraphQLResponse:
    return await caller.gql(
        api, WEBHOOK_TEST, {"input": {"storeId": store_id, "moduleVersion": "V2", "mode": "TEST"}}
    )


# --- what a store-scoped caller sees ---------------------------------------------------------


@pytest.mark.parametrize("who", ["STORE_READ_ONLY", "STORE_MANAGER", "API_SECRET"])
async def test_a_store_scoped_caller_sees_that_it_follows_but_nothing_of_the_representative(
    api: Api, receiver_pool: Receivers, who: str
) -> None:
    # given
    scene = await following_sub_store(api, receiver_pool)
    caller = await store_scoped(api, scene, who)

    # when
    settings = await settings_of(api, caller, scene.sub)
    node = await caller.gql(api, NODE, {"id": scene.delivery_id})

    # then
    assert all(s["usesRepresentativeSetting"] is True for s in settings)
    assert all(s["url"] is None for s in settings)
    assert all(s["secrets"] == [] for s in settings)
    assert all(s["deliveries"]["nodes"] == [] for s in settings)
    assert v2_test(settings)["contentType"] == "JSON"
    assert node.data["node"] is None
    everything = repr(settings) + repr(node.body)
    for leak in (TOKEN, scene.rep_url, scene.secret_hint):
        assert leak not in everything


async def test_the_owner_still_sees_the_representative_setting_of_a_following_sub_store(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    scene = await following_sub_store(api, receiver_pool)

    # when
    setting = v2_test(await settings_of(api, Caller(token=scene.owner_token), scene.sub))
    node = await api.gql(NODE, {"id": scene.delivery_id}, token=scene.owner_token)

    # then
    assert setting["usesRepresentativeSetting"] is True
    assert setting["url"] == scene.rep_url
    assert [s["hint"] for s in setting["secrets"]] == [scene.secret_hint]
    assert [d["id"] for d in setting["deliveries"]["nodes"]] == [scene.delivery_id]
    assert node.data["node"]["url"] == scene.rep_url


async def test_opting_out_does_not_reveal_deliveries_sent_while_following(
    api: Api, receiver_pool: Receivers
) -> None:
    # given: the store manager makes its sub-store stop following, with a URL of its own
    scene = await following_sub_store(api, receiver_pool)
    caller = await store_scoped(api, scene, "STORE_MANAGER")
    own = await receiver_pool.start()
    saved = await caller.gql(
        api,
        """mutation U($input: WebhookSettingUpdateInput!) {
          webhookSettingUpdate(input: $input) { userErrors { code } }
        }""",
        {
            "input": {
                "storeId": scene.sub,
                "moduleVersion": "V2",
                "mode": "TEST",
                "url": own.url,
                "usesRepresentativeSetting": False,
            }
        },
    )
    assert saved.data["webhookSettingUpdate"]["userErrors"] == []
    await issue_secret(api, scene.owner_token, scene.sub)  # its own setting signs with its own

    # when
    own_call = await call_test(api, caller, scene.sub)
    setting = v2_test(await settings_of(api, caller, scene.sub))
    node = await caller.gql(api, NODE, {"id": scene.delivery_id})

    # then
    own_delivery = own_call.data["webhookTest"]["delivery"]
    assert [d["id"] for d in setting["deliveries"]["nodes"]] == [own_delivery["id"]]
    assert setting["url"] == own.url
    assert node.data["node"] is None
    owner_view = v2_test(await settings_of(api, Caller(token=scene.owner_token), scene.sub))
    assert [d["id"] for d in owner_view["deliveries"]["nodes"]] == [
        own_delivery["id"],
        scene.delivery_id,
    ]


# --- who may send to it ----------------------------------------------------------------------


@pytest.mark.parametrize("who", ["STORE_MANAGER", "API_SECRET"])
async def test_a_store_scoped_caller_cannot_test_the_representative_url(
    api: Api, receiver_pool: Receivers, who: str
) -> None:
    # given
    scene = await following_sub_store(api, receiver_pool)
    caller = await store_scoped(api, scene, who)

    # when
    result = await call_test(api, caller, scene.sub)

    # then
    payload = result.data["webhookTest"]
    assert errors_of(payload) == [("WEBHOOK_REPRESENTATIVE_SETTING", ["input", "storeId"])]
    assert payload["delivery"] is None
    assert len(scene.receiver.requests) == 1  # the owner's call only
    assert TOKEN not in repr(result.body)
    owner_view = v2_test(await settings_of(api, Caller(token=scene.owner_token), scene.sub))
    assert [d["id"] for d in owner_view["deliveries"]["nodes"]] == [scene.delivery_id]


@pytest.mark.parametrize(("role", "allowed"), [("DEVELOPER", True), ("STORE_MANAGER", False)])
async def test_only_merchant_wide_webhook_roles_test_a_following_sub_store(
    api: Api, receiver_pool: Receivers, role: str, allowed: bool
) -> None:
    # given
    scene = await following_sub_store(api, receiver_pool)
    store_id = scene.sub if role.startswith("STORE_") else None
    member = await invite_and_join(api, scene.owner_token, role, store_id)

    # when
    result = await call_test(api, Caller(token=member.token), scene.sub)

    # then
    payload = result.data["webhookTest"]
    if allowed:
        assert payload["userErrors"] == []
        assert payload["delivery"]["url"] == scene.rep_url
        assert len(scene.receiver.requests) == 2
    else:
        assert errors_of(payload) == [("WEBHOOK_REPRESENTATIVE_SETTING", ["input", "storeId"])]
        assert len(scene.receiver.requests) == 1


# --- how often -------------------------------------------------------------------------------


async def test_the_call_after_the_limit_in_a_minute_is_refused_and_not_sent(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    other, _ = await create_store(api, owner.token, "Branch")
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url)
    await issue_secret(api, owner.token, store_id)
    await save_setting(api, owner.token, other, receiver.url, usesRepresentativeSetting=False)
    await issue_secret(api, owner.token, other)
    for _ in range(TEST_CALLS_PER_MINUTE):
        await delivered(api, owner.token, store_id)

    # when
    refused = await call_test(api, Caller(token=owner.token), store_id)
    other_store = await call_test(api, Caller(token=owner.token), other)

    # then
    payload = refused.data["webhookTest"]
    assert errors_of(payload) == [("WEBHOOK_TEST_RATE_LIMITED", ["input", "storeId"])]
    assert payload["delivery"] is None
    assert other_store.data["webhookTest"]["userErrors"] == []
    assert len(receiver.requests) == TEST_CALLS_PER_MINUTE + 1
    setting = v2_test(await settings_of(api, Caller(token=owner.token), store_id))
    assert len(setting["deliveries"]["nodes"]) == TEST_CALLS_PER_MINUTE


async def test_concurrent_calls_on_two_processes_never_exceed_the_limit(
    api: Api, receiver_pool: Receivers, settings: Settings
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, receiver.url)
    await issue_secret(api, owner.token, store_id)
    caller = Caller(token=owner.token)

    # when
    async with other_instance(settings) as second:
        results = await asyncio.gather(
            *(call_test(instance, caller, store_id) for instance in [api, second] * 7)
        )

    # then
    payloads = [r.data["webhookTest"] for r in results]
    sent = [p for p in payloads if p["delivery"] is not None]
    refused = [errors_of(p) for p in payloads if p["delivery"] is None]
    assert len(sent) == TEST_CALLS_PER_MINUTE
    assert refused == [[("WEBHOOK_TEST_RATE_LIMITED", ["input", "storeId"])]] * 4
    assert len(receiver.requests) == TEST_CALLS_PER_MINUTE


# --- signing secrets read for listings --------------------------------------------------------


async def test_a_listing_shows_the_active_secrets_and_the_latest_expired_ones(api: Api) -> None:
    # given: many rotations, then two active secrets
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    expired = []
    for _ in range(MAX_LISTED_SECRETS + 2):
        secret = await issue_secret(api, owner.token, store_id)
        result = await api.gql(SECRET_EXPIRE, {"id": secret.id}, token=owner.token)
        assert result.data["webhookSecretExpire"]["userErrors"] == []
        expired.append(secret.id)
    active = [(await issue_secret(api, owner.token, store_id)).id for _ in range(2)]

    # when
    listed = v2_test(await settings_of(api, Caller(token=owner.token), store_id))["secrets"]

    # then
    kept = expired[-(MAX_LISTED_SECRETS - 2) :]
    assert [s["id"] for s in listed] == kept + active


async def test_secrets_expired_longer_than_the_retention_are_deleted_on_the_next_issue(
    api: Api, database_url: str
) -> None:
    # given: one secret expired long ago, one recently
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    old = await issue_secret(api, owner.token, store_id)
    recent = await issue_secret(api, owner.token, store_id)
    for secret in (old, recent):
        await api.gql(SECRET_EXPIRE, {"id": secret.id}, token=owner.token)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(WebhookSecret)
                .where(col(WebhookSecret.id) == pk_of(old.id, "WebhookSecret"))
                .values(expired_at=utcnow() - EXPIRED_SECRET_RETENTION - EXPIRED_SECRET_RETENTION)
            )
    finally:
        await engine.dispose()

    # when
    new = await issue_secret(api, owner.token, store_id)

    # then
    listed = v2_test(await settings_of(api, Caller(token=owner.token), store_id))["secrets"]
    assert [s["id"] for s in listed] == [recent.id, new.id]
