"""Guesses against a key id never lock the genuine secret out, in any process, and never start
more than ten argon2 verifications per key and window, concurrent requests included."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette

from gql_api.security import api_keys
from tests.api_secrets.helpers import (
    LOGIN,
    WHO_AM_I,
    Argon2Calls,
    assert_refused,
    issue,
    near_miss,
    portone,
    secret_row,
    set_secret_columns,
)
from tests.support import Api, GraphQLResponse
from tests.support_servers import serve

# The default in-process client is 127.0.0.1: the integration's address in these tests.
FORGER = "127.0.0.2"


@asynccontextmanager
async def client_at(app: Starlette, address: str) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=app, client=(address, 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield Api(http)


def verifications(app: Starlette) -> dict[str, int]:
    """api_secret_verifications_total by result: `ok` and `failed` ran argon2."""
    registry = app.state.app_state.metrics.registry
    results = ("ok", "failed", "refused_tag", "refused_throttled")
    return {
        result: int(
            registry.get_sample_value("api_secret_verifications_total", {"result": result}) or 0
        )
        for result in results
    }


def forgeries(secret: str, count: int) -> list[str]:
    """Distinct look-alikes: the real key id, a valid checksum, one random character changed."""
    return [near_miss(secret, -index) for index in range(1, count + 1)]


def assert_rate_limited(result: GraphQLResponse) -> None:
    assert result.status == 429, result.body
    assert result.error_codes == ["RATE_LIMITED"]


async def test_forgeries_from_another_address_never_lock_out_the_genuine_secret(
    app: Starlette, api: Api, argon2_calls: Argon2Calls
) -> None:
    # given: a secret this process has never verified
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    argon2_calls.clear()

    # when: twelve forgeries with its key id come from another address
    async with client_at(app, FORGER) as forger:
        forged = [
            await forger.gql(WHO_AM_I, authorization=portone(f))
            for f in forgeries(issued.secret, 12)
        ]
        # and: the genuine secret is used, by header and for tokens
        served = await api.gql(WHO_AM_I, authorization=portone(issued.secret))
        login = await api.gql(LOGIN, {"apiSecret": issued.secret})
        again = await forger.gql(WHO_AM_I, authorization=portone(near_miss(issued.secret)))

    # then: ten are refused as invalid, without argon2, then the forger is rate limited
    for result in forged[:10]:
        assert_refused(result, "INVALID", issued.secret)
    for result in forged[10:]:
        assert_rate_limited(result)
    assert_rate_limited(again)
    # and: the genuine secret is served, and exchanged for tokens
    assert served.status == 200, served.body
    assert login.data["apiSecretLogin"]["userErrors"] == []
    assert login.data["apiSecretLogin"]["accessToken"]
    # and: argon2 ran once, for the genuine secret
    assert verifications(app) == {"ok": 1, "failed": 0, "refused_tag": 10, "refused_throttled": 3}
    assert len(argon2_calls.verify) == 1


async def test_the_genuine_secret_is_served_even_from_the_forgers_own_address(
    app: Starlette, api: Api
) -> None:
    # given: an address (a shared NAT, say) locked out by forgeries of a key id
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    guesses = forgeries(issued.secret, 10)
    async with client_at(app, FORGER) as shared:
        for forged in guesses:
            assert_refused(await shared.gql(WHO_AM_I, authorization=portone(forged)), "INVALID")
        assert_rate_limited(await shared.gql(WHO_AM_I, authorization=portone(guesses[0])))

        # when: the genuine secret comes from the same address
        served = await shared.gql(WHO_AM_I, authorization=portone(issued.secret))
        forged_again = await shared.gql(WHO_AM_I, authorization=portone(guesses[1]))

    # then: its verification tag matches, so the address's failures do not hold it back
    assert served.status == 200, served.body
    assert_rate_limited(forged_again)
    assert verifications(app)["ok"] == 1


async def test_forgeries_from_many_addresses_of_one_ipv6_network_share_one_limit(
    app: Starlette, api: Api
) -> None:
    # given: ten forgeries of a key id, each from its own address in one /64
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    guesses = forgeries(issued.secret, 12)
    for index, forged in enumerate(guesses[:10], start=1):
        async with client_at(app, f"2001:db8:1:2::{index:x}") as forger:
            assert_refused(await forger.gql(WHO_AM_I, authorization=portone(forged)), "INVALID")

    # when: one more from yet another address of that /64, and one from the next /64
    async with client_at(app, "2001:db8:1:2:abcd::1") as same_network:
        again = await same_network.gql(WHO_AM_I, authorization=portone(guesses[10]))
    async with client_at(app, "2001:db8:1:3::1") as next_network:
        elsewhere = await next_network.gql(WHO_AM_I, authorization=portone(guesses[11]))

    # then
    assert_rate_limited(again)
    assert_refused(elsewhere, "INVALID", issued.secret)


async def test_a_secret_issued_before_tags_gets_one_on_its_first_successful_verify(
    app: Starlette, api: Api, database_url: str
) -> None:
    # given: a secret with no verification tag (issued before they existed)
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    await set_secret_columns(database_url, issued.pk, verify_tag=None)

    # when: it is used
    served = await api.gql(WHO_AM_I, authorization=portone(issued.secret))

    # then: it is served and has its tag
    assert served.status == 200, served.body
    row = await secret_row(database_url, issued.pk)
    assert row["verify_tag"] == api_keys.verify_tag(issued.secret)
    # and: a forgery now costs no argon2
    async with client_at(app, FORGER) as forger:
        forged = await forger.gql(WHO_AM_I, authorization=portone(near_miss(issued.secret)))
    assert_refused(forged, "INVALID", issued.secret)
    assert verifications(app) == {"ok": 1, "failed": 0, "refused_tag": 1, "refused_throttled": 0}


async def test_concurrent_guesses_that_need_argon2_start_at_most_ten_verifications(
    app: Starlette, api: Api, database_url: str, argon2_calls: Argon2Calls
) -> None:
    # given: a secret without a tag, so that every guess needs argon2
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    await set_secret_columns(database_url, issued.pk, verify_tag=None)
    argon2_calls.clear()
    guesses = forgeries(issued.secret, 25)

    # when: 25 distinct guesses arrive at once, five from each of five addresses
    async def guess(index: int) -> GraphQLResponse:
        async with client_at(app, f"127.0.1.{index % 5 + 1}") as client:
            return await client.gql(WHO_AM_I, authorization=portone(guesses[index]))

    results = await asyncio.gather(*(guess(index) for index in range(25)))

    # then: ten ran argon2 and were refused as invalid; the rest were refused without it
    statuses = sorted(result.status for result in results)
    assert statuses == [401] * 10 + [429] * 15
    assert verifications(app) == {"ok": 0, "failed": 10, "refused_tag": 0, "refused_throttled": 15}
    assert len(argon2_calls.verify) == 10


async def test_concurrent_guesses_whose_tag_differs_start_no_argon2(
    app: Starlette, api: Api, argon2_calls: Argon2Calls
) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    argon2_calls.clear()
    guesses = forgeries(issued.secret, 25)

    # when: 25 distinct guesses arrive at once, five from each of five addresses
    async def guess(index: int) -> GraphQLResponse:
        async with client_at(app, f"127.0.1.{index % 5 + 1}") as client:
            return await client.gql(WHO_AM_I, authorization=portone(guesses[index]))

    results = await asyncio.gather(*(guess(index) for index in range(25)))

    # then: all refused as invalid, none with argon2
    for result in results:
        assert_refused(result, "INVALID", issued.secret)
    assert verifications(app) == {"ok": 0, "failed": 0, "refused_tag": 25, "refused_throttled": 0}
    assert argon2_calls.verify == []
    # and: the genuine secret is served
    assert (await api.gql(WHO_AM_I, authorization=portone(issued.secret))).status == 200


async def test_a_burst_of_the_genuine_secret_in_a_fresh_process_runs_argon2_once(
    app: Starlette, api: Api, argon2_calls: Argon2Calls
) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    argon2_calls.clear()

    # when: 25 requests with it arrive at once
    results = await asyncio.gather(
        *(api.gql(WHO_AM_I, authorization=portone(issued.secret)) for _ in range(25))
    )

    # then: all served, after one verify
    assert [result.status for result in results] == [200] * 25
    assert verifications(app)["ok"] == 1
    assert len(argon2_calls.verify) == 1


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_forgeries_through_one_server_process_never_lock_out_another(
    database_url: str,
) -> None:
    # given: two server processes on one PostgreSQL
    with serve(database_url) as first, serve(database_url) as second:
        async with (
            httpx.AsyncClient(base_url=first.base_url, timeout=30) as owner_http,
            httpx.AsyncClient(
                base_url=first.base_url,
                transport=httpx.AsyncHTTPTransport(local_address=FORGER),
                timeout=30,
            ) as forger_http,
            httpx.AsyncClient(base_url=second.base_url, timeout=30) as second_http,
        ):
            owner_api, forger, integration = Api(owner_http), Api(forger_http), Api(second_http)
            owner = await owner_api.sign_up()
            issued = await issue(owner_api, owner.token, owner.representative_store_id)

            # when: twelve forgeries go to the first process from another address
            forged = [
                await forger.gql(WHO_AM_I, authorization=portone(f))
                for f in forgeries(issued.secret, 12)
            ]
            # and: the genuine secret goes to the second, which never verified it
            served = await integration.gql(WHO_AM_I, authorization=portone(issued.secret))
            login = await integration.gql(LOGIN, {"apiSecret": issued.secret})

    # then
    for result in forged[:10]:
        assert_refused(result, "INVALID", issued.secret)
    for result in forged[10:]:
        assert_rate_limited(result)
    assert served.status == 200, served.body
    assert login.data["apiSecretLogin"]["userErrors"] == []
