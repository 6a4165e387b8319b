"""One process's event loop shared between light and heavy operations (gql_api.fairness): a
light request is answered before a heavy one that was sent first, heavy operations beyond
HEAVY_QUERY_CONCURRENCY wait for their turn, and answers and statements stay as they were."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.applications import Starlette

from gql_api import dataloaders
from gql_api.fairness import Fairness
from gql_api.i18n import current_locale
from gql_api.logs import current_request_id
from gql_api.settings import Settings
from tests.channels.test_statement_count import counting_statements
from tests.conftest import make_settings
from tests.factories import seed_merchant
from tests.support import Api, GraphQLResponse
from tests.test_dashboard_statement_count import DASHBOARD, PAGE, Dashboard, add_sub_store

# Heavy by its cost (50 × 51 objects it could return), light in what it reads for a merchant
# without sub-stores: the representative store and an empty page.
HEAVY = """{ merchant { representativeStore {
  subStores(first: 50) { nodes { channels(first: 50) { nodes { id } } } } } } }"""
# Light (cost 5), with more to read one after the other than HEAVY: the representative store,
# its channels and webhook settings, then the settings' secrets.
LIGHT = """{ viewer { merchant { name representativeStore { name
  channels(first: 5) { nodes { name } } webhookSettings { mode secrets { id } } } } } }"""
HEAVY_COST = 100


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, heavy_query_cost=HEAVY_COST, heavy_query_concurrency=1)


def patient(app: Starlette) -> Fairness:
    """The app's rules, with heavy hand-overs waiting as long as a light request is in flight
    (not 20 ms, nor only as long as the heavy one ran): what is answered first then does not
    depend on this machine's speed."""
    state = app.state.app_state
    state.fairness = Fairness(
        heavy_cost=HEAVY_COST,
        heavy_concurrency=1,
        light_first_max_wait_seconds=60,
        light_first_max_share=math.inf,
    )
    fairness: Fairness = state.fairness
    return fairness


async def answered_in_order(
    api: Api, requests: list[tuple[str, str, dict[str, Any], str]]
) -> tuple[list[str], dict[str, GraphQLResponse]]:
    """Sends (name, query, variables, token) in this order, concurrently."""
    order: list[str] = []
    results: dict[str, GraphQLResponse] = {}

    async def send(name: str, query: str, variables: dict[str, Any], token: str) -> None:
        results[name] = await api.gql(query, variables, token=token)
        order.append(name)

    await asyncio.gather(*(send(*request) for request in requests))
    return order, results


async def test_a_light_query_is_answered_before_a_heavy_one_sent_before_it(
    api: Api, app: Starlette
) -> None:
    # given
    owner = await api.sign_up()
    heavy_alone = await api.gql(HEAVY, token=owner.token)
    light_alone = await api.gql(LIGHT, token=owner.token)
    patient(app)

    # when: the heavy query first, the light one right after it
    order, results = await answered_in_order(
        api, [("heavy", HEAVY, {}, owner.token), ("light", LIGHT, {}, owner.token)]
    )

    # then: the heavy query's reads waited while the light one was in flight
    assert order == ["light", "heavy"]
    assert results["light"].body == light_alone.body
    assert results["heavy"].body == heavy_alone.body
    assert heavy_alone.data["merchant"]["representativeStore"]["subStores"]["nodes"] == []


