"""Reading stores: merchant.stores, subStores, store(storeId:), node(id:), and pagination."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from gql_api.node import to_global_id
from gql_api.pagination import encode_cursor
from tests.support import Api, SignedUp

STORE_CREATE = """
mutation Create($input: StoreCreateInput!) {
  storeCreate(input: $input) { store { id storeId name } userErrors { code } }
}
"""

STORES = """
query Stores($first: Int, $after: String, $last: Int, $before: String) {
  merchant {
    stores(first: $first, after: $after, last: $last, before: $before) {
      edges { cursor node { storeId name isRepresentative } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}
"""

SUB_STORES = """
query SubStores($first: Int, $after: String, $last: Int, $before: String) {
  merchant {
    representativeStore {
      subStores(first: $first, after: $after, last: $last, before: $before) {
        edges { cursor node { storeId name isRepresentative } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      }
    }
  }
}
"""

STORE = """
query Store($storeId: String!) {
  store(storeId: $storeId) {
    storeId
    isRepresentative
    subStores { edges { node { storeId } } pageInfo { hasNextPage hasPreviousPage } }
  }
}
"""

NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename
    id
    ... on Store { storeId }
    ... on Merchant { name }
    ... on User { email }
  }
}
"""

IDS = """
{
  viewer {
    user { id }
    merchant { id representativeStore { id } }
  }
}
"""


async def create_stores(api: Api, owner: SignedUp, *names: str) -> list[dict[str, Any]]:
    stores = []
    for name in names:
        result = await api.gql(STORE_CREATE, {"input": {"name": name}}, token=owner.token)
        payload = result.data["storeCreate"]
        assert payload["userErrors"] == [], payload
        stores.append(payload["store"])
    return stores


async def sub_stores_page(api: Api, owner: SignedUp, **arguments: Any) -> dict[str, Any]:
    result = await api.gql(SUB_STORES, arguments, token=owner.token)
    page: dict[str, Any] = result.data["merchant"]["representativeStore"]["subStores"]
    return page


def names(page: dict[str, Any]) -> list[str]:
    return [edge["node"]["name"] for edge in page["edges"]]


async def global_ids(api: Api, owner: SignedUp) -> dict[str, str]:
    viewer = (await api.gql(IDS, token=owner.token)).data["viewer"]
    return {
        "User": viewer["user"]["id"],
        "Merchant": viewer["merchant"]["id"],
        "Store": viewer["merchant"]["representativeStore"]["id"],
    }


# --- listing --------------------------------------------------------------------------------


async def test_stores_lists_the_representative_store_first_then_sub_stores(api: Api) -> None:
    # given
    owner = await api.sign_up()
    created = await create_stores(api, owner, "Zeta", "Alpha", "Mu")

    # when
    result = await api.gql(STORES, token=owner.token)

    # then
    nodes = [edge["node"] for edge in result.data["merchant"]["stores"]["edges"]]
    assert [n["storeId"] for n in nodes] == [
        owner.representative_store_id,
        *(store["storeId"] for store in created),
    ]
    assert [n["isRepresentative"] for n in nodes] == [True, False, False, False]
    page_info = result.data["merchant"]["stores"]["pageInfo"]
    assert page_info["hasNextPage"] is False


async def test_sub_stores_of_the_representative_store_exclude_itself(api: Api) -> None:
    # given
    owner = await api.sign_up()
    await create_stores(api, owner, "Gangnam", "Seocho")

    # when
    page = await sub_stores_page(api, owner)

    # then
    assert names(page) == ["Gangnam", "Seocho"]
    assert all(edge["node"]["isRepresentative"] is False for edge in page["edges"])


async def test_a_sub_store_has_no_sub_stores(api: Api) -> None:
    # given
    owner = await api.sign_up()
    gangnam, _ = await create_stores(api, owner, "Gangnam", "Seocho")

    # when
    result = await api.gql(STORE, {"storeId": gangnam["storeId"]}, token=owner.token)

    # then
    store = result.data["store"]
    assert store["isRepresentative"] is False
    assert store["subStores"] == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "hasPreviousPage": False},
    }


async def test_a_new_merchant_has_no_sub_stores(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    page = await sub_stores_page(api, owner)

    # then
    assert page["edges"] == []
    assert page["pageInfo"]["hasNextPage"] is False
    assert page["pageInfo"]["hasPreviousPage"] is False


async def test_merchant_without_a_session_is_unauthenticated(api: Api) -> None:
    # when
    result = await api.gql(STORES)

    # then
    assert result.error_codes == ["UNAUTHENTICATED"]


# --- pagination -----------------------------------------------------------------------------

SEVEN = ("S1", "S2", "S3", "S4", "S5", "S6", "S7")


async def test_page_forward_through_sub_stores(api: Api) -> None:
    # given
    owner = await api.sign_up()
    await create_stores(api, owner, *SEVEN)

    # when
    first = await sub_stores_page(api, owner, first=3)
    second = await sub_stores_page(api, owner, first=3, after=first["pageInfo"]["endCursor"])
    third = await sub_stores_page(api, owner, first=3, after=second["pageInfo"]["endCursor"])

    # then
    assert names(first) == ["S1", "S2", "S3"]
    assert names(second) == ["S4", "S5", "S6"]
    assert names(third) == ["S7"]
    assert first["pageInfo"]["hasNextPage"] is True
    assert second["pageInfo"]["hasNextPage"] is True
    assert third["pageInfo"]["hasNextPage"] is False
    assert first["pageInfo"]["hasPreviousPage"] is False
    for page in (first, second, third):
        assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]


async def test_page_backward_through_sub_stores(api: Api) -> None:
    # given
    owner = await api.sign_up()
    await create_stores(api, owner, *SEVEN)

    # when
    last = await sub_stores_page(api, owner, last=3)
    middle = await sub_stores_page(api, owner, last=3, before=last["pageInfo"]["startCursor"])
    start = await sub_stores_page(api, owner, last=3, before=middle["pageInfo"]["startCursor"])

    # then
    assert names(last) == ["S5", "S6", "S7"]
    assert names(middle) == ["S2", "S3", "S4"]
    assert names(start) == ["S1"]
    assert last["pageInfo"]["hasPreviousPage"] is True
    assert middle["pageInfo"]["hasPreviousPage"] is True
    assert start["pageInfo"]["hasPreviousPage"] is False
    assert last["pageInfo"]["hasNextPage"] is False


async def test_a_cursor_stays_valid_when_stores_are_added(api: Api) -> None:
    # given
    owner = await api.sign_up()
    await create_stores(api, owner, *SEVEN)
    first = await sub_stores_page(api, owner, first=3)
    await create_stores(api, owner, "S8")

    # when
    second = await sub_stores_page(api, owner, first=3, after=first["pageInfo"]["endCursor"])

    # then
    assert names(second) == ["S4", "S5", "S6"]


async def test_page_through_all_stores_of_the_merchant(api: Api) -> None:
    # given
    owner = await api.sign_up()
    await create_stores(api, owner, *SEVEN)
    seen: list[str] = []
    after = None

    # when
    for _ in range(10):
        result = await api.gql(STORES, {"first": 3, "after": after}, token=owner.token)
        connection = result.data["merchant"]["stores"]
        seen.extend(edge["node"]["storeId"] for edge in connection["edges"])
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]

    # then
    assert len(seen) == 8
    assert seen[0] == owner.representative_store_id
    assert len(set(seen)) == 8


async def test_first_zero_and_first_100_are_allowed(api: Api) -> None:
    # given
    owner = await api.sign_up()
    await create_stores(api, owner, "S1")

    # when
    none = await sub_stores_page(api, owner, first=0)
    most = await sub_stores_page(api, owner, first=100)

    # then
    assert none["edges"] == []
    assert names(most) == ["S1"]


BAD_PAGE_ARGUMENTS = {
    "first-101": {"first": 101},
    "last-101": {"last": 101},
    "first-negative": {"first": -1},
    "garbage-after": {"first": 3, "after": "garbage"},
    "garbage-before": {"last": 3, "before": "!!not a cursor!!"},
    "foreign-base64-after": {"after": "aGVsbG8gd29ybGQ"},
    "out-of-range-after": {"first": 3, "after": encode_cursor(10**30)},
    "out-of-range-before": {"last": 3, "before": encode_cursor(-(10**30))},
}


@pytest.mark.parametrize("query", [STORES, SUB_STORES], ids=["stores", "subStores"])
@pytest.mark.parametrize(
    "arguments", BAD_PAGE_ARGUMENTS.values(), ids=list(BAD_PAGE_ARGUMENTS.keys())
)
async def test_bad_page_arguments_are_a_bad_request(
    api: Api, query: str, arguments: dict[str, Any]
) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(query, arguments, token=owner.token)

    # then
    assert result.status < 500
    assert result.error_codes == ["BAD_REQUEST"]


async def test_bad_page_arguments_on_a_sub_stores_sub_stores_are_a_bad_request(
    api: Api,
) -> None:
    # given
    owner = await api.sign_up()
    (store,) = await create_stores(api, owner, "Gangnam")
    query = """
    query ($storeId: String!) {
      store(storeId: $storeId) { subStores(first: 101) { nodes { id } } }
    }
    """

    # when
    result = await api.gql(query, {"storeId": store["storeId"]}, token=owner.token)

    # then
    assert result.status < 500
    assert result.error_codes == ["BAD_REQUEST"]


# --- another merchant's objects do not exist --------------------------------------------------


async def test_store_by_store_id_of_another_merchant_is_null(api: Api) -> None:
    # given
    me = await api.sign_up()
    other = await api.sign_up()
    (their_sub_store,) = await create_stores(api, other, "Theirs")
    unknown = await api.gql(STORE, {"storeId": f"store-{uuid.uuid4()}"}, token=me.token)

    for store_id in (other.representative_store_id, their_sub_store["storeId"]):
        # when
        result = await api.gql(STORE, {"storeId": store_id}, token=me.token)

        # then
        assert result.body == unknown.body == {"data": {"store": None}}


async def test_store_by_a_malformed_store_id_is_null(api: Api) -> None:
    # given
    me = await api.sign_up()

    # when
    result = await api.gql(STORE, {"storeId": "definitely not a store"}, token=me.token)

    # then
    assert result.body == {"data": {"store": None}}


async def test_my_own_node_ids_resolve(api: Api) -> None:
    # given
    me = await api.sign_up()
    ids = await global_ids(api, me)

    for type_name, global_id in ids.items():
        # when
        result = await api.gql(NODE, {"id": global_id}, token=me.token)

        # then
        node = result.data["node"]
        assert node["__typename"] == type_name
        assert node["id"] == global_id
    store = (await api.gql(NODE, {"id": ids["Store"]}, token=me.token)).data["node"]
    assert store["storeId"] == me.representative_store_id
    user = (await api.gql(NODE, {"id": ids["User"]}, token=me.token)).data["node"]
    assert user["email"] == me.email


@pytest.mark.parametrize("type_name", ["Store", "Merchant", "User"])
async def test_node_ids_of_another_merchant_are_null_like_missing_ones(
    api: Api, type_name: str
) -> None:
    # given
    me = await api.sign_up()
    other = await api.sign_up()
    theirs = (await global_ids(api, other))[type_name]
    missing = await api.gql(NODE, {"id": to_global_id(type_name, 987_654_321)}, token=me.token)

    # when
    result = await api.gql(NODE, {"id": theirs}, token=me.token)

    # then
    assert result.body == missing.body == {"data": {"node": None}}
    assert (await api.gql(NODE, {"id": theirs}, token=other.token)).data["node"]["id"] == theirs


async def test_another_merchants_sub_store_node_is_null(api: Api) -> None:
    # given
    me = await api.sign_up()
    other = await api.sign_up()
    (theirs,) = await create_stores(api, other, "Theirs")

    # when
    result = await api.gql(NODE, {"id": theirs["id"]}, token=me.token)

    # then
    assert result.body == {"data": {"node": None}}


@pytest.mark.parametrize("garbage", ["", "nope", "!!!", "U3RvcmU6YWJj", "Tm9wZToxMjM"])
async def test_garbage_node_ids_are_null(api: Api, garbage: str) -> None:
    # given
    me = await api.sign_up()

    # when
    result = await api.gql(NODE, {"id": garbage}, token=me.token)

    # then
    assert result.body == {"data": {"node": None}}


async def test_node_without_a_session_is_unauthenticated(api: Api) -> None:
    # given
    other = await api.sign_up()
    theirs = (await global_ids(api, other))["Store"]

    # when
    result = await api.gql(NODE, {"id": theirs})

    # then
    assert result.error_codes == ["UNAUTHENTICATED"]
    assert result.body.get("data") is None or result.body["data"]["node"] is None


@pytest.mark.parametrize("key", [2**31, 2**63 - 1])
async def test_a_cursor_past_every_store_is_never_an_internal_error(api: Api, key: int) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(STORES, {"first": 3, "after": encode_cursor(key)}, token=owner.token)

    # then: an empty page, or a bad request; never a server error
    assert result.status < 500
    if result.error_codes:
        assert result.error_codes == ["BAD_REQUEST"]
    else:
        assert result.data["merchant"]["stores"]["edges"] == []


@pytest.mark.parametrize("type_name", ["Store", "Merchant", "User"])
@pytest.mark.parametrize("pk", [2**31, 10**17])
async def test_node_ids_with_huge_keys_are_null(api: Api, type_name: str, pk: int) -> None:
    # given
    me = await api.sign_up()

    # when
    result = await api.gql(NODE, {"id": to_global_id(type_name, pk)}, token=me.token)

    # then
    assert result.body == {"data": {"node": None}}
