"""channelCreate: the catalog rules, derived type, names, permissions and the audit trail."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette

from tests.channels.helpers import (
    CHANNEL_CREATE,
    CHANNEL_KEY,
    INICIS_API_IV,
    INICIS_API_KEY,
    INICIS_SIGN_KEY,
    KCP_CERTIFICATE,
    MASK,
    audit_events,
    count_rows,
    create_channel,
    credentials_by_key,
    errors,
    inicis_credentials,
    inicis_live_input,
    kcp_live_input,
    kcp_shared_test_input,
    try_create,
)
from tests.support import Api, SignedUp, create_store, invite_and_join

INPUT_FIELDS = """
{ __type(name: "ChannelCreateInput") { inputFields { name defaultValue } } }
"""


# --- successful creation ------------------------------------------------------------------


async def test_a_kcp_channel_on_the_shared_test_mid_is_shared_test(
    api: Api, owner: SignedUp
) -> None:
    # given
    channel_input = kcp_shared_test_input(owner.representative_store_id)

    # when
    payload = await try_create(api, owner.token, channel_input)

    # then
    assert payload["userErrors"] == []
    channel = payload["channel"]
    assert CHANNEL_KEY.match(channel["channelKey"])
    assert channel["type"] == "SHARED_TEST"
    assert channel["mode"] == "TEST"
    assert channel["pgProvider"] == "KCP_V2"
    assert channel["moduleCode"] == "KCP_V2_PAYMENT"
    assert channel["moduleVersions"] == ["V2"]
    assert channel["purpose"] == "PAYMENT"
    assert channel["pgMerchantId"] == "T0000"
    assert channel["taxType"] == "UNSET"
    assert channel["credentials"] == []
    assert channel["version"] == 1
    assert channel["store"] == {"storeId": owner.representative_store_id}


async def test_a_live_channel_with_its_own_credentials_is_live_and_masks_secrets(
    api: Api, owner: SignedUp
) -> None:
    # given
    channel_input = inicis_live_input(owner.representative_store_id)

    # when
    payload = await try_create(api, owner.token, channel_input)

    # then
    assert payload["userErrors"] == []
    channel = payload["channel"]
    assert channel["type"] == "LIVE"
    assert channel["pgMerchantId"] == "MOIportone"
    assert channel["taxType"] == "TAXABLE"
    assert sorted(channel["credentials"], key=lambda c: c["key"]) == [
        {
            "key": "iniApiIv",
            "label": "INIAPI IV",
            "secret": True,
            "value": None,
            "maskedValue": MASK + INICIS_API_IV[-4:],
        },
        {
            "key": "iniApiKey",
            "label": "INIAPI Key",
            "secret": True,
            "value": None,
            "maskedValue": MASK + INICIS_API_KEY[-4:],
        },
        {
            "key": "signKey",
            "label": "Web payment signKey",
            "secret": True,
            "value": None,
            "maskedValue": MASK + INICIS_SIGN_KEY[-4:],
        },
    ]


async def test_an_own_test_mid_makes_a_merchant_test_channel(api: Api, owner: SignedUp) -> None:
    # given
    channel_input = inicis_live_input(
        owner.representative_store_id, mode="TEST", pgMerchantId="INIownTest1"
    )

    # when
    channel = await create_channel(api, owner.token, channel_input)

    # then
    assert channel["type"] == "MERCHANT_TEST"
    assert channel["mode"] == "TEST"


async def test_a_non_secret_credential_comes_back_in_clear(api: Api, owner: SignedUp) -> None:
    # when
    channel = await create_channel(api, owner.token, kcp_live_input(owner.representative_store_id))

    # then
    credentials = credentials_by_key(channel)
    assert set(credentials) == {"certificate", "privateKey", "privateKeyPassword", "groupId"}
    assert credentials["groupId"] == {
        "key": "groupId",
        "label": "Recurring payment group ID",
        "secret": False,
        "value": "A52Q7GROUP",
        "maskedValue": None,
    }
    assert credentials["certificate"]["value"] is None
    assert credentials["certificate"]["maskedValue"] == MASK + KCP_CERTIFICATE[-4:]


async def test_credentials_come_back_in_the_catalogs_field_order(api: Api, owner: SignedUp) -> None:
    # given: sent in reverse order
    channel_input = inicis_live_input(
        owner.representative_store_id,
        credentials=[
            {"key": "hashKey", "value": "hashKeyValue-0001"},
            {"key": "iniApiIv", "value": INICIS_API_IV},
            {"key": "iniApiKey", "value": INICIS_API_KEY},
            {"key": "iniLiteKey", "value": "iniLiteKeyValue-0002"},
            {"key": "signKey", "value": INICIS_SIGN_KEY},
        ],
    )

    # when
    channel = await create_channel(api, owner.token, channel_input)

    # then
    assert [c["key"] for c in channel["credentials"]] == [
        "signKey",
        "iniLiteKey",
        "iniApiKey",
        "iniApiIv",
        "hashKey",
    ]


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("12345678901", MASK),  # 11 characters: nothing shown
        ("123456789012", MASK + "9012"),  # 12 characters: the last 4
        ("a", MASK),
    ],
)
async def test_secrets_are_masked_by_length(
    api: Api, owner: SignedUp, value: str, masked: str
) -> None:
    # given
    channel_input = inicis_live_input(
        owner.representative_store_id, credentials=inicis_credentials(hashKey=value)
    )

    # when
    channel = await create_channel(api, owner.token, channel_input)

    # then
    assert credentials_by_key(channel)["hashKey"]["maskedValue"] == masked
    assert credentials_by_key(channel)["hashKey"]["value"] is None


async def test_an_identity_verification_channel(api: Api, owner: SignedUp) -> None:
    # given
    channel_input = {
        "storeId": owner.representative_store_id,
        "mode": "TEST",
        "pgProvider": "KCP_V2",
        "moduleCode": "KCP_V2_IDENTITY_VERIFICATION",
        "purpose": "IDENTITY_VERIFICATION",
        "name": "KCP 본인인증",
        "pgMerchantId": "AO6R1",
    }

    # when
    channel = await create_channel(api, owner.token, channel_input)

    # then
    assert channel["purpose"] == "IDENTITY_VERIFICATION"
    assert channel["type"] == "SHARED_TEST"
    assert channel["moduleVersions"] == ["V1", "V2"]


@pytest.mark.parametrize("tax_type", ["UNSET", "TAXABLE", "TAX_FREE"])
async def test_each_tax_type_is_stored(api: Api, owner: SignedUp, tax_type: str) -> None:
    # when
    channel = await create_channel(
        api,
        owner.token,
        kcp_shared_test_input(owner.representative_store_id, taxType=tax_type),
    )

    # then
    assert channel["taxType"] == tax_type


async def test_an_unknown_tax_type_is_refused_by_the_schema(
    api: Api, owner: SignedUp, app: Starlette
) -> None:
    # when
    result = await api.gql(
        CHANNEL_CREATE,
        {"input": kcp_shared_test_input(owner.representative_store_id, taxType="MIXED")},
        token=owner.token,
    )

    # then
    assert result.body.get("data") is None
    assert len(result.body["errors"]) == 1
    assert await count_rows(app, "channels") == 0


async def test_purpose_and_tax_type_have_the_contract_defaults(api: Api) -> None:
    # when
    result = await api.gql(INPUT_FIELDS)

    # then
    defaults = {f["name"]: f["defaultValue"] for f in result.data["__type"]["inputFields"]}
    assert defaults["purpose"] == "PAYMENT"
    assert defaults["taxType"] == "UNSET"
    assert defaults["credentials"] == "[]"


async def test_every_channel_gets_a_new_channel_key(api: Api, owner: SignedUp) -> None:
    # given
    store_id = owner.representative_store_id

    # when
    keys = [
        (await create_channel(api, owner.token, kcp_shared_test_input(store_id, f"KCP {n}")))[
            "channelKey"
        ]
        for n in range(4)
    ]

    # then
    assert len(set(keys)) == 4
    assert all(CHANNEL_KEY.match(key) for key in keys)


# --- bad input: one user error each, nothing stored -----------------------------------------


def _shared(**overrides: Any) -> Callable[[str], dict[str, Any]]:
    return lambda store_id: kcp_shared_test_input(store_id, **overrides)


def _kcp_live(**overrides: Any) -> Callable[[str], dict[str, Any]]:
    return lambda store_id: kcp_live_input(store_id, **overrides)


def _inicis(**overrides: Any) -> Callable[[str], dict[str, Any]]:
    return lambda store_id: inicis_live_input(store_id, **overrides)


def _nice(mid: str = "nicepay00m", **credentials: str) -> Callable[[str], dict[str, Any]]:
    values = {"merchantKey": "niceMerchantKeySecret0001", **credentials}
    return lambda store_id: {
        "storeId": store_id,
        "mode": "LIVE",
        "pgProvider": "NICE_V2",
        "moduleCode": "NICE_V2_PAYMENT",
        "name": "NICE live",
        "pgMerchantId": mid,
        "credentials": [{"key": k, "value": v} for k, v in values.items()],
    }


def _credential(key: str) -> list[str]:
    return ["input", "credentials", key]


BAD_INPUTS: dict[str, tuple[Callable[[str], dict[str, Any]], list[tuple[str, list[str]]]]] = {
    "provider the catalog does not offer": (
        _shared(pgProvider="KCP"),
        [("INVALID_INPUT", ["input", "pgProvider"])],
    ),
    "unknown module": (
        _shared(moduleCode="KCP_V9_PAYMENT"),
        [("PG_MODULE_MISMATCH", ["input", "moduleCode"])],
    ),
    "module of another provider": (
        _inicis(moduleCode="KCP_V2_PAYMENT"),
        [("PG_MODULE_MISMATCH", ["input", "moduleCode"])],
    ),
    "purpose the module lacks": (
        _shared(purpose="IDENTITY_VERIFICATION"),
        [("PURPOSE_NOT_SUPPORTED", ["input", "purpose"])],
    ),
    "missing required credential": (
        _inicis(credentials=[{"key": "iniApiKey", "value": INICIS_API_KEY}]),
        [("CREDENTIAL_MISSING", _credential("signKey"))],
    ),
    "no credentials on a live channel": (
        _inicis(credentials=[]),
        [
            ("CREDENTIAL_MISSING", _credential("signKey")),
            ("CREDENTIAL_MISSING", _credential("iniApiKey")),
        ],
    ),
    "required credential sent empty": (
        _inicis(credentials=inicis_credentials(signKey="")),
        [("CREDENTIAL_MISSING", _credential("signKey"))],
    ),
    "extra credential": (
        _inicis(credentials=inicis_credentials(merchantKey="abc")),
        [("CREDENTIAL_UNKNOWN", _credential("merchantKey"))],
    ),
    "credential given twice": (
        _inicis(credentials=[*inicis_credentials(), {"key": "signKey", "value": "other"}]),
        [("INVALID_INPUT", _credential("signKey"))],
    ),
    "secret of 20,000 characters": (
        _inicis(credentials=inicis_credentials(signKey="k" * 20_000)),
        [("INVALID_INPUT", _credential("signKey"))],
    ),
    "secret of 500,000 characters (under the 1 MiB body limit)": (
        _inicis(credentials=inicis_credentials(signKey="k" * 500_000)),
        [("INVALID_INPUT", _credential("signKey"))],
    ),
    "credential with control characters": (
        _inicis(credentials=inicis_credentials(iniApiKey="abc\x07def\x1bghi")),
        [("INVALID_INPUT", _credential("iniApiKey"))],
    ),
    "credential not matching its pattern": (
        _nice(cancelPassword="12345678901"),
        [("INVALID_INPUT", _credential("cancelPassword"))],
    ),
    "MID not matching the module's pattern": (
        _nice(mid="short"),
        [("INVALID_INPUT", ["input", "pgMerchantId"])],
    ),
    "shared test MID in LIVE mode": (
        _shared(mode="LIVE"),
        [("SHARED_TEST_MID_NOT_ALLOWED", ["input", "pgMerchantId"])],
    ),
    "shared test MID in LIVE mode with credentials": (
        _kcp_live(pgMerchantId="T0000"),
        [("SHARED_TEST_MID_NOT_ALLOWED", ["input", "pgMerchantId"])],
    ),
    "shared test MID of another provider's module": (
        _kcp_live(mode="TEST", pgMerchantId="INIpayTest"),
        [("SHARED_TEST_MID_NOT_ALLOWED", ["input", "pgMerchantId"])],
    ),
    "shared test MID of another module of the same provider": (
        _kcp_live(mode="TEST", pgMerchantId="AO6R1"),
        [("SHARED_TEST_MID_NOT_ALLOWED", ["input", "pgMerchantId"])],
    ),
    "MID with a control character": (
        _kcp_live(pgMerchantId="IP5\x07Q1"),
        [("INVALID_INPUT", ["input", "pgMerchantId"])],
    ),
    "MID with a line break": (
        _kcp_live(pgMerchantId="IP5\nQ1"),
        [("INVALID_INPUT", ["input", "pgMerchantId"])],
    ),
    "MID with a space": (
        _kcp_live(pgMerchantId="IP5 Q1"),
        [("INVALID_INPUT", ["input", "pgMerchantId"])],
    ),
    "MID too long": (
        _kcp_live(pgMerchantId="M" * 101),
        [("INVALID_INPUT", ["input", "pgMerchantId"])],
    ),
    "empty MID": (
        _kcp_live(pgMerchantId="   "),
        [("REQUIRED", ["input", "pgMerchantId"])],
    ),
    "empty name": (
        _shared(name="  "),
        [("REQUIRED", ["input", "name"])],
    ),
    "name too long": (
        _shared(name="n" * 101),
        [("INVALID_INPUT", ["input", "name"])],
    ),
    "name with control characters": (
        _shared(name="KCP\x1b[31m"),
        [("INVALID_INPUT", ["input", "name"])],
    ),
    "unknown store": (
        _shared(storeId="store-00000000-0000-4000-8000-000000000000"),
        [("NOT_FOUND", ["input", "storeId"])],
    ),
}


@pytest.mark.parametrize(("build", "expected"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
async def test_bad_input_is_a_user_error_and_stores_nothing(
    api: Api,
    owner: SignedUp,
    app: Starlette,
    build: Callable[[str], dict[str, Any]],
    expected: list[tuple[str, list[str]]],
) -> None:
    # given
    channel_input = build(owner.representative_store_id)

    # when
    payload = await try_create(api, owner.token, channel_input)

    # then
    assert payload["channel"] is None
    assert errors(payload) == expected
    assert all(error["message"] for error in payload["userErrors"])
    assert await count_rows(app, "channels") == 0
    assert await audit_events(api, owner.token, "channel.create") == []


async def test_an_error_message_never_echoes_the_secret(api: Api, owner: SignedUp) -> None:
    # given
    secret = "leakyCredential-" + "x" * 20_000

    # when
    payload = await try_create(
        api,
        owner.token,
        inicis_live_input(
            owner.representative_store_id, credentials=inicis_credentials(signKey=secret)
        ),
    )

    # then
    assert payload["channel"] is None
    assert ("INVALID_INPUT", ["input", "credentials", "signKey"]) in errors(payload)
    assert all("leakyCredential" not in e["message"] for e in payload["userErrors"])


async def test_several_problems_are_reported_together(api: Api, owner: SignedUp) -> None:
    # given: a purpose the module lacks, and a missing and an unknown credential
    channel_input = inicis_live_input(
        owner.representative_store_id,
        purpose="IDENTITY_VERIFICATION",
        credentials=[
            {"key": "signKey", "value": INICIS_SIGN_KEY},
            {"key": "apiKey", "value": "unknown-key-value"},
        ],
    )

    # when
    payload = await try_create(api, owner.token, channel_input)

    # then
    assert sorted(errors(payload)) == sorted(
        [
            ("PURPOSE_NOT_SUPPORTED", ["input", "purpose"]),
            ("CREDENTIAL_UNKNOWN", ["input", "credentials", "apiKey"]),
            ("CREDENTIAL_MISSING", ["input", "credentials", "iniApiKey"]),
        ]
    )


async def test_a_store_of_another_merchant_does_not_exist(
    api: Api, owner: SignedUp, app: Starlette
) -> None:
    # given
    other = await api.sign_up()

    # when
    payload = await try_create(
        api, owner.token, kcp_shared_test_input(other.representative_store_id)
    )

    # then
    assert errors(payload) == [("NOT_FOUND", ["input", "storeId"])]
    assert await count_rows(app, "channels") == 0


# --- names ----------------------------------------------------------------------------------


async def test_a_name_is_unique_per_store_and_mode(
    api: Api, owner: SignedUp, app: Starlette
) -> None:
    # given
    store_id = owner.representative_store_id
    await create_channel(api, owner.token, kcp_shared_test_input(store_id, "Main"))

    # when
    payload = await try_create(api, owner.token, inicis_live_input(store_id, " Main ", mode="TEST"))

    # then
    assert errors(payload) == [("CHANNEL_NAME_DUPLICATE", ["input", "name"])]
    assert payload["channel"] is None
    assert await count_rows(app, "channels") == 1


async def test_the_same_name_in_the_other_mode_or_another_store_is_fine(
    api: Api, owner: SignedUp
) -> None:
    # given
    store_id = owner.representative_store_id
    sub_store_id, _ = await create_store(api, owner.token, "Gangnam")
    other = await api.sign_up()
    await create_channel(api, owner.token, kcp_shared_test_input(store_id, "Main"))

    # when
    live = await try_create(api, owner.token, kcp_live_input(store_id, "Main"))
    sub = await try_create(api, owner.token, kcp_shared_test_input(sub_store_id, "Main"))
    foreign = await try_create(
        api, other.token, kcp_shared_test_input(other.representative_store_id, "Main")
    )

    # then
    assert live["userErrors"] == []
    assert sub["userErrors"] == []
    assert foreign["userErrors"] == []


async def test_two_concurrent_creations_with_one_name_make_one_channel(
    api: Api, owner: SignedUp, app: Starlette
) -> None:
    # given
    channel_input = kcp_shared_test_input(owner.representative_store_id, "Race")

    # when
    payloads = await asyncio.gather(
        try_create(api, owner.token, channel_input),
        try_create(api, owner.token, channel_input),
    )

    # then
    outcomes = sorted(errors(payload) for payload in payloads)
    assert outcomes == [[], [("CHANNEL_NAME_DUPLICATE", ["input", "name"])]]
    assert await count_rows(app, "channels") == 1


# --- permissions and audit ----------------------------------------------------------------


async def test_anonymous_callers_cannot_create_channels(
    api: Api, owner: SignedUp, app: Starlette
) -> None:
    # when
    result = await api.gql(
        CHANNEL_CREATE, {"input": kcp_shared_test_input(owner.representative_store_id)}
    )

    # then
    assert result.error_codes == ["UNAUTHENTICATED"]
    assert await count_rows(app, "channels") == 0


@pytest.mark.parametrize("role", ["READ_ONLY", "MANAGER"])
async def test_roles_without_channel_management_are_forbidden(
    api: Api, owner: SignedUp, app: Starlette, role: str
) -> None:
    # given
    member = await invite_and_join(api, owner.token, role)

    # when
    result = await api.gql(
        CHANNEL_CREATE,
        {"input": kcp_shared_test_input(owner.representative_store_id)},
        token=member.token,
    )

    # then
    assert result.error_codes == ["FORBIDDEN"]
    assert await count_rows(app, "channels") == 0


async def test_a_developer_may_create_channels(api: Api, owner: SignedUp) -> None:
    # given
    developer = await invite_and_join(api, owner.token, "DEVELOPER")

    # when
    payload = await try_create(
        api, developer.token, kcp_shared_test_input(owner.representative_store_id)
    )

    # then
    assert payload["userErrors"] == []


async def test_a_store_manager_creates_channels_in_their_own_store_only(
    api: Api, owner: SignedUp, app: Starlette
) -> None:
    # given
    sub_store_id, _ = await create_store(api, owner.token, "Seocho")
    manager = await invite_and_join(api, owner.token, "STORE_MANAGER", sub_store_id)

    # when
    own = await try_create(api, manager.token, kcp_shared_test_input(sub_store_id))
    other = await try_create(
        api, manager.token, kcp_shared_test_input(owner.representative_store_id)
    )

    # then
    assert own["userErrors"] == []
    assert own["channel"]["store"] == {"storeId": sub_store_id}
    assert errors(other) == [("NOT_FOUND", ["input", "storeId"])]
    assert await count_rows(app, "channels") == 1


async def test_creation_is_audited_without_secret_values(api: Api, owner: SignedUp) -> None:
    # given
    store_id = owner.representative_store_id

    # when
    channel = await create_channel(api, owner.token, inicis_live_input(store_id, "Audited"))

    # then
    events = await audit_events(api, owner.token, "channel.create")
    assert len(events) == 1
    event = events[0]
    assert event["targetId"] == channel["channelKey"]
    assert event["storeId"] == store_id
    assert event["actor"] == owner.email
    assert "Audited" in event["summary"]
    for secret in (INICIS_SIGN_KEY, INICIS_API_KEY, INICIS_API_IV):
        assert secret not in str(event)
