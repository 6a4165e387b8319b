"""An API secret's network allowlist (apiSecretNetworkRulesUpdate): the rules it accepts, and
uses of the secret and of its tokens from outside them refused with NETWORK_NOT_ALLOWED, through
the real HTTP app with the client's address set on the connection (or by a trusted proxy)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from starlette.applications import Starlette

from db import sqlite_reads
from db.types import utcnow
from gql_api.app import create_app
from tests.api_secrets.helpers import (
    LOGIN,
    REFRESH,
    STORE_SECRETS,
    WHO_AM_I,
    assert_refused,
    issue,
    portone,
    second_instance,
    set_secret_columns,
)
from tests.conftest import make_settings
from tests.support import Api, GraphQLResponse, create_store

UPDATE = """
mutation Rules($input: ApiSecretNetworkRulesUpdateInput!) {
  apiSecretNetworkRulesUpdate(input: $input) {
    apiSecret { id networkRules { cidr memo } }
    userErrors { field code message }
  }
}
"""

NODE_RULES = """
query Node($id: ID!) { node(id: $id) { ... on ApiSecret { networkRules { cidr memo } } } }
"""

EVENTS = """
query Events($action: String!) {
  merchant { auditEvents(action: $action) { nodes { action actor targetId summary } } }
}
"""

WHITELIST = """
query Whitelist($storeId: String!) {
  store(storeId: $storeId) { additionalSettings { ipWhitelist { supported message contact } } }
}
"""

# The default in-process client is 127.0.0.1.
HOME = "127.0.0.1"
ELSEWHERE = "127.0.0.2"
HOME_V6 = "::1"


@asynccontextmanager
async def client_at(app: Starlette, address: str) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield Api(http)


async def set_rules(api: Api, token: str, secret_id: str, *rules: str | dict[str, Any]) -> Any:
    given = [{"cidr": rule} if isinstance(rule, str) else rule for rule in rules]
    result = await api.gql(UPDATE, {"input": {"id": secret_id, "rules": given}}, token=token)
    return result.data["apiSecretNetworkRulesUpdate"]


async def rules_saved(api: Api, token: str, secret_id: str, *rules: str) -> None:
    payload = await set_rules(api, token, secret_id, *rules)
    assert payload["userErrors"] == [], payload


def refusals(app: Starlette, credential: str) -> int:
    registry = app.state.app_state.metrics.registry
    labels = {"reason": "NETWORK_NOT_ALLOWED", "credential": credential}
    return int(registry.get_sample_value("api_secret_refusals_total", labels) or 0)


async def events(api: Api, token: str, action: str) -> list[dict[str, str]]:
    result = await api.gql(EVENTS, {"action": action}, token=token)
    found: list[dict[str, str]] = result.data["merchant"]["auditEvents"]["nodes"]
    return found


def assert_not_allowed(result: GraphQLResponse, *secrets: str) -> None:
    assert_refused(result, "NETWORK_NOT_ALLOWED", *secrets)
    assert "WWW-Authenticate" in result.headers


def assert_allowed(result: GraphQLResponse) -> None:
    assert result.status == 200, result.body
    assert "errors" not in result.body, result.body
    assert result.data["viewer"]["merchant"]["name"]


# --- the rules ------------------------------------------------------------------------------


async def test_rules_are_saved_normalized_and_shown_wherever_the_secret_is(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store = owner.representative_store_id
    issued = await issue(api, owner.token, store)
    assert issued.node.get("networkRules", []) == []

    # when
    payload = await set_rules(
        api,
        owner.token,
        issued.id,
        {"cidr": " 203.0.113.0/24 ", "memo": "  본사 사무실  "},
        {"cidr": "2001:DB8:0:0::/32", "memo": ""},
        {"cidr": "0.0.0.0/0", "memo": None},
    )

    # then
    assert payload["userErrors"] == []
    expected = [
        {"cidr": "203.0.113.0/24", "memo": "본사 사무실"},
        {"cidr": "2001:db8::/32", "memo": None},
        {"cidr": "0.0.0.0/0", "memo": None},
    ]
    assert payload["apiSecret"]["networkRules"] == expected
    node = await api.gql(NODE_RULES, {"id": issued.id}, token=owner.token)
    assert node.data["node"]["networkRules"] == expected
    listed = await api.gql(
        STORE_SECRETS.replace("isExpired", "isExpired networkRules { cidr memo }"),
        {"storeId": store},
        token=owner.token,
    )
    assert [n["networkRules"] for n in listed.data["store"]["apiSecrets"]["nodes"]] == [expected]
    # and: the change is audited with the rules
    (event,) = await events(api, owner.token, "api_secret.network_rules_update")
    assert event["targetId"] == issued.id
    assert "203.0.113.0/24" in event["summary"] and "3 network rule" in event["summary"]


async def test_every_invalid_rule_is_reported_with_its_path_and_nothing_changes(
    api: Api,
) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    await rules_saved(api, owner.token, issued.id, "198.51.100.0/24")

    # when
    payload = await set_rules(
        api,
        owner.token,
        issued.id,
        "203.0.113.7",  # 0: a bare IPv4 address
        "2001:db8::1",  # 1: a bare IPv6 address
        "10.0.0.1/8",  # 2: host bits set
        {"cidr": "203.0.113.0/24", "memo": "ok"},  # 3: fine
        "203.0.113.0/24",  # 4: repeats rule 4 (index 3)
        {"cidr": "not-a-network/24", "memo": "x" * 101},  # 5: both wrong
        "::ffff:10.0.0.0/104",  # 6: IPv4-mapped
        "10.0.0.0/33",  # 7: prefix too long
        "",  # 8: empty
    )

    # then
    assert payload["apiSecret"] is None
    errors = {tuple(e["field"]): e for e in payload["userErrors"]}
    rules = ("input", "rules")
    assert sorted(errors) == sorted(
        [
            (*rules, "0", "cidr"),
            (*rules, "1", "cidr"),
            (*rules, "2", "cidr"),
            (*rules, "4", "cidr"),
            (*rules, "5", "cidr"),
            (*rules, "5", "memo"),
            (*rules, "6", "cidr"),
            (*rules, "7", "cidr"),
            (*rules, "8", "cidr"),
        ]
    )
    assert {e["code"] for e in payload["userErrors"]} == {"NETWORK_RULE_INVALID"}
    assert "203.0.113.7/32" in errors[(*rules, "0", "cidr")]["message"]
    assert "2001:db8::1/128" in errors[(*rules, "1", "cidr")]["message"]
    host_bits = errors[(*rules, "2", "cidr")]["message"]
    assert "10.0.0.0/8" in host_bits and "10.0.0.1/32" in host_bits
    assert "rule 4" in errors[(*rules, "4", "cidr")]["message"]
    assert "10.0.0.0/8" in errors[(*rules, "6", "cidr")]["message"]
    # and: the rules stay as they were
    node = await api.gql(NODE_RULES, {"id": issued.id}, token=owner.token)
    assert node.data["node"]["networkRules"] == [{"cidr": "198.51.100.0/24", "memo": None}]


async def test_at_most_fifty_rules(api: Api) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    fifty = [f"10.0.{n}.0/24" for n in range(50)]

    # when
    too_many = await set_rules(api, owner.token, issued.id, *fifty, "10.0.50.0/24")
    enough = await set_rules(api, owner.token, issued.id, *fifty)

    # then
    assert [(e["code"], e["field"]) for e in too_many["userErrors"]] == [
        ("LIMIT_EXCEEDED", ["input", "rules"])
    ]
    assert enough["userErrors"] == []
    assert len(enough["apiSecret"]["networkRules"]) == 50


async def test_another_merchants_secret_is_not_found(api: Api) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    stranger = await api.sign_up()

    # when
    payload = await set_rules(api, stranger.token, issued.id, "203.0.113.0/24")
    deleted = await issue(api, owner.token, owner.representative_store_id, name="Old")
    await api.gql(
        "mutation($id: ID!) { apiSecretDelete(input: {id: $id}) { userErrors { code } } }",
        {"id": deleted.id},
        token=owner.token,
    )
    on_deleted = await set_rules(api, owner.token, deleted.id, "203.0.113.0/24")

    # then
    for refused in (payload, on_deleted):
        assert refused["apiSecret"] is None
        assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
            ("NOT_FOUND", ["input", "id"])
        ]
    node = await api.gql(NODE_RULES, {"id": issued.id}, token=owner.token)
    assert node.data["node"]["networkRules"] == []
    # and: the secret still works from anywhere
    assert_allowed(await api.gql(WHO_AM_I, authorization=portone(issued.secret)))


# --- enforcement ----------------------------------------------------------------------------


async def test_ipv4_clients_outside_the_rules_are_refused(api: Api, app: Starlette) -> None:
    # given: a rule for 127.0.0.1 only
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    await rules_saved(api, owner.token, issued.id, "127.0.0.1/32")

    # when
    async with client_at(app, HOME) as home, client_at(app, ELSEWHERE) as elsewhere:
        inside = await home.gql(WHO_AM_I, authorization=portone(issued.secret))
        outside = await elsewhere.gql(WHO_AM_I, authorization=portone(issued.secret))
    async with client_at(app, "::ffff:127.0.0.1") as mapped:
        dual_stack = await mapped.gql(WHO_AM_I, authorization=portone(issued.secret))

    # then
    assert_allowed(inside)
    assert_allowed(dual_stack)  # an IPv4-mapped IPv6 peer is its IPv4 address
    assert_not_allowed(outside, issued.secret)
    assert ELSEWHERE in outside.body["errors"][0]["message"]
    assert refusals(app, "api_secret") == 1


async def test_ipv6_and_ipv4_loopback_are_told_apart(api: Api, app: Starlette) -> None:
    # given
    owner = await api.sign_up()
    v4 = await issue(api, owner.token, owner.representative_store_id, name="IPv4 only")
    v6 = await issue(api, owner.token, owner.representative_store_id, name="IPv6 only")
    await rules_saved(api, owner.token, v4.id, "127.0.0.0/8")
    await rules_saved(api, owner.token, v6.id, "::1/128")

    # when
    async with client_at(app, HOME) as over_v4, client_at(app, HOME_V6) as over_v6:
        results = {
            (secret.id, name): await client.gql(WHO_AM_I, authorization=portone(secret.secret))
            for secret in (v4, v6)
            for name, client in (("v4", over_v4), ("v6", over_v6))
        }

    # then
    assert_allowed(results[(v4.id, "v4")])
    assert_allowed(results[(v6.id, "v6")])
    assert_not_allowed(results[(v4.id, "v6")], v4.secret)
    assert_not_allowed(results[(v6.id, "v4")], v6.secret)


async def test_tokens_exchanged_for_the_secret_follow_its_rules(api: Api, app: Starlette) -> None:
    # given: tokens exchanged before any rule, then a rule for 127.0.0.1
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    tokens = (await api.gql(LOGIN, {"apiSecret": issued.secret})).data["apiSecretLogin"]
    await rules_saved(api, owner.token, issued.id, "127.0.0.1/32")

    # when
    async with client_at(app, ELSEWHERE) as elsewhere, client_at(app, HOME) as home:
        access_outside = await elsewhere.gql(WHO_AM_I, token=tokens["accessToken"])
        refresh_outside = await elsewhere.gql(REFRESH, {"refreshToken": tokens["refreshToken"]})
        login_outside = await elsewhere.gql(LOGIN, {"apiSecret": issued.secret})
        access_inside = await home.gql(WHO_AM_I, token=tokens["accessToken"])
        refresh_inside = await home.gql(REFRESH, {"refreshToken": tokens["refreshToken"]})

    # then
    assert_not_allowed(access_outside, tokens["accessToken"])
    assert_not_allowed(refresh_outside, tokens["refreshToken"])
    assert_not_allowed(login_outside, issued.secret)
    assert_allowed(access_inside)
    # and: the refused refresh spent nothing
    refreshed = refresh_inside.data["accessTokenRefresh"]
    assert refreshed["userErrors"] == [] and refreshed["accessToken"]
    counted = {c: refusals(app, c) for c in ("api_secret", "access_token", "refresh_token")}
    assert counted == {"api_secret": 1, "access_token": 1, "refresh_token": 1}


async def test_a_rules_change_applies_at_once_in_every_process(
    api: Api, app: Starlette, database_url: str
) -> None:
    # given: this process has verified the secret (cached) and served a token
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    async with client_at(app, ELSEWHERE) as elsewhere:
        assert_allowed(await elsewhere.gql(WHO_AM_I, authorization=portone(issued.secret)))
        tokens = (await elsewhere.gql(LOGIN, {"apiSecret": issued.secret})).data
        access = tokens["apiSecretLogin"]["accessToken"]

        # when: another process sets a rule that leaves this address out
        async with second_instance(database_url) as other:
            await rules_saved(other, owner.token, issued.id, "127.0.0.1/32")
        by_secret = await elsewhere.gql(WHO_AM_I, authorization=portone(issued.secret))
        by_token = await elsewhere.gql(WHO_AM_I, token=access)

        # then
        assert_not_allowed(by_secret, issued.secret)
        assert_not_allowed(by_token, access)

        # and when: the rules are emptied, any address may use it again
        await rules_saved(api, owner.token, issued.id)
        assert_allowed(await elsewhere.gql(WHO_AM_I, authorization=portone(issued.secret)))
        assert_allowed(await elsewhere.gql(WHO_AM_I, token=access))


async def test_refusals_are_audited_at_most_once_a_minute_per_secret(
    api: Api, app: Starlette, database_url: str
) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    await rules_saved(api, owner.token, issued.id, "127.0.0.1/32")

    # when: three refusals in a row
    async with client_at(app, ELSEWHERE) as elsewhere:
        for _ in range(3):
            assert_not_allowed(await elsewhere.gql(WHO_AM_I, authorization=portone(issued.secret)))
        first = await events(api, owner.token, "api_secret.network_refused")
        # and: the minute has passed (the last event's time set back), one more
        await set_secret_columns(
            database_url, issued.pk, network_refusal_audited_at=utcnow() - timedelta(minutes=2)
        )
        assert_not_allowed(await elsewhere.gql(WHO_AM_I, authorization=portone(issued.secret)))
    second = await events(api, owner.token, "api_secret.network_refused")

    # then: one event, then a second; every refusal counted
    assert len(first) == 1
    assert first[0]["targetId"] == issued.id
    assert ELSEWHERE in first[0]["summary"] and ELSEWHERE in first[0]["actor"]
    assert issued.secret not in repr(first)
    assert len(second) == 2
    assert refusals(app, "api_secret") == 4


# --- behind a proxy -------------------------------------------------------------------------


@asynccontextmanager
async def behind_proxy(database_url: str, proxy: str) -> AsyncIterator[Starlette]:
    application = create_app(make_settings(database_url, forwarded_allow_ips=[proxy]))
    try:
        yield application
    finally:
        application.state.app_state.hashing.close()
        sqlite_reads.close(application.state.app_state.engine)
        await application.state.app_state.engine.dispose()


async def test_the_address_a_trusted_proxy_forwards_is_the_one_checked(
    api: Api, database_url: str
) -> None:
    # given: a rule for 203.0.113.0/24; the app trusts the proxy at 127.0.0.1 only
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    await rules_saved(api, owner.token, issued.id, "203.0.113.0/24")
    secret = portone(issued.secret)

    # when
    async with (
        behind_proxy(database_url, HOME) as app,
        client_at(app, HOME) as proxy,
        client_at(app, ELSEWHERE) as untrusted,
    ):
        proxy.client.headers["X-Forwarded-For"] = "203.0.113.9"
        forwarded_inside = await proxy.gql(WHO_AM_I, authorization=secret)
        proxy.client.headers["X-Forwarded-For"] = "198.51.100.9"
        forwarded_outside = await proxy.gql(WHO_AM_I, authorization=secret)
        untrusted.client.headers["X-Forwarded-For"] = "203.0.113.9"
        spoofed = await untrusted.gql(WHO_AM_I, authorization=secret)

    # then
    assert_allowed(forwarded_inside)
    assert_not_allowed(forwarded_outside, issued.secret)
    assert "198.51.100.9" in forwarded_outside.body["errors"][0]["message"]
    assert_not_allowed(spoofed, issued.secret)  # its own address, 127.0.0.2, is checked
    assert ELSEWHERE in spoofed.body["errors"][0]["message"]


# --- the V2 whitelist notice ----------------------------------------------------------------


async def test_the_whitelist_notice_points_to_the_per_secret_allowlist(api: Api) -> None:
    # given
    owner = await api.sign_up()
    sub, _ = await create_store(api, owner.token, "Branch")

    # when
    results = [
        (
            language,
            await api.client.post(
                "/graphql",
                json={"query": WHITELIST, "variables": {"storeId": store_id}},
                headers={"Authorization": f"Bearer {owner.token}", "Accept-Language": language},
            ),
        )
        for store_id in (owner.representative_store_id, sub)
        for language in ("ko-KR", "en")
    ]

    # then: still not supported account-wide, with whom to ask, and where the allowlist is,
    # in the language asked for
    for language, result in results:
        whitelist = result.json()["data"]["store"]["additionalSettings"]["ipWhitelist"]
        assert whitelist["supported"] is False
        assert whitelist["contact"] == "tech.support@portone.io"
        expected = "지원하지 않습니다" if language == "ko-KR" else "does not offer an IP whitelist"
        assert expected in whitelist["message"]
        assert "tech.support@portone.io" in whitelist["message"]
        assert "apiSecretNetworkRulesUpdate" in whitelist["message"]
