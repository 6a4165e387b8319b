"""No N+1: every store with its channels, and the totalCount of both connections, costs the
same number of SQL statements however many stores there are."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette

from db.driver_query import watch_statements
from tests.channels.helpers import create_channel, inicis_live_input, kcp_shared_test_input
from tests.support import Api, SignedUp, create_store

# The dashboard's listing, with the pagers' totalCount. Page sizes stay under the query cost
# limit (20,000 objects) with each channel's credentials (up to 10) counted.
EVERY_STORE_WITH_CHANNELS = """
{
  merchant {
    stores(first: 50) {
      totalCount
      nodes {
        storeId
        channels(first: 20) {
          totalCount
          nodes {
            id channelKey name type pgProvider moduleCode moduleVersions pgMerchantId
            credentials { key label secret value maskedValue }
            store { storeId }
          }
        }
      }
    }
  }
}
"""

CHANNELS_PER_STORE = 3
MAX_STATEMENTS = 10


@contextmanager
def counting_statements(app: Starlette) -> Iterator[list[str]]:
    """Every statement, through SQLAlchemy or as a DriverQuery."""
    statements: list[str] = []
    stop = watch_statements(app.state.app_state.engine, statements.append)
    try:
        yield statements
    finally:
        stop()


async def add_store_with_channels(api: Api, owner: SignedUp, n: int) -> str:
    store_id, _ = await create_store(api, owner.token, f"Store {n}")
    await add_channels(api, owner, store_id)
    return store_id


async def add_channels(api: Api, owner: SignedUp, store_id: str) -> None:
    await create_channel(api, owner.token, kcp_shared_test_input(store_id, "KCP test"))
    await create_channel(api, owner.token, inicis_live_input(store_id, "INICIS live"))
    await create_channel(
        api, owner.token, inicis_live_input(store_id, "INICIS own test", mode="TEST")
    )


async def run_counted(api: Api, app: Starlette, owner: SignedUp) -> tuple[dict[str, Any], int]:
    with counting_statements(app) as statements:
        result = await api.gql(EVERY_STORE_WITH_CHANNELS, token=owner.token)
    data: dict[str, Any] = result.data
    return data, len(statements)


def check_listing(data: dict[str, Any], store_ids: list[str]) -> None:
    stores = data["merchant"]["stores"]["nodes"]
    assert [store["storeId"] for store in stores] == store_ids
    assert data["merchant"]["stores"]["totalCount"] == len(store_ids)
    for store in stores:
        channels = store["channels"]["nodes"]
        assert len(channels) == CHANNELS_PER_STORE
        assert store["channels"]["totalCount"] == CHANNELS_PER_STORE
        assert {channel["store"]["storeId"] for channel in channels} == {store["storeId"]}
        assert [len(channel["credentials"]) for channel in channels] == [0, 3, 3]


async def test_every_store_with_its_channels_costs_a_constant_number_of_statements(
    api: Api, app: Starlette, owner: SignedUp
) -> None:
    # given: 2 stores with a few channels each
    store_ids = [owner.representative_store_id]
    await add_channels(api, owner, owner.representative_store_id)
    store_ids.append(await add_store_with_channels(api, owner, 1))

    # when
    small, small_count = await run_counted(api, app, owner)

    # given: 20 stores
    for n in range(2, 20):
        store_ids.append(await add_store_with_channels(api, owner, n))

    # when
    large, large_count = await run_counted(api, app, owner)

    # then
    check_listing(small, store_ids[:2])
    check_listing(large, store_ids)
    assert small_count > 0
    assert small_count == large_count
    assert large_count <= MAX_STATEMENTS, large_count


async def test_a_filtered_listing_of_every_store_is_also_constant(
    api: Api, app: Starlette, owner: SignedUp
) -> None:
    # given
    query = EVERY_STORE_WITH_CHANNELS.replace(
        "channels(first: 20)", 'channels(first: 2, filter: {mode: LIVE, search: "inicis"})'
    )
    await add_channels(api, owner, owner.representative_store_id)
    await add_store_with_channels(api, owner, 1)
    with counting_statements(app) as few:
        small = await api.gql(query, token=owner.token)
    for n in range(2, 8):
        await add_store_with_channels(api, owner, n)

    # when
    with counting_statements(app) as many:
        large = await api.gql(query, token=owner.token)

    # then
    for result in (small, large):
        for store in result.data["merchant"]["stores"]["nodes"]:
            assert [c["name"] for c in store["channels"]["nodes"]] == ["INICIS live"]
            assert store["channels"]["totalCount"] == 1
    assert len(few) > 0
    assert len(few) == len(many)
    assert len(many) <= MAX_STATEMENTS


async def test_a_total_count_is_counted_only_when_asked_for(
    api: Api, app: Starlette, owner: SignedUp
) -> None:
    # given
    await add_channels(api, owner, owner.representative_store_id)
    await add_store_with_channels(api, owner, 1)
    without_counts = EVERY_STORE_WITH_CHANNELS.replace("totalCount", "")

    # when
    with counting_statements(app) as plain:
        listed = await api.gql(without_counts, token=owner.token)
    with counting_statements(app) as counted:
        await api.gql(EVERY_STORE_WITH_CHANNELS, token=owner.token)

    # then
    assert len(listed.data["merchant"]["stores"]["nodes"]) == 2
    assert not [sql for sql in plain if "count(" in sql.lower()]
    assert len([sql for sql in counted if "count(" in sql.lower()]) == 2  # stores, channels
