"""Done when: a dashboard builds the add-channel form for any catalog module from pgProviders
alone, and over HTTP a merchant adds, lists, filters, updates and deletes channels."""

from __future__ import annotations

import re
from typing import Any

from tests.support import Api, SignedUp

PG_PROVIDERS = """
{
  pgProviders {
    provider displayName
    modules {
      code name versions purposes merchantIdLabel merchantIdPattern
      credentialFields { key label required secret pattern }
      sharedTestMerchantIds { merchantId label }
    }
  }
}
"""

CHANNEL_CREATE = """
mutation Add($input: ChannelCreateInput!) {
  channelCreate(input: $input) {
    channel {
      id channelKey name mode type pgProvider moduleCode purpose pgMerchantId taxType version
      credentials { key secret value maskedValue }
    }
    userErrors { field code message }
  }
}
"""

CHANNELS = """
query Channels($storeId: String!, $filter: ChannelFilter) {
  store(storeId: $storeId) {
    channels(first: 100, filter: $filter) {
      nodes { id name type pgProvider credentials { key secret value maskedValue } }
      pageInfo { hasNextPage }
    }
  }
}
"""

CHANNEL_UPDATE = """
mutation Change($input: ChannelUpdateInput!) {
  channelUpdate(input: $input) {
    channel { id name taxType version credentials { key secret value maskedValue } }
    userErrors { field code message }
  }
}
"""

CHANNEL_DELETE = """
mutation Remove($id: ID!) {
  channelDelete(input: { id: $id }) { deletedChannelId userErrors { field code } }
}
"""

