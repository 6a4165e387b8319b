"""channelUpdate: versions, secrets kept unless resent, catalog rules, scope and audit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.applications import Starlette

from gql_api.node import to_global_id
from tests.channels.helpers import (
    CHANNEL_UPDATE,
    INICIS_API_IV,
    INICIS_API_KEY,
    INICIS_SIGN_KEY,
    MASK,
    NODE,
    audit_events,
    create_channel,
    credentials_by_key,
    decrypt,
    errors,
    inicis_live_input,
    kcp_shared_test_input,
    stored_credentials,
    update_channel,
)
from tests.support import Api, SignedUp, create_store, invite_and_join

UPDATE_INPUT_FIELDS = """
{ __type(name: "ChannelUpdateInput") { inputFields { name } } }
"""


async def inicis_channel(api: Api, owner: SignedUp, **overrides: Any) -> dict[str, Any]:
    return await create_channel(
        api, owner.token, inicis_live_input(owner.representative_store_id, **overrides)
    )


async def read_channel(api: Api, token: str, channel_id: str) -> dict[str, Any] | None:
    result = await api.gql(NODE, {"id": channel_id}, token=token)
    node: dict[str, Any] | None = result.data["node"]
    return node


def stable(channel: dict[str, Any]) -> dict[str, Any]:
    """Everything a failed update must leave as it was."""
    return {k: v for k, v in channel.items() if k not in {"store", "__typename"}}


# --- changes ------------------------------------------------------------------------------


async def test_renaming_bumps_the_version_and_keeps_everything_else(
    api: Api, owner: SignedUp
) -> None:
    # given
    channel = await inicis_channel(api, owner)

    # when
    payload = await update_channel(
        api, owner.token, {"id": channel["id"], "version": 1, "name": "Renamed"}
    )

    # then
    assert payload["userErrors"] == []
    updated = payload["channel"]
    assert updated["name"] == "Renamed"
    assert updated["version"] == 2
    assert updated["updatedAt"] >= channel["updatedAt"]
    for key in ("channelKey", "mode", "type", "pgProvider", "moduleCode", "purpose"):
        assert updated[key] == channel[key]
    assert updated["pgMerchantId"] == channel["pgMerchantId"]
    assert updated["taxType"] == channel["taxType"]
    assert updated["credentials"] == channel["credentials"]
    assert stable(await read_channel(api, owner.token, channel["id"]) or {}) == stable(updated)


async def test_tax_type_can_change(api: Api, owner: SignedUp) -> None:
    # given
    channel = await inicis_channel(api, owner)

    # when
    payload = await update_channel(
        api, owner.token, {"id": channel["id"], "version": 1, "taxType": "TAX_FREE"}
    )

    # then
    assert payload["userErrors"] == []
    assert payload["channel"]["taxType"] == "TAX_FREE"
    assert payload["channel"]["version"] == 2


async def test_mode_provider_module_and_purpose_are_not_in_the_update_input(api: Api) -> None:
    # when
    result = await api.gql(UPDATE_INPUT_FIELDS)

    # then
    names = {field["name"] for field in result.data["__type"]["inputFields"]}
    assert names == {"id", "version", "name", "pgMerchantId", "credentials", "taxType"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mode", "TEST"),
        ("pgProvider", "KCP_V2"),
        ("moduleCode", "KCP_V2_PAYMENT"),
        ("purpose", "IDENTITY_VERIFICATION"),
    ],
)
async def test_sending_an_immutable_field_is_refused_and_changes_nothing(
    api: Api, owner: SignedUp, field: str, value: str
) -> None:
    # given
    channel = await inicis_channel(api, owner)

    # when
    result = await api.gql(
        CHANNEL_UPDATE,
        {"input": {"id": channel["id"], "version": 1, "name": "Changed", field: value}},
        token=owner.token,
    )

    # then
    assert result.body.get("data") is None
    assert len(result.body["errors"]) == 1
    assert stable(await read_channel(api, owner.token, channel["id"]) or {}) == stable(channel)


# --- versions -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 3, 0])
async def test_a_stale_or_unknown_version_is_a_conflict_and_changes_nothing(
    api: Api, owner: SignedUp, app: Starlette, version: int
) -> None:
    # given: the channel is at version 2
    channel = await inicis_channel(api, owner)
    first = await update_channel(
        api, owner.token, {"id": channel["id"], "version": 1, "name": "First"}
    )
    assert first["userErrors"] == []

    # when
    payload = await update_channel(
        api,
        owner.token,
        {
            "id": channel["id"],
            "version": version,
            "name": "Second",
            "taxType": "TAX_FREE",
            "credentials": [{"key": "signKey", "value": "replacedSignKeyValue"}],
        },
    )

    # then
    assert payload["channel"] is None
    assert errors(payload) == [("VERSION_CONFLICT", ["input", "version"])]
    assert stable(await read_channel(api, owner.token, channel["id"]) or {}) == stable(
        first["channel"]
    )
    stored = await stored_credentials(app, channel["channelKey"])
    key = channel["channelKey"]
    assert decrypt(app, key, "signKey", stored["signKey"]["cipher"]) == INICIS_SIGN_KEY


async def test_two_concurrent_updates_with_one_version_have_exactly_one_winner(
    api: Api, owner: SignedUp
) -> None:
    # given
    channel = await inicis_channel(api, owner)

    # when
    payloads = await asyncio.gather(
        update_channel(api, owner.token, {"id": channel["id"], "version": 1, "name": "Left"}),
        update_channel(api, owner.token, {"id": channel["id"], "version": 1, "name": "Right"}),
    )

    # then
    winners = [p for p in payloads if p["userErrors"] == []]
    losers = [p for p in payloads if p["userErrors"] != []]
    assert len(winners) == 1
    assert len(losers) == 1
    assert errors(losers[0]) == [("VERSION_CONFLICT", ["input", "version"])]
    assert losers[0]["channel"] is None
    current = await read_channel(api, owner.token, channel["id"])
    assert current is not None
    assert current["version"] == 2
    assert current["name"] == winners[0]["channel"]["name"]
    assert len(await audit_events(api, owner.token, "channel.update")) == 1


async def test_many_concurrent_updates_with_one_version_have_exactly_one_winner(
    api: Api, owner: SignedUp
) -> None:
    # given
    channel = await inicis_channel(api, owner)

    # when
    payloads = await asyncio.gather(
        *(
            update_channel(
                api,
                owner.token,
                {
                    "id": channel["id"],
                    "version": 1,
                    "credentials": [{"key": "iniApiIv", "value": f"concurrentIv{n:04d}"}],
                },
            )
            for n in range(6)
        )
    )

    # then
    assert sum(1 for p in payloads if p["userErrors"] == []) == 1
    assert (
        sorted(str(errors(p)) for p in payloads if p["userErrors"])
        == [str([("VERSION_CONFLICT", ["input", "version"])])] * 5
    )
    current = await read_channel(api, owner.token, channel["id"])
    assert current is not None
    assert current["version"] == 2


async def test_successive_updates_each_need_the_latest_version(api: Api, owner: SignedUp) -> None:
    # given
    channel = await inicis_channel(api, owner)

    # when
    versions = []
    for n in range(3):
        payload = await update_channel(
            api, owner.token, {"id": channel["id"], "version": n + 1, "name": f"Name {n}"}
        )
        assert payload["userErrors"] == [], payload
        versions.append(payload["channel"]["version"])

    # then
    assert versions == [2, 3, 4]


# --- credentials --------------------------------------------------------------------------


async def test_secrets_not_resent_are_kept(api: Api, owner: SignedUp, app: Starlette) -> None:
    # given
    channel = await inicis_channel(api, owner)
    masked = {c["key"]: c["maskedValue"] for c in channel["credentials"]}

    # when: a name change and one non-required secret replaced
    payload = await update_channel(
        api,
        owner.token,
        {
            "id": channel["id"],
            "version": 1,
            "name": "Kept secrets",
            "credentials": [{"key": "iniApiIv", "value": "replacedIvValue9"}],
        },
    )

    # then
    assert payload["userErrors"] == []
    after = credentials_by_key(payload["channel"])
    assert after["signKey"]["maskedValue"] == masked["signKey"]
    assert after["iniApiKey"]["maskedValue"] == masked["iniApiKey"]
    assert after["iniApiIv"]["maskedValue"] == MASK + "lue9"
    stored = await stored_credentials(app, channel["channelKey"])
    key = channel["channelKey"]
    assert decrypt(app, key, "signKey", stored["signKey"]["cipher"]) == INICIS_SIGN_KEY
    assert decrypt(app, key, "iniApiKey", stored["iniApiKey"]["cipher"]) == INICIS_API_KEY
    assert decrypt(app, key, "iniApiIv", stored["iniApiIv"]["cipher"]) == "replacedIvValue9"


async def test_a_resent_secret_replaces_the_stored_one(
    api: Api, owner: SignedUp, app: Starlette
) -> None:
    # given
    channel = await inicis_channel(api, owner)
    new_sign_key = "brandNewSignKeyValue-7788"

    # when
    payload = await update_channel(
        api,
        owner.token,
        {
            "id": channel["id"],
            "version": 1,
            "credentials": [{"key": "signKey", "value": new_sign_key}],
        },
    )

    # then
    assert payload["userErrors"] == []
    assert credentials_by_key(payload["channel"])["signKey"]["maskedValue"] == MASK + "7788"
    stored = await stored_credentials(app, channel["channelKey"])
    assert (
        decrypt(app, channel["channelKey"], "signKey", stored["signKey"]["cipher"]) == new_sign_key
    )


async def test_an_empty_value_clears_an_optional_credential(
    api: Api, owner: SignedUp, app: Starlette
) -> None:
    # given
    channel = await inicis_channel(api, owner)
    assert "iniApiIv" in credentials_by_key(channel)

    # when
    payload = await update_channel(
        api,
        owner.token,
        {"id": channel["id"], "version": 1, "credentials": [{"key": "iniApiIv", "value": ""}]},
    )

    # then
    assert payload["userErrors"] == []
    assert set(credentials_by_key(payload["channel"])) == {"signKey", "iniApiKey"}
    assert "iniApiIv" not in await stored_credentials(app, channel["channelKey"])


async def test_an_empty_value_for_a_required_credential_is_missing(
    api: Api, owner: SignedUp, app: Starlette
) -> None:
    # given
    channel = await inicis_channel(api, owner)

    # when
    payload = await update_channel(
        api,
        owner.token,
        {"id": channel["id"], "version": 1, "credentials": [{"key": "signKey", "value": ""}]},
    )

    # then
    assert payload["channel"] is None
    assert errors(payload) == [("CREDENTIAL_MISSING", ["input", "credentials", "signKey"])]
    stored = await stored_credentials(app, channel["channelKey"])
    assert (
        decrypt(app, channel["channelKey"], "signKey", stored["signKey"]["cipher"])
        == INICIS_SIGN_KEY
    )
    current = await read_channel(api, owner.token, channel["id"])
    assert current is not None
    assert current["version"] == 1


def _credential(key: str) -> list[str]:
    return ["input", "credentials", key]


BAD_UPDATES: dict[str, tuple[dict[str, Any], list[tuple[str, list[str]]]]] = {
    "unknown credential": (
        {"credentials": [{"key": "merchantKey", "value": "abc"}]},
        [("CREDENTIAL_UNKNOWN", _credential("merchantKey"))],
    ),
    "secret of 20,000 characters": (
        {"credentials": [{"key": "signKey", "value": "s" * 20_000}]},
        [("INVALID_INPUT", _credential("signKey"))],
    ),
    "credential with control characters": (
        {"credentials": [{"key": "hashKey", "value": "hash\x07key"}]},
        [("INVALID_INPUT", _credential("hashKey"))],
    ),
    "MID with control characters": (
        {"pgMerchantId": "MOI\x1bportone"},
        [("INVALID_INPUT", ["input", "pgMerchantId"])],
    ),
    "empty MID": (
        {"pgMerchantId": ""},
        [("REQUIRED", ["input", "pgMerchantId"])],
    ),
    "shared test MID on a live channel": (
        {"pgMerchantId": "INIpayTest"},
        [("SHARED_TEST_MID_NOT_ALLOWED", ["input", "pgMerchantId"])],
    ),
    "another module's shared test MID": (
        {"pgMerchantId": "T0000"},
        [("SHARED_TEST_MID_NOT_ALLOWED", ["input", "pgMerchantId"])],
    ),
    "empty name": (
        {"name": " "},
        [("REQUIRED", ["input", "name"])],
    ),
    "name too long": (
        {"name": "x" * 101},
        [("INVALID_INPUT", ["input", "name"])],
    ),
}


@pytest.mark.parametrize(("change", "expected"), BAD_UPDATES.values(), ids=BAD_UPDATES.keys())
async def test_bad_updates_are_user_errors_and_change_nothing(
    api: Api,
    owner: SignedUp,
    app: Starlette,
    change: dict[str, Any],
    expected: list[tuple[str, list[str]]],
) -> None:
    # given
    channel = await inicis_channel(api, owner)

    # when
    payload = await update_channel(
        api, owner.token, {"id": channel["id"], "version": 1, "taxType": "TAX_FREE", **change}
    )

    # then
    assert payload["channel"] is None
    assert errors(payload) == expected
    assert stable(await read_channel(api, owner.token, channel["id"]) or {}) == stable(channel)
    assert await audit_events(api, owner.token, "channel.update") == []


async def test_moving_a_shared_test_channel_to_an_own_mid_needs_the_credentials(
    api: Api, owner: SignedUp
) -> None:
    # given
    channel = await create_channel(
        api, owner.token, kcp_shared_test_input(owner.representative_store_id)
    )

    # when
    refused = await update_channel(
        api, owner.token, {"id": channel["id"], "version": 1, "pgMerchantId": "IP5Q1"}
    )
    accepted = await update_channel(
        api,
        owner.token,
        {
            "id": channel["id"],
            "version": 1,
            "pgMerchantId": "IP5Q1",
            "credentials": [
                {"key": "certificate", "value": "-----BEGIN CERTIFICATE-----\nMIIBupd"},
                {"key": "privateKey", "value": "-----BEGIN PRIVATE KEY-----\nMIIEupd"},
                {"key": "privateKeyPassword", "value": "updatedPassword1"},
            ],
        },
    )

    # then
    assert errors(refused) == [
        ("CREDENTIAL_MISSING", ["input", "credentials", "certificate"]),
        ("CREDENTIAL_MISSING", ["input", "credentials", "privateKey"]),
        ("CREDENTIAL_MISSING", ["input", "credentials", "privateKeyPassword"]),
    ]
    assert accepted["userErrors"] == []
    assert accepted["channel"]["type"] == "MERCHANT_TEST"
    assert accepted["channel"]["pgMerchantId"] == "IP5Q1"


async def test_moving_an_own_test_mid_to_a_shared_one_makes_it_shared_test(
    api: Api, owner: SignedUp
) -> None:
    # given
    channel = await inicis_channel(api, owner, mode="TEST", pgMerchantId="INIownTest1")
    assert channel["type"] == "MERCHANT_TEST"

    # when
    payload = await update_channel(
        api, owner.token, {"id": channel["id"], "version": 1, "pgMerchantId": "INIpayTest"}
    )

    # then
    assert payload["userErrors"] == []
    assert payload["channel"]["type"] == "SHARED_TEST"
    assert payload["channel"]["pgMerchantId"] == "INIpayTest"


async def test_a_duplicate_name_is_refused_but_keeping_ones_own_name_is_fine(
    api: Api, owner: SignedUp
) -> None:
    # given
    store_id = owner.representative_store_id
    await create_channel(api, owner.token, inicis_live_input(store_id, "Taken"))
    channel = await create_channel(api, owner.token, inicis_live_input(store_id, "Mine"))
    test_channel = await create_channel(api, owner.token, kcp_shared_test_input(store_id, "Test"))

    # when
    duplicate = await update_channel(
        api, owner.token, {"id": channel["id"], "version": 1, "name": "Taken"}
    )
    same = await update_channel(
        api, owner.token, {"id": channel["id"], "version": 1, "name": "Mine", "taxType": "UNSET"}
    )
    other_mode = await update_channel(
        api, owner.token, {"id": test_channel["id"], "version": 1, "name": "Taken"}
    )

    # then
    assert errors(duplicate) == [("CHANNEL_NAME_DUPLICATE", ["input", "name"])]
    assert same["userErrors"] == []
    assert other_mode["userErrors"] == []


# --- scope --------------------------------------------------------------------------------


async def test_a_channel_of_another_merchant_is_not_found_like_a_made_up_id(
    api: Api, owner: SignedUp
) -> None:
    # given
    other = await api.sign_up()
    foreign = await create_channel(
        api, other.token, kcp_shared_test_input(other.representative_store_id)
    )
    made_up = to_global_id("Channel", 987_654)
    a_store = await api.gql("{ merchant { representativeStore { id } } }", token=owner.token)
    store_node_id = a_store.data["merchant"]["representativeStore"]["id"]

    # when
    payloads = [
        await update_channel(api, owner.token, {"id": channel_id, "version": 1, "name": "Mine"})
        for channel_id in (foreign["id"], made_up, "not-an-id", store_node_id)
    ]

    # then
    for payload in payloads:
        assert payload["channel"] is None
        assert errors(payload) == [("NOT_FOUND", ["input", "id"])]
    untouched = await read_channel(api, other.token, foreign["id"])
    assert untouched is not None
    assert untouched["name"] == foreign["name"]
    assert untouched["version"] == 1


async def test_a_store_manager_updates_channels_of_their_own_store_only(
    api: Api, owner: SignedUp
) -> None:
    # given
    sub_store_id, _ = await create_store(api, owner.token, "Mapo")
    manager = await invite_and_join(api, owner.token, "STORE_MANAGER", sub_store_id)
    own = await create_channel(api, owner.token, kcp_shared_test_input(sub_store_id))
    other = await create_channel(
        api, owner.token, kcp_shared_test_input(owner.representative_store_id)
    )

    # when
    allowed = await update_channel(
        api, manager.token, {"id": own["id"], "version": 1, "name": "Mapo KCP"}
    )
    refused = await update_channel(
        api, manager.token, {"id": other["id"], "version": 1, "name": "Mapo KCP"}
    )

    # then
    assert allowed["userErrors"] == []
    assert errors(refused) == [("NOT_FOUND", ["input", "id"])]


async def test_a_read_only_member_may_not_update(api: Api, owner: SignedUp) -> None:
    # given
    channel = await inicis_channel(api, owner)
    reader = await invite_and_join(api, owner.token, "READ_ONLY")

    # when
    result = await api.gql(
        CHANNEL_UPDATE,
        {"input": {"id": channel["id"], "version": 1, "name": "Nope"}},
        token=reader.token,
    )

    # then
    assert result.error_codes == ["FORBIDDEN"]
    current = await read_channel(api, owner.token, channel["id"])
    assert current is not None
    assert current["name"] == channel["name"]


# --- audit --------------------------------------------------------------------------------


async def test_an_update_is_audited_naming_fields_but_never_secret_values(
    api: Api, owner: SignedUp
) -> None:
    # given
    channel = await inicis_channel(api, owner)
    new_secret = "auditedSignKeyValue-4242"

    # when
    payload = await update_channel(
        api,
        owner.token,
        {
            "id": channel["id"],
            "version": 1,
            "name": "Audited update",
            "taxType": "TAX_FREE",
            "credentials": [{"key": "signKey", "value": new_secret}],
        },
    )

    # then
    assert payload["userErrors"] == []
    events = await audit_events(api, owner.token, "channel.update")
    assert len(events) == 1
    event = events[0]
    assert event["targetId"] == channel["channelKey"]
    assert event["storeId"] == owner.representative_store_id
    assert "name" in event["summary"]
    assert "taxType" in event["summary"]
    assert "signKey" in event["summary"]
    for secret in (new_secret, INICIS_SIGN_KEY, INICIS_API_KEY, INICIS_API_IV):
        assert secret not in str(event)


async def test_an_update_that_changes_nothing_keeps_the_version(api: Api, owner: SignedUp) -> None:
    # given
    channel = await inicis_channel(api, owner)

    # when
    payload = await update_channel(
        api,
        owner.token,
        {"id": channel["id"], "version": 1, "name": channel["name"], "taxType": "TAXABLE"},
    )

    # then
    assert payload["userErrors"] == []
    assert payload["channel"]["version"] == 1
    assert await audit_events(api, owner.token, "channel.update") == []
