"""The Relay dashboard of issue 15 (a store, its sub-stores, each with its channels and API
secrets and their totalCounts, and the webhook settings) costs the same number of SQL
statements, at most 10, for 1 sub-store as for many: Store.apiSecrets reads the pages and the
counts of every sub-store at once, as Store.channels does, and lists what it listed before."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from gql_api.settings import Settings
from tests.api_secrets.helpers import delete, issue
from tests.channels.test_statement_count import add_channels, counting_statements
from tests.factories import Seeded, seed_merchant
from tests.support import Api, create_store

DASHBOARD = """
query Dashboard($storeId: String!, $n: Int) { store(storeId: $storeId) { storeId name
  subStores(first: $n) { totalCount pageInfo { hasNextPage endCursor }
    nodes { storeId channels(first: $n) { totalCount nodes { id name pgProvider } }
            apiSecrets(first: $n) { totalCount nodes { id name } } } }
  webhookSettings { id moduleVersion mode url } } }
"""

# Every store's secrets, paged with the arguments given ($storeId's secrets for an
# OWN_STORE caller: the merchant lists only its own store).
EVERY_STORES_SECRETS = """
query Secrets($first: Int, $last: Int, $after: String, $before: String) {
  merchant { stores(first: 50) { nodes { storeId
    apiSecrets(first: $first, last: $last, after: $after, before: $before) {
      totalCount nodes { name }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } } } }
"""

MAX_STATEMENTS = 10
PAGE = 10


@dataclass
class Dashboard:
    seeded: Seeded
    # sub-store id -> names of its live secrets, oldest first
    secrets: dict[str, list[str]] = field(default_factory=dict)

    @property
    def owner(self) -> str:
        return self.seeded.owner.token

    @property
    def rep(self) -> str:
        return self.seeded.owner.representative_store_id


@pytest.fixture
async def dashboard(api: Api, db_engine: AsyncEngine, settings: Settings) -> Dashboard:
    seeded = await seed_merchant(db_engine, roles=(), stores=(), settings=settings)
    return Dashboard(seeded)


async def add_sub_store(api: Api, dashboard: Dashboard, n: int) -> str:
    """Sub-store n: 3 channels and n % 3 + 1 live secrets (one more issued and deleted)."""
    store_id, _ = await create_store(api, dashboard.owner, f"Store {n}")
    await add_channels(api, dashboard.seeded.owner, store_id)
    names = [f"Secret {n}.{k}" for k in range(n % 3 + 1)]
    for name in names:
        await issue(api, dashboard.owner, store_id, name)
    deleted = await issue(api, dashboard.owner, store_id, f"Deleted {n}")
    assert (await delete(api, dashboard.owner, deleted.id))["userErrors"] == []
    dashboard.secrets[store_id] = names
    return store_id


async def run_dashboard(api: Api, app: Starlette, dashboard: Dashboard) -> tuple[Any, int]:
    variables = {"storeId": dashboard.rep, "n": PAGE}
    with counting_statements(app) as statements:
        result = await api.gql(DASHBOARD, variables, token=dashboard.owner)
    assert result.error_codes == [], result.body
    return result.data["store"], len(statements)


def check_dashboard(store: dict[str, Any], dashboard: Dashboard) -> None:
    assert store["storeId"] == dashboard.rep
    sub_stores = store["subStores"]
    assert sub_stores["totalCount"] == len(dashboard.secrets)
    assert sub_stores["pageInfo"]["hasNextPage"] is False
    assert [sub["storeId"] for sub in sub_stores["nodes"]] == list(dashboard.secrets)
    for sub in sub_stores["nodes"]:
        names = dashboard.secrets[sub["storeId"]]
        assert sub["apiSecrets"]["totalCount"] == len(names)
        assert [node["name"] for node in sub["apiSecrets"]["nodes"]] == names
        assert sub["channels"]["totalCount"] == 3
        assert len(sub["channels"]["nodes"]) == 3
    assert len({setting["id"] for setting in store["webhookSettings"]}) == 4


async def test_the_dashboard_costs_as_many_statements_for_one_sub_store_as_for_six(
    api: Api, app: Starlette, dashboard: Dashboard
) -> None:
    # given: 1 sub-store with channels and secrets
    await add_sub_store(api, dashboard, 0)

    # when
    one, one_count = await run_dashboard(api, app, dashboard)

    # given: 6 sub-stores
    for n in range(1, 6):
        await add_sub_store(api, dashboard, n)

    # when
    six, six_count = await run_dashboard(api, app, dashboard)

    # then
    check_dashboard(six, dashboard)
    first = next(iter(dashboard.secrets))
    check_dashboard(one, Dashboard(dashboard.seeded, {first: dashboard.secrets[first]}))
    assert one_count > 0
    assert one_count == six_count, (one_count, six_count)
    assert six_count <= MAX_STATEMENTS, six_count


async def test_secrets_of_every_store_page_forwards_and_backwards_alike(
    api: Api, dashboard: Dashboard
) -> None:
    # given: stores with 1, 2 and 3 live secrets (the representative store has none)
    stores = [await add_sub_store(api, dashboard, n) for n in range(3)]

    # when: the first 2 of each, then the last 2 of each, then pages on from store 2's cursors
    forwards = await api.gql(EVERY_STORES_SECRETS, {"first": 2}, token=dashboard.owner)
    backwards = await api.gql(EVERY_STORES_SECRETS, {"last": 2}, token=dashboard.owner)
    listed = by_store(forwards.data)
    after = await api.gql(
        EVERY_STORES_SECRETS,
        {"first": 2, "after": listed[stores[2]]["pageInfo"]["endCursor"]},
        token=dashboard.owner,
    )
    before = await api.gql(
        EVERY_STORES_SECRETS,
        {"last": 1, "before": by_store(backwards.data)[stores[2]]["pageInfo"]["startCursor"]},
        token=dashboard.owner,
    )

    # then
    assert names(forwards.data) == {
        dashboard.rep: [],
        stores[0]: ["Secret 0.0"],
        stores[1]: ["Secret 1.0", "Secret 1.1"],
        stores[2]: ["Secret 2.0", "Secret 2.1"],
    }
    assert names(backwards.data) == {
        dashboard.rep: [],
        stores[0]: ["Secret 0.0"],
        stores[1]: ["Secret 1.0", "Secret 1.1"],
        stores[2]: ["Secret 2.1", "Secret 2.2"],
    }
    assert names(after.data)[stores[2]] == ["Secret 2.2"]
    assert names(before.data)[stores[2]] == ["Secret 2.0"]
    pages = {
        "forwards": by_store(forwards.data)[stores[2]]["pageInfo"],
        "backwards": by_store(backwards.data)[stores[2]]["pageInfo"],
        "after": by_store(after.data)[stores[2]]["pageInfo"],
        "before": by_store(before.data)[stores[2]]["pageInfo"],
    }
    flags = {k: (p["hasPreviousPage"], p["hasNextPage"]) for k, p in pages.items()}
    assert flags == {
        "forwards": (False, True),
        "backwards": (True, False),
        "after": (True, False),
        "before": (False, True),
    }
    for result in (forwards, backwards, after, before):
        counts = {s: page["totalCount"] for s, page in by_store(result.data).items()}
        assert counts == {dashboard.rep: 0, stores[0]: 1, stores[1]: 2, stores[2]: 3}


async def test_a_store_confined_caller_lists_only_its_own_stores_secrets(
    api: Api, dashboard: Dashboard
) -> None:
    # given: two sub-stores with secrets, and a secret of the second used as the caller
    first = await add_sub_store(api, dashboard, 0)
    second = await add_sub_store(api, dashboard, 1)
    caller = await issue(api, dashboard.owner, second, "Caller")

    # when
    result = await api.gql(
        EVERY_STORES_SECRETS, {"first": 10}, authorization=f"PortOne {caller.secret}"
    )

    # then
    assert result.error_codes == []
    assert names(result.data) == {second: ["Secret 1.0", "Secret 1.1", "Caller"]}
    assert by_store(result.data)[second]["totalCount"] == 3
    assert first not in str(result.body)


def by_store(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {store["storeId"]: store["apiSecrets"] for store in data["merchant"]["stores"]["nodes"]}


def names(data: dict[str, Any]) -> dict[str, list[str]]:
    return {
        store_id: [node["name"] for node in page["nodes"]]
        for store_id, page in by_store(data).items()
    }
