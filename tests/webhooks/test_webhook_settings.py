"""Store.webhookSetting(s) and webhookSettingUpdate: content types, payload versions, sub-stores."""

from __future__ import annotations

import pytest

from gql_api.settings import Settings
from tests.conftest import make_settings
from tests.support import Api, create_store
from tests.webhooks.helpers import (
    SETTING_FIELDS,
    errors_of,
    read_setting,
    save_setting,
    update_setting,
)

ALL_SETTINGS = f"""
query All($storeId: String!) {{
  store(storeId: $storeId) {{ webhookSettings {{ {SETTING_FIELDS} }} }}
}}
"""

URL_A = "http://127.0.0.1:9/hook-a"
URL_B = "http://127.0.0.1:9/hook-b"
URL_C = "http://127.0.0.1:9/hook-c"


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Saving only resolves and checks the URL; nothing is sent by these tests.
    return make_settings(database_url, webhook_allowed_networks=["127.0.0.0/8"])


async def test_a_new_store_has_all_four_settings_empty(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(
        ALL_SETTINGS, {"storeId": owner.representative_store_id}, token=owner.token
    )

    # then
    settings = result.data["store"]["webhookSettings"]
    assert sorted((s["moduleVersion"], s["mode"]) for s in settings) == [
        ("V1", "LIVE"),
        ("V1", "TEST"),
        ("V2", "LIVE"),
        ("V2", "TEST"),
    ]
    for setting in settings:
        assert setting["url"] is None
        assert setting["contentType"] == "JSON"
        assert setting["usesRepresentativeSetting"] is False
        assert setting["secrets"] == []
        expected_version = "V2024_04_25" if setting["moduleVersion"] == "V2" else None
        assert setting["payloadVersion"] == expected_version


async def test_a_saved_setting_is_returned_and_kept_and_the_others_stay_empty(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id

    # when
    saved = await save_setting(
        api, owner.token, store_id, URL_A, contentType="JSON", payloadVersion="V2024_04_25"
    )

    # then
    assert saved["url"] == URL_A
    assert saved["moduleVersion"] == "V2"
    assert saved["mode"] == "TEST"
    assert saved["contentType"] == "JSON"
    assert saved["payloadVersion"] == "V2024_04_25"
    assert saved["updatedAt"] is not None
    assert await read_setting(api, owner.token, store_id) == saved
    everything = await api.gql(ALL_SETTINGS, {"storeId": store_id}, token=owner.token)
    others = [
        s
        for s in everything.data["store"]["webhookSettings"]
        if (s["moduleVersion"], s["mode"]) != ("V2", "TEST")
    ]
    assert len(others) == 3
    assert all(s["url"] is None for s in others)


async def test_a_null_url_clears_the_setting(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    await save_setting(api, owner.token, store_id, URL_A)

    # when
    cleared = await save_setting(api, owner.token, store_id, None)

    # then
    assert cleared["url"] is None
    assert (await read_setting(api, owner.token, store_id))["url"] is None


@pytest.mark.parametrize("payload_version", ["V2024_04_25", None])
async def test_v2_payload_version_2024_04_25_allows_json_only(
    api: Api, payload_version: str | None
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    before = await save_setting(api, owner.token, store_id, URL_A)
    extra = {"payloadVersion": payload_version} if payload_version else {}

    # when
    payload = await update_setting(
        api, owner.token, store_id, URL_B, contentType="FORM_URLENCODED", **extra
    )

    # then
    assert errors_of(payload) == [("CONTENT_TYPE_NOT_SUPPORTED", ["input", "contentType"])]
    assert payload["webhookSetting"] is None
    assert await read_setting(api, owner.token, store_id) == before


async def test_form_bodies_are_allowed_with_v2_2024_01_01_and_with_v1(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id

    # when
    v2 = await save_setting(
        api,
        owner.token,
        store_id,
        URL_A,
        contentType="FORM_URLENCODED",
        payloadVersion="V2024_01_01",
    )
    v1 = await save_setting(
        api, owner.token, store_id, URL_B, module_version="V1", contentType="FORM_URLENCODED"
    )

    # then
    assert (v2["contentType"], v2["payloadVersion"]) == ("FORM_URLENCODED", "V2024_01_01")
    assert (v1["contentType"], v1["payloadVersion"]) == ("FORM_URLENCODED", None)
    assert (await read_setting(api, owner.token, store_id, "V1"))["url"] == URL_B


async def test_a_payload_version_is_refused_for_v1(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id

    # when
    payload = await update_setting(
        api, owner.token, store_id, URL_A, module_version="V1", payloadVersion="V2024_01_01"
    )

    # then
    assert errors_of(payload) == [("INVALID_INPUT", ["input", "payloadVersion"])]
    assert (await read_setting(api, owner.token, store_id, "V1"))["url"] is None


async def test_a_sub_store_follows_the_representative_store_until_it_opts_out(api: Api) -> None:
    # given
    owner = await api.sign_up()
    rep = owner.representative_store_id
    sub, _ = await create_store(api, owner.token, "Branch")
    await save_setting(api, owner.token, rep, URL_A)

    # when
    following = await read_setting(api, owner.token, sub)
    own = await save_setting(api, owner.token, sub, URL_B, usesRepresentativeSetting=False)
    await save_setting(api, owner.token, rep, URL_C)
    still_own = await read_setting(api, owner.token, sub)
    back = await save_setting(api, owner.token, sub, URL_B, usesRepresentativeSetting=True)

    # then
    assert (following["url"], following["usesRepresentativeSetting"]) == (URL_A, True)
    assert (own["url"], own["usesRepresentativeSetting"]) == (URL_B, False)
    assert (still_own["url"], still_own["usesRepresentativeSetting"]) == (URL_B, False)
    assert (back["url"], back["usesRepresentativeSetting"]) == (URL_C, True)
    assert (await read_setting(api, owner.token, rep))["url"] == URL_C


async def test_only_a_sub_store_can_follow_the_representative_store(api: Api) -> None:
    # given
    owner = await api.sign_up()
    rep = owner.representative_store_id

    # when
    payload = await update_setting(api, owner.token, rep, URL_A, usesRepresentativeSetting=True)

    # then
    assert errors_of(payload) == [("INVALID_INPUT", ["input", "usesRepresentativeSetting"])]
    assert (await read_setting(api, owner.token, rep))["url"] is None


async def test_an_unknown_store_is_not_found(api: Api) -> None:
    # given
    owner = await api.sign_up()
    other = await api.sign_up()

    # when
    unknown = await update_setting(api, owner.token, "store-does-not-exist", URL_A)
    foreign = await update_setting(api, owner.token, other.representative_store_id, URL_A)

    # then
    assert errors_of(unknown) == [("NOT_FOUND", ["input", "storeId"])]
    assert errors_of(foreign) == [("NOT_FOUND", ["input", "storeId"])]
    assert (await read_setting(api, other.token, other.representative_store_id))["url"] is None
