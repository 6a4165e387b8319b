"""Who may manage webhooks: OWNER, ADMIN, DEVELOPER, STORE_MANAGER (own sub-store), API secrets."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from standardwebhooks.webhooks import Webhook

from tests.support import Api, GraphQLResponse, create_store, invite_and_join
from tests.webhooks.helpers import (
    SECRET_EXPIRE,
    SECRET_ISSUE,
    SETTING_UPDATE,
    WEBHOOK_TEST,
    Caller,
    errors_of,
    issue_api_secret,
    issue_secret,
    loopback_settings,  # noqa: F401  (the `settings` fixture)
    read_setting,
    save_setting,
    setting_input,
)
from tests.webhooks.receiver import Receiver, Receivers

OTHER_URL = "http://127.0.0.1:9/other"


@dataclass
class Scene:
    owner_token: str
    rep: str
    sub: str
    receiver: Receiver
    secret_id: str  # an active secret of `store` (TEST mode)
    store: str  # where the caller acts


async def prepare(api: Api, receiver_pool: Receivers, *, on_sub: bool) -> Scene:
    owner = await api.sign_up()
    rep = owner.representative_store_id
    sub, _ = await create_store(api, owner.token, "Branch")
    receiver = await receiver_pool.start()
    store = sub if on_sub else rep
    extra = {"usesRepresentativeSetting": False} if on_sub else {}
    await save_setting(api, owner.token, store, receiver.url, **extra)
    secret = await issue_secret(api, owner.token, store)
    return Scene(owner.token, rep, sub, receiver, secret.id, store)


async def act_fully(api: Api, caller: Caller, store_id: str, receiver: Receiver) -> None:
    """Save, issue, test and expire as `caller`: every step must succeed."""
    saved = await caller.gql(
        api,
        SETTING_UPDATE,
        {"input": setting_input(store_id, receiver.url, usesRepresentativeSetting=None)},
    )
    assert saved.data["webhookSettingUpdate"]["userErrors"] == [], saved.body
    issued = await caller.gql(api, SECRET_ISSUE, {"input": {"storeId": store_id, "mode": "TEST"}})
    issue_payload = issued.data["webhookSecretIssue"]
    assert issue_payload["userErrors"] == [], issued.body
    tested = await caller.gql(
        api, WEBHOOK_TEST, {"input": {"storeId": store_id, "moduleVersion": "V2", "mode": "TEST"}}
    )
    test_payload = tested.data["webhookTest"]
    assert test_payload["userErrors"] == [], tested.body
    assert test_payload["delivery"]["succeeded"] is True
    received = receiver.requests[-1]
    Webhook(issue_payload["secret"]).verify(received.body, received.headers)
    expired = await caller.gql(api, SECRET_EXPIRE, {"id": issue_payload["webhookSecret"]["id"]})
    assert expired.data["webhookSecretExpire"]["userErrors"] == [], expired.body


async def attempt_all(api: Api, caller: Caller, scene: Scene) -> list[GraphQLResponse]:
    return [
        await caller.gql(api, SETTING_UPDATE, {"input": setting_input(scene.store, OTHER_URL)}),
        await caller.gql(api, SECRET_ISSUE, {"input": {"storeId": scene.store, "mode": "TEST"}}),
        await caller.gql(api, SECRET_EXPIRE, {"id": scene.secret_id}),
        await caller.gql(
            api,
            WEBHOOK_TEST,
            {"input": {"storeId": scene.store, "moduleVersion": "V2", "mode": "TEST"}},
        ),
    ]


async def assert_unchanged(api: Api, scene: Scene) -> None:
    setting = await read_setting(api, scene.owner_token, scene.store)
    assert setting["url"] == scene.receiver.url
    assert [(s["id"], s["expiredAt"]) for s in setting["secrets"]] == [(scene.secret_id, None)]
    assert scene.receiver.requests == []


@pytest.mark.parametrize("role", ["ADMIN", "DEVELOPER"])
async def test_merchant_wide_roles_may_manage_webhooks(
    api: Api, receiver_pool: Receivers, role: str
) -> None:
    # given
    owner = await api.sign_up()
    member = await invite_and_join(api, owner.token, role)
    receiver = await receiver_pool.start()

    # when / then
    await act_fully(api, Caller(token=member.token), owner.representative_store_id, receiver)


async def test_the_owner_may_manage_webhooks_of_a_sub_store(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    sub, _ = await create_store(api, owner.token, "Branch")
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, sub, receiver.url, usesRepresentativeSetting=False)

    # when / then
    await act_fully(api, Caller(token=owner.token), sub, receiver)


@pytest.mark.parametrize("role", ["MANAGER", "READ_ONLY"])
async def test_other_merchant_wide_roles_are_forbidden_but_may_read(
    api: Api, receiver_pool: Receivers, role: str
) -> None:
    # given
    scene = await prepare(api, receiver_pool, on_sub=False)
    member = await invite_and_join(api, scene.owner_token, role)

    # when
    results = await attempt_all(api, Caller(token=member.token), scene)
    read = await read_setting(api, member.token, scene.store)

    # then
    assert [r.error_codes for r in results] == [["FORBIDDEN"]] * 4
    assert read["url"] == scene.receiver.url
    await assert_unchanged(api, scene)


async def test_store_read_only_is_forbidden_on_its_own_sub_store(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    scene = await prepare(api, receiver_pool, on_sub=True)
    member = await invite_and_join(api, scene.owner_token, "STORE_READ_ONLY", scene.sub)

    # when
    results = await attempt_all(api, Caller(token=member.token), scene)
    read = await read_setting(api, member.token, scene.sub)

    # then
    assert [r.error_codes for r in results] == [["FORBIDDEN"]] * 4
    assert read["url"] == scene.receiver.url
    await assert_unchanged(api, scene)


async def test_a_store_manager_manages_its_own_sub_store(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    sub, _ = await create_store(api, owner.token, "Branch")
    member = await invite_and_join(api, owner.token, "STORE_MANAGER", sub)
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, sub, receiver.url, usesRepresentativeSetting=False)

    # when / then
    await act_fully(api, Caller(token=member.token), sub, receiver)


async def test_an_api_secret_of_a_sub_store_manages_that_store(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    sub, _ = await create_store(api, owner.token, "Branch")
    secret = await issue_api_secret(api, owner.token, sub)
    receiver = await receiver_pool.start()
    await save_setting(api, owner.token, sub, receiver.url, usesRepresentativeSetting=False)

    # when / then
    await act_fully(api, Caller(authorization=f"PortOne {secret}"), sub, receiver)


@pytest.mark.parametrize("who", ["STORE_MANAGER", "API_SECRET"])
async def test_sub_store_callers_do_not_see_the_representative_store(
    api: Api, receiver_pool: Receivers, who: str
) -> None:
    # given
    scene = await prepare(api, receiver_pool, on_sub=False)
    if who == "API_SECRET":
        caller = Caller(
            authorization=f"PortOne {await issue_api_secret(api, scene.owner_token, scene.sub)}"
        )
    else:
        member = await invite_and_join(api, scene.owner_token, who, scene.sub)
        caller = Caller(token=member.token)

    # when
    results = await attempt_all(api, caller, scene)

    # then
    payloads = [
        r.data[name]
        for r, name in zip(
            results,
            ["webhookSettingUpdate", "webhookSecretIssue", "webhookSecretExpire", "webhookTest"],
            strict=True,
        )
    ]
    assert [errors_of(p) for p in payloads] == [
        [("NOT_FOUND", ["input", "storeId"])],
        [("NOT_FOUND", ["input", "storeId"])],
        [("NOT_FOUND", ["input", "id"])],
        [("NOT_FOUND", ["input", "storeId"])],
    ]
    await assert_unchanged(api, scene)


async def test_without_credentials_nothing_is_done(api: Api, receiver_pool: Receivers) -> None:
    # given
    scene = await prepare(api, receiver_pool, on_sub=False)

    # when
    results = await attempt_all(api, Caller(), scene)

    # then
    assert [r.error_codes for r in results] == [["UNAUTHENTICATED"]] * 4
    await assert_unchanged(api, scene)
