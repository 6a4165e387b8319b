"""Channel pages of many stores come from shared, cached statements (one per shape, up to 64
stores each): every caller must still get exactly its own stores' channels, in order."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette

from tests.channels.helpers import create_channel, kcp_shared_test_input
from tests.support import Api, SignedUp, create_store, invite_and_join

EVERY_STORE = """
query EveryStore($first: Int, $last: Int, $search: String) {
  merchant {
    stores(first: 100) {
      nodes {
        storeId
        channels(first: $first, last: $last, filter: {search: $search}) {
          nodes { name }
          pageInfo { hasNextPage hasPreviousPage }
        }
      }
    }
  }
}
"""

STORE = """
query Store($storeId: String!) {
  store(storeId: $storeId) { storeId channels(first: 50) { nodes { name } } }
}
"""


async def add_channels(api: Api, owner: SignedUp, store_id: str, *names: str) -> None:
    for name in names:
        await create_channel(api, owner.token, kcp_shared_test_input(store_id, name))


async def every_store(api: Api, token: str, **variables: object) -> dict[str, dict[str, Any]]:
    result = await api.gql(EVERY_STORE, variables, token=token)
    return {s["storeId"]: s["channels"] for s in result.data["merchant"]["stores"]["nodes"]}


async def test_backward_pages_of_several_stores_in_one_query(api: Api, owner: SignedUp) -> None:
    # given
    stores = [owner.representative_store_id]
    for n in range(2):
        stores.append((await create_store(api, owner.token, f"Store {n}"))[0])
    for index, store_id in enumerate(stores):
        await add_channels(api, owner, store_id, *(f"S{index} C{c}" for c in range(5)))

    # when
    pages = await every_store(api, owner.token, last=2)

    # then: each store's last two, oldest first, with earlier ones before them
    assert list(pages) == stores
    for index, store_id in enumerate(stores):
        assert pages[store_id] == {
            "nodes": [{"name": f"S{index} C3"}, {"name": f"S{index} C4"}],
            "pageInfo": {"hasNextPage": False, "hasPreviousPage": True},
        }


async def test_callers_sharing_a_statement_shape_see_only_their_own_channels(
    api: Api, owner: SignedUp
) -> None:
    # given: two sub-stores with a member bound to each, and another merchant
    first_store, _ = await create_store(api, owner.token, "First")
    second_store, _ = await create_store(api, owner.token, "Second")
    await add_channels(api, owner, first_store, "first 1", "first 2")
    await add_channels(api, owner, second_store, "second 1")
    await add_channels(api, owner, owner.representative_store_id, "representative")
    first_member = await invite_and_join(api, owner.token, "STORE_READ_ONLY", first_store)
    second_member = await invite_and_join(api, owner.token, "STORE_READ_ONLY", second_store)
    other = await api.sign_up()
    await add_channels(api, other, other.representative_store_id, "theirs")

    # when: the same query shape, one caller after the other
    seen = {}
    for who, token, store_id in [
        ("first", first_member.token, first_store),
        ("second on first", second_member.token, first_store),
        ("second", second_member.token, second_store),
        ("other on first", other.token, first_store),
        ("other", other.token, other.representative_store_id),
        ("owner", owner.token, first_store),
    ]:
        store = (await api.gql(STORE, {"storeId": store_id}, token=token)).data["store"]
        seen[who] = [n["name"] for n in store["channels"]["nodes"]] if store else None

    # then
    assert seen == {
        "first": ["first 1", "first 2"],
        "second on first": None,
        "second": ["second 1"],
        "other on first": None,
        "other": ["theirs"],
        "owner": ["first 1", "first 2"],
    }


async def test_a_search_for_like_wildcards_matches_them_literally(
    api: Api, owner: SignedUp
) -> None:
    # given
    store = owner.representative_store_id
    await add_channels(api, owner, store, "50%_off \\ sale", "50 off", "50x_off", "5000ff")

    # when
    found = {
        term: [
            n["name"]
            for n in (await every_store(api, owner.token, first=50, search=term))[store]["nodes"]
        ]
        for term in ["%_", "50%", "_off", "\\", "off"]
    }

    # then
    assert found == {
        "%_": ["50%_off \\ sale"],
        "50%": ["50%_off \\ sale"],
        "_off": ["50%_off \\ sale", "50x_off"],
        "\\": ["50%_off \\ sale"],
        "off": ["50%_off \\ sale", "50 off", "50x_off"],
    }


async def test_more_stores_than_one_statement_takes_are_all_listed(
    api: Api, owner: SignedUp
) -> None:
    # given: 70 stores (statements take up to 64), each with one channel of its own
    stores = [owner.representative_store_id]
    for n in range(69):
        stores.append((await create_store(api, owner.token, f"Store {n:02d}"))[0])
    for index, store_id in enumerate(stores):
        await add_channels(api, owner, store_id, f"channel of {index}")

    # when
    pages = await every_store(api, owner.token, first=5)

    # then
    assert list(pages) == stores
    assert [page["nodes"] for page in pages.values()] == [
        [{"name": f"channel of {index}"}] for index in range(70)
    ]


async def test_more_concurrent_listings_than_pooled_connections_are_all_answered(
    api: Api, owner: SignedUp
) -> None:
    # given: each listing reads stores through the request's session, then channel pages
    store_id, _ = await create_store(api, owner.token, "Busy")
    await add_channels(api, owner, store_id, "one", "two")

    # when: more requests at once than the pool holds connections (10, and 10 more)
    results = await asyncio.gather(
        *(api.gql(EVERY_STORE, {"first": 10}, token=owner.token) for _ in range(30))
    )

    # then
    for result in results:
        stores = result.data["merchant"]["stores"]["nodes"]
        assert [n["name"] for n in stores[1]["channels"]["nodes"]] == ["one", "two"]


async def test_a_store_with_the_id_padding_once_had_gets_its_channels_once(
    api: Api, owner: SignedUp, app: Starlette
) -> None:
    # given a store whose primary key is 0 (the padding id batches used), beside two others:
    # three stores, which one statement pads to four
    zero_store = "store-00000000-0000-4000-8000-000000000000"
    async with app.state.app_state.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO stores (id, store_id, merchant_id, name, is_representative,"
                " created_at, updated_at) SELECT 0, :zero, merchant_id, 'Zero', :no,"
                " created_at, updated_at FROM stores WHERE store_id = :representative"
            ),
            {"zero": zero_store, "no": False, "representative": owner.representative_store_id},
        )
    other_store, _ = await create_store(api, owner.token, "Other")
    await add_channels(api, owner, zero_store, "zero 1", "zero 2")
    await add_channels(api, owner, other_store, "other 1")

    # when
    pages = await every_store(api, owner.token, first=10)

    # then each store has exactly its own channels, none twice
    assert len(pages) == 3
    assert pages[zero_store]["nodes"] == [{"name": "zero 1"}, {"name": "zero 2"}]
    assert pages[other_store]["nodes"] == [{"name": "other 1"}]
    assert pages[owner.representative_store_id]["nodes"] == []
