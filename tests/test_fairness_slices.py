"""A heavy operation's page of channels, or of sub-stores, is completed a slice at a time
(gql_api.fairness, rule 3): between two items the event loop runs other callbacks (a page of a
dashboard's channels was one callback of ~7 ms); a light request's page is completed at once;
answers and statements are the same either way."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from graphql import GraphQLObjectType, GraphQLResolveInfo
from starlette.applications import Starlette

from gql_api.fairness import Fairness
from gql_api.schema import build_schema
from tests.channels.helpers import create_channel, kcp_shared_test_input
from tests.channels.test_statement_count import counting_statements
from tests.support import Api, GraphQLResponse, SignedUp, create_store

CHANNELS = 6
SUB_STORES = 4
PAGE = """query Page($storeId: String!) { store(storeId: $storeId) {
  channels(first: 50) { edges { cursor node { id name pgProvider } } nodes { id } } } }"""
STORES = """query Stores($storeId: String!) { store(storeId: $storeId) { subStores(first: 50) {
  edges { cursor node { storeId name channels(first: 5) { nodes { name } } } } } } }"""


class LoopTicks:
    """Counts the event loop's iterations while running: a task that counts and yields."""

    def __init__(self) -> None:
        self.count = 0

    async def run(self) -> None:
        while True:
            self.count += 1
            await asyncio.sleep(0)


@pytest.fixture
async def owner(api: Api) -> SignedUp:
    return await api.sign_up()


@pytest.fixture
async def store_with_channels(api: Api, owner: SignedUp) -> str:
    store_id = owner.representative_store_id
    for n in range(CHANNELS):
        await create_channel(api, owner.token, kcp_shared_test_input(store_id, f"KCP test {n}"))
    return store_id


@pytest.fixture
async def store_with_sub_stores(api: Api, owner: SignedUp) -> str:
    for n in range(SUB_STORES):
        await create_store(api, owner.token, f"Sub-store {n}")
    return owner.representative_store_id


async def completed_at(
    api: Api,
    app: Starlette,
    monkeypatch: pytest.MonkeyPatch,
    token: str,
    store_id: str,
    *,
    query: str = PAGE,
    items: tuple[str, int] = ("Channel", CHANNELS),
) -> tuple[GraphQLResponse, list[int], int]:
    """The page's answer, the loop iteration in which each item's `name` was resolved (as
    graphql-core completed that item), and the statements it took."""
    ticks = LoopTicks()
    seen: list[int] = []
    schema = build_schema(app.state.app_state.settings)._schema
    item, count = items
    item_type = schema.type_map[item]
    assert isinstance(item_type, GraphQLObjectType)
    name = item_type.fields["name"]
    resolve = name.resolve
    assert resolve is not None

    def resolving(source: Any, info: GraphQLResolveInfo[Any], **arguments: Any) -> Any:
        seen.append(ticks.count)
        return resolve(source, info, **arguments)

    monkeypatch.setattr(name, "resolve", resolving)
    task = asyncio.create_task(ticks.run())
    try:
        with counting_statements(app) as statements:
            result = await api.gql(query, {"storeId": store_id}, token=token)
    finally:
        task.cancel()
    monkeypatch.undo()
    assert result.error_codes == [], result.body
    assert len(seen) == count
    return result, seen, len(statements)


async def test_a_heavy_operations_page_is_completed_a_slice_at_a_time(
    api: Api,
    app: Starlette,
    owner: SignedUp,
    store_with_channels: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: the page as a light request, then rules under which it is heavy, with slices of
    # no time at all (a turn before every channel but the first)
    light, light_ticks, light_statements = await completed_at(
        api, app, monkeypatch, owner.token, store_with_channels
    )
    fairness = Fairness(heavy_cost=1, heavy_concurrency=1)
    fairness.list_slice_seconds = 0
    app.state.app_state.fairness = fairness

    # when the same page is asked for as a heavy operation
    heavy, heavy_ticks, heavy_statements = await completed_at(
        api, app, monkeypatch, owner.token, store_with_channels
    )

    # then each of its channels was completed in a loop iteration of its own, in order, where
    # the light request completed them all in one; the answer and the statements are the same
    assert len(set(light_ticks)) == 1
    assert heavy_ticks == sorted(heavy_ticks)
    assert len(set(heavy_ticks)) == CHANNELS
    assert heavy.body == light.body
    assert heavy_statements == light_statements


async def test_a_heavy_operations_sub_stores_are_completed_a_slice_at_a_time(
    api: Api,
    app: Starlette,
    owner: SignedUp,
    store_with_sub_stores: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: the sub-stores as a light request, then as a heavy one, slices of no time at all
    light, light_ticks, light_statements = await completed_at(
        api,
        app,
        monkeypatch,
        owner.token,
        store_with_sub_stores,
        query=STORES,
        items=("Store", SUB_STORES),
    )
    fairness = Fairness(heavy_cost=1, heavy_concurrency=1)
    fairness.list_slice_seconds = 0
    app.state.app_state.fairness = fairness

    # when
    heavy, heavy_ticks, heavy_statements = await completed_at(
        api,
        app,
        monkeypatch,
        owner.token,
        store_with_sub_stores,
        query=STORES,
        items=("Store", SUB_STORES),
    )

    # then each sub-store was completed in an iteration of its own; the answer and the
    # statements (the sub-stores' channel pages in one) are the same
    assert len(set(light_ticks)) == 1
    assert len(set(heavy_ticks)) == SUB_STORES
    assert heavy.body == light.body
    assert heavy_statements == light_statements