async def test_heavy_queries_beyond_the_concurrency_wait_their_turn(
    api: Api, app: Starlette, settings: Settings
) -> None:
    # given: a dashboard of 3 sub-stores (heavy: up to 10 sub-stores x 10 channels), and a
    # heavy query with little to read (a merchant without sub-stores)
    big = Dashboard(await seed_merchant(app.state.app_state.engine, roles=(), stores=()))
    for n in range(3):
        await add_sub_store(api, big, n)
    small = Dashboard(await seed_merchant(app.state.app_state.engine, roles=(), stores=()))
    requests = [
        ("big", DASHBOARD, {"storeId": big.rep, "n": PAGE}, big.owner),
        ("small", HEAVY, {}, small.owner),
    ]
    alone: dict[str, tuple[GraphQLResponse, int]] = {}
    for name, query, variables, token in requests:
        with counting_statements(app) as statements:
            result = await api.gql(query, variables, token=token)
        assert result.error_codes == [], result.body
        alone[name] = (result, len(statements))
    fairness = app.state.app_state.fairness
    order: list[str] = []
    results: dict[str, GraphQLResponse] = {}

    async def send(name: str, query: str, variables: dict[str, Any], token: str) -> None:
        results[name] = await api.gql(query, variables, token=token)
        order.append(name)

    # when: the big dashboard is executing, the small one is sent (HEAVY_QUERY_CONCURRENCY=1)
    with counting_statements(app) as statements:
        big_task = asyncio.create_task(send(*requests[0]))
        while fairness.heavy_executing == 0 and not big_task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        await send(*requests[1])
        await big_task

    # then: the small one executed once the big one was done (with more to read, it would
    # have been answered first); each answered as when alone, with the same statements (the
    # big one's loads still batched although its values came one by one)
    assert order == ["big", "small"]
    assert results["big"].body == alone["big"][0].body
    assert results["small"].body == alone["small"][0].body
    assert len(statements) == alone["big"][1] + alone["small"][1]


def test_the_heavy_settings_are_validated(database_url: str) -> None:
    with pytest.raises(ValidationError, match="heavy_query_concurrency"):
        make_settings(database_url, heavy_query_concurrency=0)
    with pytest.raises(ValidationError, match="heavy_query_cost"):
        make_settings(database_url, heavy_query_cost=0)
    defaults = make_settings(database_url)
    assert (defaults.heavy_query_cost, defaults.heavy_query_concurrency) == (1000, 2)


async def test_a_heavy_operations_loads_run_in_its_requests_context(
    api: Api, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a dashboard of 2 sub-stores, every hand-over paced (a light request always in
    # flight, 1 ms waits), and a recorder of the context each DataLoader batch runs in
    d = Dashboard(await seed_merchant(app.state.app_state.engine, roles=(), stores=()))
    for n in range(2):
        await add_sub_store(api, d, n)
    fairness = Fairness(heavy_cost=1, heavy_concurrency=2, light_first_max_wait_seconds=0.001)
    app.state.app_state.fairness = fairness
    seen: list[tuple[str, str, str]] = []
    original = dataloaders.AreaLoader._load_in_turn

    async def recording(self: dataloaders.AreaLoader[Any, Any], keys: list[Any]) -> Any:
        seen.append((type(self).__name__, current_request_id(), current_locale.get()))
        return await original(self, keys)

    monkeypatch.setattr(dataloaders.AreaLoader, "_load_in_turn", recording)

    # when the dashboard is asked for in Korean
    with fairness.request():
        response = await api.client.post(
            "/graphql",
            json={"query": DASHBOARD, "variables": {"storeId": d.rep, "n": PAGE}},
            headers={"Authorization": f"Bearer {d.owner}", "Accept-Language": "ko"},
        )

    # then every batch ran with that request's id and language (the pacer passes loads on in a
    # context of its own: log lines and messages of a batch would have lost both)
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    request_id = response.headers["x-request-id"]
    assert {name for name, _, _ in seen} >= {"ChannelCountsLoader", "SecretCountsLoader"}
    assert all((rid, locale) == (request_id, "ko") for _, rid, locale in seen), seen


async def test_light_requests_in_flight_hold_a_heavy_one_back_no_longer_than_it_ran(
    api: Api, app: Starlette
) -> None:
    # given: a dashboard of 2 sub-stores, and rules that would hold each heavy hand-over back
    # for up to 10 minutes while a light request is in flight
    d = Dashboard(await seed_merchant(app.state.app_state.engine, roles=(), stores=()))
    for n in range(2):
        await add_sub_store(api, d, n)
    variables = {"storeId": d.rep, "n": PAGE}
    alone = await api.gql(DASHBOARD, variables, token=d.owner)
    fairness = Fairness(heavy_cost=1, heavy_concurrency=1, light_first_max_wait_seconds=600)
    app.state.app_state.fairness = fairness

    # when a light request stays in flight all along (waiting for something else than the loop)
    with fairness.request():
        async with asyncio.timeout(120):  # a guard against a hang, not a measure
            result = await api.gql(DASHBOARD, variables, token=d.owner)

    # then the dashboard is answered as when alone
    assert result.body == alone.body
