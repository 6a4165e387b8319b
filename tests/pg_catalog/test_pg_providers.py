"""The public PG catalog: the shipped data file, its validation, and the pgProviders query."""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from typing import Any

import pytest

from gql_api.pg_catalog.catalog import load_catalog, parse_catalog
from tests.support import Api

PG_PROVIDERS = """
query Providers($moduleVersion: ModuleVersion, $purpose: ChannelPurpose) {
  pgProviders(moduleVersion: $moduleVersion, purpose: $purpose) {
    provider
    displayName
    modules {
      code name versions purposes merchantIdLabel merchantIdPattern merchantIdHelp
      credentialFields { key label required secret pattern help }
      sharedTestMerchantIds { merchantId label }
    }
  }
}
"""

PG_PROVIDER_ENUM = """
{ __type(name: "PgProvider") { enumValues { name } } }
"""

HANGUL = re.compile(r"[가-힣]")


def shipped_catalog() -> dict[str, Any]:
    raw = resources.files("gql_api.pg_catalog").joinpath("catalog.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(raw)
    return data


async def providers(
    api: Api, *, language: str | None = None, **arguments: Any
) -> list[dict[str, Any]]:
    """The catalog as a client asking for `language` (Accept-Language) reads it."""
    headers = {"Accept-Language": language} if language else {}
    response = await api.client.post(
        "/graphql", json={"query": PG_PROVIDERS, "variables": arguments}, headers=headers
    )
    body = response.json()
    assert response.status_code == 200 and body.get("errors") is None, body
    data: list[dict[str, Any]] = body["data"]["pgProviders"]
    return data


def shown(raw: dict[str, Any], key: str, language: str) -> str | None:
    """What the catalog file says `key` reads in `language`: its English (`keyEn`) for an
    English reader where there is one, the console's Korean otherwise."""
    if language == "en" and raw.get(f"{key}En"):
        english: str = raw[f"{key}En"]
        return english
    korean: str | None = raw.get(key)
    return korean


def module_codes(listing: list[dict[str, Any]]) -> set[str]:
    return {module["code"] for info in listing for module in info["modules"]}


# --- the query -------------------------------------------------------------------------------


async def test_pg_providers_is_public_and_lists_at_least_20_providers(api: Api) -> None:
    # when
    result = await api.gql(PG_PROVIDERS)

    # then
    listing = result.data["pgProviders"]
    assert len(listing) >= 20
    assert len({info["provider"] for info in listing}) == len(listing)


async def test_a_signed_in_caller_gets_the_same_catalog(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    signed_in = await api.gql(PG_PROVIDERS, token=owner.token)

    # then
    assert signed_in.data["pgProviders"] == await providers(api)


async def test_every_provider_describes_its_modules_fields_and_test_mids(api: Api) -> None:
    # when
    listing = await providers(api)

    # then
    for info in listing:
        assert info["displayName"].strip(), info
        assert info["modules"], info
        for module in info["modules"]:
            where = f"{info['provider']} {module['code']}"
            assert module["name"].strip(), where
            assert module["merchantIdLabel"].strip(), where
            assert module["versions"] and set(module["versions"]) <= {"V1", "V2"}, where
            assert module["purposes"], where
            assert set(module["purposes"]) <= {"PAYMENT", "IDENTITY_VERIFICATION"}, where
            keys = [field["key"] for field in module["credentialFields"]]
            assert len(keys) == len(set(keys)), where
            for field in module["credentialFields"]:
                assert re.fullmatch(r"[a-z][A-Za-z0-9]*", field["key"]), where
                assert field["label"].strip(), where
                assert isinstance(field["required"], bool), where
                assert isinstance(field["secret"], bool), where
                if field["pattern"] is not None:
                    re.compile(field["pattern"])
            for shared in module["sharedTestMerchantIds"]:
                assert shared["merchantId"].strip() and shared["label"].strip(), where
            if module["merchantIdPattern"] is not None:
                re.compile(module["merchantIdPattern"])


@pytest.mark.parametrize("language", ["ko", "en"])
async def test_the_query_serves_exactly_the_shipped_data_file(api: Api, language: str) -> None:
    # given
    shipped = shipped_catalog()

    # when
    listing = await providers(api, language=language)

    # then: every text in the language asked for, Korean where the file has no English
    assert [info["provider"] for info in listing] == [
        info["provider"] for info in shipped["providers"]
    ]
    for served, stored in zip(listing, shipped["providers"], strict=True):
        assert served["displayName"] == shown(stored, "displayName", language)
        assert [m["code"] for m in served["modules"]] == [m["code"] for m in stored["modules"]]
        for module, raw in zip(served["modules"], stored["modules"], strict=True):
            assert module["name"] == shown(raw, "name", language)
            assert module["merchantIdLabel"] == shown(raw, "merchantIdLabel", language)
            assert module["merchantIdHelp"] == shown(raw, "merchantIdHelp", language)
            assert [(f["label"], f["help"]) for f in module["credentialFields"]] == [
                (shown(f, "label", language), shown(f, "help", language))
                for f in raw["credentialFields"]
            ]
            assert [m["label"] for m in module["sharedTestMerchantIds"]] == [
                shown(m, "label", language) for m in raw.get("sharedTestMerchantIds", [])
            ]
            assert module["versions"] == raw["versions"]
            assert module["purposes"] == raw["purposes"]
            assert [f["key"] for f in module["credentialFields"]] == [
                f["key"] for f in raw["credentialFields"]
            ]
            assert [(f["required"], f["secret"]) for f in module["credentialFields"]] == [
                (f["required"], f["secret"]) for f in raw["credentialFields"]
            ]
            assert [m["merchantId"] for m in module["sharedTestMerchantIds"]] == [
                m["merchantId"] for m in raw.get("sharedTestMerchantIds", [])
            ]


async def test_the_pg_provider_enum_covers_every_catalog_provider(api: Api) -> None:
    # given
    listing = await providers(api)

    # when
    result = await api.gql(PG_PROVIDER_ENUM)

    # then
    enum_values = {value["name"] for value in result.data["__type"]["enumValues"]}
    assert {info["provider"] for info in listing} <= enum_values
    # PortOne's full enum is kept, so values the catalog does not offer exist too
    assert "KCP" in enum_values
    assert "KCP" not in {info["provider"] for info in listing}


async def test_kcp_and_inicis_entries_carry_the_console_labels_and_shared_mids(api: Api) -> None:
    # when
    listing = {info["provider"]: info for info in await providers(api, language="ko")}

    # then
    kcp = listing["KCP_V2"]
    assert kcp["displayName"] == "NHN KCP"
    kcp_payment = next(m for m in kcp["modules"] if m["code"] == "KCP_V2_PAYMENT")
    assert kcp_payment["versions"] == ["V2"]
    assert kcp_payment["purposes"] == ["PAYMENT"]
    assert kcp_payment["sharedTestMerchantIds"][0]["merchantId"] == "T0000"
    assert HANGUL.search(kcp_payment["merchantIdLabel"])
    assert all(HANGUL.search(f["label"]) for f in kcp_payment["credentialFields"])
    inicis = listing["INICIS_V2"]
    assert inicis["displayName"] == "KG이니시스"
    module = next(m for m in inicis["modules"] if m["code"] == "INICIS_V2_PAYMENT")
    fields = {f["key"]: f for f in module["credentialFields"]}
    assert fields["signKey"]["required"] is True
    assert fields["signKey"]["secret"] is True
    assert "INIpayTest" in [m["merchantId"] for m in module["sharedTestMerchantIds"]]


async def test_every_catalog_label_set_has_korean_text(api: Api) -> None:
    # when
    listing = await providers(api, language="ko")

    # then: every module names its MID or one of its fields in Korean, as the console does
    for info in listing:
        for module in info["modules"]:
            texts = [
                module["name"],
                module["merchantIdLabel"],
                *(f["label"] for f in module["credentialFields"]),
                *(f["help"] or "" for f in module["credentialFields"]),
            ]
            assert any(HANGUL.search(t) for t in texts), (info["provider"], module["code"])


async def test_the_catalog_answers_in_korean_or_english_as_the_request_asks(api: Api) -> None:
    # when
    korean = {info["provider"]: info for info in await providers(api, language="ko")}
    english = {info["provider"]: info for info in await providers(api, language="en-US,en")}

    # then: the same entry, its labels in the language asked for
    kcp_ko = next(m for m in korean["KCP_V2"]["modules"] if m["code"] == "KCP_V2_PAYMENT")
    kcp_en = next(m for m in english["KCP_V2"]["modules"] if m["code"] == "KCP_V2_PAYMENT")
    assert (kcp_ko["name"], kcp_en["name"]) == (
        "[결제창] 일반/수기결제 [API] 수기/정기결제",
        "[Payment window] Standard/manual [API] Manual/recurring",
    )
    assert (kcp_ko["merchantIdLabel"], kcp_en["merchantIdLabel"]) == (
        "PG상점아이디 (사이트코드)",
        "PG merchant ID (site code)",
    )
    assert (kcp_ko["sharedTestMerchantIds"][0], kcp_en["sharedTestMerchantIds"][0]) == (
        {"merchantId": "T0000", "label": "결제창 일반"},
        {"merchantId": "T0000", "label": "Payment window, standard"},
    )
    toss_en = english["TOSSPAYMENTS"]
    assert toss_en["displayName"] == "Toss Payments"
    assert [f["label"] for f in toss_en["modules"][0]["credentialFields"]] == [
        "Client key",
        "Secret key",
    ]
    assert toss_en["modules"][0]["credentialFields"][0]["help"] == (
        "Found in the Toss Payments Developer Center > My development information > API keys."
    )
    assert (korean["INICIS_V2"]["displayName"], english["INICIS_V2"]["displayName"]) == (
        "KG이니시스",
        "KG Inicis",
    )


async def test_an_english_reader_sees_no_korean_name_or_label(api: Api) -> None:
    # when
    listing = await providers(api, language="en")

    # then: every name and label has its English (help texts may still be Korean)
    for info in listing:
        texts = [info["displayName"]]
        for module in info["modules"]:
            texts += [module["name"], module["merchantIdLabel"]]
            texts += [f["label"] for f in module["credentialFields"]]
            texts += [m["label"] for m in module["sharedTestMerchantIds"]]
        korean = [text for text in texts if HANGUL.search(text)]
        assert not korean, (info["provider"], korean)


async def test_module_version_filter_keeps_only_modules_of_that_version(api: Api) -> None:
    # given
    everything = await providers(api)

    # when
    v1 = await providers(api, moduleVersion="V1")
    v2 = await providers(api, moduleVersion="V2")

    # then
    expected_v1 = {m["code"] for i in everything for m in i["modules"] if "V1" in m["versions"]}
    expected_v2 = {m["code"] for i in everything for m in i["modules"] if "V2" in m["versions"]}
    assert module_codes(v1) == expected_v1
    assert module_codes(v2) == expected_v2
    assert "KCP_V2_PAYMENT" not in module_codes(v1)
    assert "DANAL_MOBILE_PAYMENT" not in module_codes(v2)
    # providers left without a module are left out
    assert all(info["modules"] for info in v1)
    assert "KPN" not in {info["provider"] for info in v1}


async def test_purpose_filter_keeps_only_modules_with_that_purpose(api: Api) -> None:
    # when
    listing = await providers(api, purpose="IDENTITY_VERIFICATION")

    # then
    assert module_codes(listing) == {
        "KCP_V2_IDENTITY_VERIFICATION",
        "INICIS_UNIFIED_IDENTITY_VERIFICATION",
        "DANAL_IDENTITY_VERIFICATION",
    }
    assert all(
        "IDENTITY_VERIFICATION" in module["purposes"]
        for info in listing
        for module in info["modules"]
    )


async def test_version_and_purpose_filters_combine(api: Api) -> None:
    # when
    listing = await providers(api, moduleVersion="V1", purpose="PAYMENT")

    # then
    for info in listing:
        for module in info["modules"]:
            assert "V1" in module["versions"] and "PAYMENT" in module["purposes"]
    assert "DANAL_MOBILE_PAYMENT" in module_codes(listing)
    assert "DANAL_IDENTITY_VERIFICATION" not in module_codes(listing)
    assert "KCP_V2_PAYMENT" not in module_codes(listing)


async def test_an_unknown_filter_value_is_a_graphql_validation_error(api: Api) -> None:
    # when
    result = await api.gql(
        "query { pgProviders(moduleVersion: V3) { provider } }",
    )

    # then
    assert result.body.get("data") is None
    assert len(result.body["errors"]) == 1


# --- the data file and its validation ------------------------------------------------------


def test_the_shipped_catalog_loads_and_validates() -> None:
    # when
    catalog = load_catalog()

    # then
    assert len(catalog.providers) >= 20
    assert catalog == parse_catalog(json.dumps(shipped_catalog()))


def _broken(change: Any) -> str:
    data = copy.deepcopy(shipped_catalog())
    change(data)
    return json.dumps(data)


def _first_module(data: dict[str, Any]) -> dict[str, Any]:
    module: dict[str, Any] = data["providers"][0]["modules"][0]
    return module


BROKEN_CATALOGS = {
    "duplicate provider": lambda d: d["providers"].append(copy.deepcopy(d["providers"][0])),
    "unknown provider": lambda d: d["providers"][0].update(provider="NOT_A_PG"),
    "no modules": lambda d: d["providers"][0].update(modules=[]),
    "unknown version": lambda d: _first_module(d).update(versions=["V3"]),
    "no versions": lambda d: _first_module(d).update(versions=[]),
    "unknown purpose": lambda d: _first_module(d).update(purposes=["REFUND"]),
    "unanchored pattern": lambda d: _first_module(d)["credentialFields"][0].update(
        pattern="[0-9]+"
    ),
    "invalid pattern": lambda d: _first_module(d)["credentialFields"][0].update(pattern="^[0-9$"),
    "duplicate credential key": lambda d: _first_module(d)["credentialFields"].append(
        copy.deepcopy(_first_module(d)["credentialFields"][0])
    ),
    "missing label": lambda d: _first_module(d)["credentialFields"][0].pop("label"),
    "unknown attribute": lambda d: _first_module(d).update(colour="blue"),
    "duplicate module code": lambda d: d["providers"][1]["modules"].append(
        copy.deepcopy(_first_module(d))
    ),
    "duplicate shared test MID": lambda d: _first_module(d)["sharedTestMerchantIds"].append(
        copy.deepcopy(_first_module(d)["sharedTestMerchantIds"][0])
    ),
    "Korean text as an English label": lambda d: _first_module(d)["credentialFields"][0].update(
        labelEn="인증서"
    ),
    "Korean text as an English module name": lambda d: _first_module(d).update(nameEn="일반결제"),
    "empty English label": lambda d: d["providers"][0].update(displayNameEn=""),
    "English help without the Korean help": lambda d: _first_module(d)["credentialFields"][
        0
    ].update(help=None, helpEn="Where to find it."),
    "unknown English key": lambda d: _first_module(d).update(codeEn="KCP"),
}


@pytest.mark.parametrize("change", BROKEN_CATALOGS.values(), ids=BROKEN_CATALOGS.keys())
def test_an_invalid_catalog_is_refused(change: Any) -> None:
    # given
    raw = _broken(change)

    # when / then: pydantic's ValidationError is a ValueError; a bad regex may surface as re.error
    with pytest.raises((ValueError, re.error)):
        parse_catalog(raw)
