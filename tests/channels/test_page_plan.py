"""A batch of stores' channel pages finds each page by the (store_pk, id) index on SQLite, not
by reading every channel of the merchant for each store (SQLite keeps no statistics, and
chose the merchant's index: a dashboard's page statement took ~2.6 ms instead of ~1.7)."""

from __future__ import annotations

import sqlite3

import pytest
from starlette.applications import Starlette

from tests.channels.helpers import create_channel, kcp_shared_test_input
from tests.channels.test_statement_count import counting_statements
from tests.support import Api, SignedUp, create_store

PAGES = """{ merchant { stores(first: 10) { nodes { channels(first: 5) { nodes { name } } } } } }"""


async def test_each_stores_page_is_found_by_its_store(
    api: Api, app: Starlette, owner: SignedUp, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's query planner")
    # given: two stores with a channel each
    other, _ = await create_store(api, owner.token, "Other store")
    for store_id in (owner.representative_store_id, other):
        await create_channel(api, owner.token, kcp_shared_test_input(store_id, "KCP test"))

    # when both stores' pages are read (one statement)
    with counting_statements(app) as statements:
        result = await api.gql(PAGES, token=owner.token)
    assert result.error_codes == [], result.body
    [page] = [s for s in statements if "ORDER BY channels.id" in s]

    # then SQLite's plan looks each page up by its store, never by the merchant
    path = database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        plan = connection.execute(f"EXPLAIN QUERY PLAN {page}", [1] * page.count("?")).fetchall()
    searches = [row[3] for row in plan if row[3].startswith(("SEARCH", "SCAN channels"))]
    assert searches, plan
    assert all("ix_channels_store_pk_id (store_pk=?)" in step for step in searches), searches