CHANNEL_KEY = re.compile(
    r"^channel-key-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)
FALLBACK_MID = "TESTMID01"
LONG_VALUE = "dashboardValue0123456789abcdefABCDEF"


def sample(pattern: str | None, fallback: str) -> str:
    """A value for a field the way a dashboard would: the fallback, or one fitting `pattern`."""
    if pattern is None or re.fullmatch(pattern, fallback):
        return fallback
    for alphabet in ("Aa1", "A1", "a1", "A", "a", "1", "x-"):
        for length in (*range(16, 65), *range(15, 0, -1)):
            candidate = (alphabet * 64)[:length]
            if re.fullmatch(pattern, candidate):
                return candidate
    raise AssertionError(f"no sample value for {pattern!r}")


def own_mid_input(
    store_id: str, provider: str, module: dict[str, Any], purpose: str, mode: str
) -> dict[str, Any]:
    """Own MID plus a value for every required credential, from the query result only."""
    return {
        "storeId": store_id,
        "mode": mode,
        "pgProvider": provider,
        "moduleCode": module["code"],
        "purpose": purpose,
        "name": f"{mode} {module['code']} {purpose}",
        "pgMerchantId": sample(module["merchantIdPattern"], FALLBACK_MID),
        "credentials": [
            {"key": field["key"], "value": sample(field["pattern"], LONG_VALUE)}
            for field in module["credentialFields"]
            if field["required"]
        ],
    }


async def catalog(api: Api) -> list[dict[str, Any]]:
    result = await api.gql(PG_PROVIDERS)
    providers: list[dict[str, Any]] = result.data["pgProviders"]
    return providers


async def add(api: Api, token: str, channel_input: dict[str, Any]) -> dict[str, Any]:
    result = await api.gql(CHANNEL_CREATE, {"input": channel_input}, token=token)
    payload: dict[str, Any] = result.data["channelCreate"]
    return payload


async def test_a_test_channel_can_be_added_for_every_catalog_module_from_pg_providers_alone(
    api: Api, owner: SignedUp
) -> None:
    # given
    providers = await catalog(api)

    # when: the shared test MID if the module has one, else an own MID with its credentials
    outcomes = []
    for info in providers:
        for module in info["modules"]:
            for purpose in module["purposes"]:
                shared = module["sharedTestMerchantIds"]
                channel_input = own_mid_input(
                    owner.representative_store_id, info["provider"], module, purpose, "TEST"
                )
                if shared:
                    channel_input["pgMerchantId"] = shared[0]["merchantId"]
                    channel_input["credentials"] = []
                payload = await add(api, owner.token, channel_input)
                outcomes.append((module["code"], bool(shared), payload))

    # then
    assert len(outcomes) >= 20
    for code, shared, payload in outcomes:
        assert payload["userErrors"] == [], (code, payload["userErrors"])
        assert payload["channel"]["type"] == ("SHARED_TEST" if shared else "MERCHANT_TEST"), code


async def test_every_catalog_module_accepts_an_own_mid_with_its_required_credentials(
    api: Api, owner: SignedUp
) -> None:
    # given
    providers = await catalog(api)

    # when
    outcomes = []
    for info in providers:
        for module in info["modules"]:
            for purpose in module["purposes"]:
                for mode in ("TEST", "LIVE"):
                    channel_input = own_mid_input(
                        owner.representative_store_id, info["provider"], module, purpose, mode
                    )
                    outcomes.append((module, mode, await add(api, owner.token, channel_input)))

    # then
    for module, mode, payload in outcomes:
        assert payload["userErrors"] == [], (module["code"], mode, payload["userErrors"])
        channel = payload["channel"]
        assert channel["type"] == ("LIVE" if mode == "LIVE" else "MERCHANT_TEST")
        secret_keys = {f["key"] for f in module["credentialFields"] if f["secret"]}
        for credential in channel["credentials"]:
            if credential["key"] in secret_keys:
                assert credential["value"] is None
                assert credential["maskedValue"].startswith("••••")
            else:
                assert credential["value"] is not None


async def test_over_http_a_merchant_manages_kcp_and_inicis_channels(api: Api) -> None:
    # given
    owner = await api.sign_up(merchant_name="서울커피", email="owner@seoul-coffee.example")
    store_id = owner.representative_store_id
    providers = {info["provider"]: info for info in await catalog(api)}
    kcp_module = providers["KCP_V2"]["modules"][0]
    assert kcp_module["sharedTestMerchantIds"][0]["merchantId"] == "T0000"

    # when: a KCP V2 test channel on the shared MID T0000
    kcp = await add(
        api,
        owner.token,
        {
            "storeId": store_id,
            "mode": "TEST",
            "pgProvider": "KCP_V2",
            "moduleCode": kcp_module["code"],
            "name": "KCP 테스트",
            "pgMerchantId": "T0000",
        },
    )
    # and: an INICIS V2 live channel with its own credentials
    inicis = await add(
        api,
        owner.token,
        {
            "storeId": store_id,
            "mode": "LIVE",
            "pgProvider": "INICIS_V2",
            "moduleCode": "INICIS_V2_PAYMENT",
            "name": "이니시스 실연동",
            "pgMerchantId": "MOIseoulcf",
            "credentials": [
                {"key": "signKey", "value": "SU5JTElURV9UUklQTEVERVNfS0VZU1RS"},
                {"key": "iniApiKey", "value": "ItEQKi3rY7uvDS8l"},
            ],
            "taxType": "TAXABLE",
        },
    )

    # then
    assert kcp["userErrors"] == [] and inicis["userErrors"] == []
    assert kcp["channel"]["type"] == "SHARED_TEST"
    assert inicis["channel"]["type"] == "LIVE"
    assert CHANNEL_KEY.match(kcp["channel"]["channelKey"])
    assert CHANNEL_KEY.match(inicis["channel"]["channelKey"])
    assert sorted(inicis["channel"]["credentials"], key=lambda c: c["key"]) == [
        {"key": "iniApiKey", "secret": True, "value": None, "maskedValue": "••••DS8l"},
        {"key": "signKey", "secret": True, "value": None, "maskedValue": "••••U1RS"},
    ]

    # when: list and filter
    listed = await api.gql(CHANNELS, {"storeId": store_id}, token=owner.token)
    live = await api.gql(
        CHANNELS, {"storeId": store_id, "filter": {"mode": "LIVE"}}, token=owner.token
    )
    kcp_only = await api.gql(
        CHANNELS, {"storeId": store_id, "filter": {"pgProvider": "KCP_V2"}}, token=owner.token
    )
    searched = await api.gql(
        CHANNELS, {"storeId": store_id, "filter": {"search": "이니시스"}}, token=owner.token
    )

    # then
    def names(result: Any) -> list[str]:
        return [n["name"] for n in result.data["store"]["channels"]["nodes"]]

    assert names(listed) == ["KCP 테스트", "이니시스 실연동"]
    assert names(live) == ["이니시스 실연동"]
    assert names(kcp_only) == ["KCP 테스트"]
    assert names(searched) == ["이니시스 실연동"]
    assert "ItEQKi3rY7uvDS8l" not in str(listed.body)

    # when: update the live channel without resending its secrets
    updated = await api.gql(
        CHANNEL_UPDATE,
        {
            "input": {
                "id": inicis["channel"]["id"],
                "version": 1,
                "name": "이니시스 메인",
                "taxType": "TAX_FREE",
            }
        },
        token=owner.token,
    )

    # then
    change = updated.data["channelUpdate"]
    assert change["userErrors"] == []
    assert change["channel"]["name"] == "이니시스 메인"
    assert change["channel"]["taxType"] == "TAX_FREE"
    assert change["channel"]["version"] == 2
    assert change["channel"]["credentials"] == inicis["channel"]["credentials"]

    # when: delete the test channel
    deleted = await api.gql(CHANNEL_DELETE, {"id": kcp["channel"]["id"]}, token=owner.token)

    # then
    assert deleted.data["channelDelete"] == {
        "deletedChannelId": kcp["channel"]["id"],
        "userErrors": [],
    }
    remaining = await api.gql(CHANNELS, {"storeId": store_id}, token=owner.token)
    assert names(remaining) == ["이니시스 메인"]
