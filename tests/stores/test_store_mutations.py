"""storeCreate / storeUpdate / storeDelete: sub-stores (하위 상점) under the 대표상점."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import pytest

from tests.support import Api, SignedUp

STORE_CREATE = """
mutation Create($input: StoreCreateInput!) {
  storeCreate(input: $input) {
    store { id storeId name isRepresentative createdAt }
    userErrors { field code message }
  }
}
"""

STORE_UPDATE = """
mutation Rename($input: StoreUpdateInput!) {
  storeUpdate(input: $input) {
    store { id storeId name isRepresentative }
    userErrors { field code message }
  }
}
"""

STORE_DELETE = """
mutation Delete($input: StoreDeleteInput!) {
  storeDelete(input: $input) {
    deletedStoreId
    userErrors { field code message }
  }
}
"""

STORES = """
{
  merchant {
    stores { nodes { storeId name isRepresentative } }
    representativeStore { storeId name subStores { nodes { storeId name } } }
  }
}
"""

STORE = """
query Store($storeId: String!) {
  store(storeId: $storeId) { id storeId name isRepresentative }
}
"""

NODE = """
query Node($id: ID!) {
  node(id: $id) { id ... on Store { storeId name } }
}
"""

STORE_ID = re.compile(
    r"^store-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)


async def create_store(api: Api, owner: SignedUp, name: str) -> dict[str, Any]:
    result = await api.gql(STORE_CREATE, {"input": {"name": name}}, token=owner.token)
    payload = result.data["storeCreate"]
    assert payload["userErrors"] == [], payload
    store: dict[str, Any] = payload["store"]
    return store


async def store_names(api: Api, owner: SignedUp) -> list[str]:
    merchant = (await api.gql(STORES, token=owner.token)).data["merchant"]
    return [store["name"] for store in merchant["stores"]["nodes"]]


async def sub_store_ids(api: Api, owner: SignedUp) -> list[str]:
    merchant = (await api.gql(STORES, token=owner.token)).data["merchant"]
    return [store["storeId"] for store in merchant["representativeStore"]["subStores"]["nodes"]]


async def representative_name(api: Api, owner: SignedUp) -> str:
    merchant = (await api.gql(STORES, token=owner.token)).data["merchant"]
    name: str = merchant["representativeStore"]["name"]
    return name


def single_error(payload: dict[str, Any]) -> dict[str, Any]:
    assert len(payload["userErrors"]) == 1, payload
    error: dict[str, Any] = payload["userErrors"][0]
    assert error["message"]
    return error


# --- storeCreate ----------------------------------------------------------------------------


async def test_create_a_sub_store(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(STORE_CREATE, {"input": {"name": "Gangnam"}}, token=owner.token)

    # then
    payload = result.data["storeCreate"]
    assert payload["userErrors"] == []
    store = payload["store"]
    assert store["name"] == "Gangnam"
    assert store["isRepresentative"] is False
    assert STORE_ID.match(store["storeId"]), store["storeId"]
    assert store["storeId"] != owner.representative_store_id
    assert await sub_store_ids(api, owner) == [store["storeId"]]
    fetched = (await api.gql(STORE, {"storeId": store["storeId"]}, token=owner.token)).data
    assert fetched["store"] == {
        "id": store["id"],
        "storeId": store["storeId"],
        "name": "Gangnam",
        "isRepresentative": False,
    }


async def test_a_name_of_exactly_100_characters_is_accepted(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(STORE_CREATE, {"input": {"name": "상" * 100}}, token=owner.token)

    # then
    assert result.data["storeCreate"]["userErrors"] == []
    assert result.data["storeCreate"]["store"]["name"] == "상" * 100


@pytest.mark.parametrize(
    ("name", "code"),
    [("", "REQUIRED"), ("   ", "REQUIRED"), ("s" * 101, "INVALID_INPUT")],
    ids=["empty", "blank", "101-chars"],
)
async def test_create_with_a_bad_name_changes_nothing(api: Api, name: str, code: str) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(STORE_CREATE, {"input": {"name": name}}, token=owner.token)

    # then
    payload = result.data["storeCreate"]
    assert payload["store"] is None
    error = single_error(payload)
    assert error["code"] == code
    assert error["field"] == ["input", "name"]
    assert await sub_store_ids(api, owner) == []


async def test_a_name_is_unique_within_the_merchant(api: Api) -> None:
    # given
    owner = await api.sign_up()
    await create_store(api, owner, "Gangnam")

    # when
    result = await api.gql(STORE_CREATE, {"input": {"name": "Gangnam"}}, token=owner.token)

    # then
    payload = result.data["storeCreate"]
    assert payload["store"] is None
    error = single_error(payload)
    assert error["code"] == "NAME_TAKEN"
    assert error["field"] == ["input", "name"]
    assert len(await sub_store_ids(api, owner)) == 1


async def test_a_sub_store_cannot_take_the_representative_stores_name(api: Api) -> None:
    # given
    owner = await api.sign_up()
    name = await representative_name(api, owner)

    # when
    result = await api.gql(STORE_CREATE, {"input": {"name": name}}, token=owner.token)

    # then
    assert single_error(result.data["storeCreate"])["code"] == "NAME_TAKEN"


async def test_another_merchant_may_use_the_same_name(api: Api) -> None:
    # given
    first = await api.sign_up()
    second = await api.sign_up()
    await create_store(api, first, "Gangnam")

    # when
    result = await api.gql(STORE_CREATE, {"input": {"name": "Gangnam"}}, token=second.token)

    # then
    assert result.data["storeCreate"]["userErrors"] == []
    assert result.data["storeCreate"]["store"]["name"] == "Gangnam"


async def test_the_name_of_a_deleted_sub_store_can_be_reused(api: Api) -> None:
    # given
    owner = await api.sign_up()
    old = await create_store(api, owner, "Gangnam")
    await api.gql(STORE_DELETE, {"input": {"storeId": old["storeId"]}}, token=owner.token)

    # when
    result = await api.gql(STORE_CREATE, {"input": {"name": "Gangnam"}}, token=owner.token)

    # then
    payload = result.data["storeCreate"]
    assert payload["userErrors"] == []
    assert payload["store"]["storeId"] != old["storeId"]
    assert await sub_store_ids(api, owner) == [payload["store"]["storeId"]]


async def test_concurrent_creates_with_different_names_all_succeed(api: Api) -> None:
    # given
    owner = await api.sign_up()
    names = [f"Branch {i}" for i in range(6)]

    # when
    results = await asyncio.gather(
        *(api.gql(STORE_CREATE, {"input": {"name": name}}, token=owner.token) for name in names)
    )

    # then
    for result in results:
        assert result.error_codes == []
        assert result.data["storeCreate"]["userErrors"] == []
    assert sorted((await store_names(api, owner))[1:]) == names


async def test_concurrent_creates_with_one_name_create_one_store(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    results = await asyncio.gather(
        *(
            api.gql(STORE_CREATE, {"input": {"name": "Gangnam"}}, token=owner.token)
            for _ in range(4)
        )
    )

    # then
    for result in results:
        assert result.error_codes == []
    codes = sorted(
        tuple(e["code"] for e in result.data["storeCreate"]["userErrors"]) for result in results
    )
    assert codes == [(), ("NAME_TAKEN",), ("NAME_TAKEN",), ("NAME_TAKEN",)]
    assert (await store_names(api, owner))[1:] == ["Gangnam"]


@pytest.mark.parametrize("name", ["Gang\x07nam", "Gang\x1bnam", "Gang\u200bnam"])
async def test_a_name_with_control_characters_is_invalid(api: Api, name: str) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(STORE_CREATE, {"input": {"name": name}}, token=owner.token)

    # then
    error = single_error(result.data["storeCreate"])
    assert error["code"] == "INVALID_INPUT"
    assert error["field"] == ["input", "name"]
    assert await sub_store_ids(api, owner) == []


async def test_a_nul_byte_in_a_name_is_refused_cleanly(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(STORE_CREATE, {"input": {"name": "Gang\x00nam"}}, token=owner.token)

    # then: a bad request or an invalid name, never a server error
    assert result.status < 500
    if result.error_codes:
        assert result.error_codes == ["BAD_REQUEST"]
    else:
        assert single_error(result.data["storeCreate"])["code"] == "INVALID_INPUT"
    assert await sub_store_ids(api, owner) == []


async def test_create_without_a_session_is_unauthenticated(api: Api) -> None:
    # when
    result = await api.gql(STORE_CREATE, {"input": {"name": "Gangnam"}})

    # then
    assert result.error_codes == ["UNAUTHENTICATED"]
    assert result.body.get("data") is None


# --- storeUpdate ----------------------------------------------------------------------------


async def test_rename_a_sub_store(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store = await create_store(api, owner, "Gangnam")

    # when
    result = await api.gql(
        STORE_UPDATE, {"input": {"storeId": store["storeId"], "name": "Seocho"}}, token=owner.token
    )

    # then
    payload = result.data["storeUpdate"]
    assert payload["userErrors"] == []
    assert payload["store"] == {
        "id": store["id"],
        "storeId": store["storeId"],
        "name": "Seocho",
        "isRepresentative": False,
    }
    fetched = (await api.gql(STORE, {"storeId": store["storeId"]}, token=owner.token)).data
    assert fetched["store"]["name"] == "Seocho"


async def test_rename_the_representative_store(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(
        STORE_UPDATE,
        {"input": {"storeId": owner.representative_store_id, "name": "Head office"}},
        token=owner.token,
    )

    # then
    payload = result.data["storeUpdate"]
    assert payload["userErrors"] == []
    assert payload["store"]["name"] == "Head office"
    assert payload["store"]["isRepresentative"] is True
    assert await representative_name(api, owner) == "Head office"


async def test_renaming_a_store_to_its_own_name_is_fine(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store = await create_store(api, owner, "Gangnam")

    # when
    result = await api.gql(
        STORE_UPDATE,
        {"input": {"storeId": store["storeId"], "name": "Gangnam"}},
        token=owner.token,
    )

    # then
    assert result.data["storeUpdate"]["userErrors"] == []
    assert result.data["storeUpdate"]["store"]["name"] == "Gangnam"


async def test_rename_to_a_name_in_use_is_name_taken(api: Api) -> None:
    # given
    owner = await api.sign_up()
    await create_store(api, owner, "Gangnam")
    store = await create_store(api, owner, "Seocho")

    # when
    result = await api.gql(
        STORE_UPDATE,
        {"input": {"storeId": store["storeId"], "name": "Gangnam"}},
        token=owner.token,
    )

    # then
    payload = result.data["storeUpdate"]
    assert payload["store"] is None
    error = single_error(payload)
    assert error["code"] == "NAME_TAKEN"
    assert error["field"] == ["input", "name"]
    assert sorted((await store_names(api, owner))[1:]) == ["Gangnam", "Seocho"]


async def test_rename_to_the_name_of_a_deleted_store_is_fine(api: Api) -> None:
    # given
    owner = await api.sign_up()
    gone = await create_store(api, owner, "Gangnam")
    store = await create_store(api, owner, "Seocho")
    await api.gql(STORE_DELETE, {"input": {"storeId": gone["storeId"]}}, token=owner.token)

    # when
    result = await api.gql(
        STORE_UPDATE,
        {"input": {"storeId": store["storeId"], "name": "Gangnam"}},
        token=owner.token,
    )

    # then
    assert result.data["storeUpdate"]["userErrors"] == []
    assert result.data["storeUpdate"]["store"]["name"] == "Gangnam"


@pytest.mark.parametrize(
    ("name", "code"),
    [("", "REQUIRED"), ("   ", "REQUIRED"), ("s" * 101, "INVALID_INPUT")],
    ids=["empty", "blank", "101-chars"],
)
async def test_rename_with_a_bad_name_changes_nothing(api: Api, name: str, code: str) -> None:
    # given
    owner = await api.sign_up()
    store = await create_store(api, owner, "Gangnam")

    # when
    result = await api.gql(
        STORE_UPDATE, {"input": {"storeId": store["storeId"], "name": name}}, token=owner.token
    )

    # then
    payload = result.data["storeUpdate"]
    assert payload["store"] is None
    error = single_error(payload)
    assert error["code"] == code
    assert error["field"] == ["input", "name"]
    assert (await store_names(api, owner))[1:] == ["Gangnam"]


async def test_rename_without_a_session_is_unauthenticated(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(
        STORE_UPDATE, {"input": {"storeId": owner.representative_store_id, "name": "Hacked"}}
    )

    # then
    assert result.error_codes == ["UNAUTHENTICATED"]
    assert result.body.get("data") is None
    assert await representative_name(api, owner) != "Hacked"


# --- storeDelete ----------------------------------------------------------------------------


async def test_delete_a_sub_store(api: Api) -> None:
    # given
    owner = await api.sign_up()
    kept = await create_store(api, owner, "Gangnam")
    store = await create_store(api, owner, "Seocho")

    # when
    result = await api.gql(
        STORE_DELETE, {"input": {"storeId": store["storeId"]}}, token=owner.token
    )

    # then
    assert result.data["storeDelete"] == {"deletedStoreId": store["storeId"], "userErrors": []}
    assert await sub_store_ids(api, owner) == [kept["storeId"]]


async def test_the_representative_store_cannot_be_deleted(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(
        STORE_DELETE, {"input": {"storeId": owner.representative_store_id}}, token=owner.token
    )

    # then
    payload = result.data["storeDelete"]
    assert payload["deletedStoreId"] is None
    error = single_error(payload)
    assert error["code"] == "REPRESENTATIVE_STORE_UNDELETABLE"
    assert error["field"] == ["input", "storeId"]
    fetched = await api.gql(STORE, {"storeId": owner.representative_store_id}, token=owner.token)
    assert fetched.data["store"]["isRepresentative"] is True


async def test_a_deleted_store_is_gone_everywhere(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store = await create_store(api, owner, "Gangnam")
    await api.gql(STORE_DELETE, {"input": {"storeId": store["storeId"]}}, token=owner.token)

    # when
    merchant = (await api.gql(STORES, token=owner.token)).data["merchant"]
    by_store_id = await api.gql(STORE, {"storeId": store["storeId"]}, token=owner.token)
    by_node_id = await api.gql(NODE, {"id": store["id"]}, token=owner.token)

    # then
    assert [s["storeId"] for s in merchant["stores"]["nodes"]] == [owner.representative_store_id]
    assert merchant["representativeStore"]["subStores"]["nodes"] == []
    assert by_store_id.data == {"store": None}
    assert by_node_id.data == {"node": None}


async def test_a_deleted_store_cannot_be_renamed_or_deleted_again(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store = await create_store(api, owner, "Gangnam")
    await api.gql(STORE_DELETE, {"input": {"storeId": store["storeId"]}}, token=owner.token)

    # when
    renamed = await api.gql(
        STORE_UPDATE, {"input": {"storeId": store["storeId"], "name": "Back"}}, token=owner.token
    )
    deleted = await api.gql(
        STORE_DELETE, {"input": {"storeId": store["storeId"]}}, token=owner.token
    )

    # then
    for payload in (renamed.data["storeUpdate"], deleted.data["storeDelete"]):
        error = single_error(payload)
        assert error["code"] == "NOT_FOUND"
        assert error["field"] == ["input", "storeId"]
    assert renamed.data["storeUpdate"]["store"] is None
    assert deleted.data["storeDelete"]["deletedStoreId"] is None
    assert await sub_store_ids(api, owner) == []


async def test_delete_without_a_session_is_unauthenticated(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store = await create_store(api, owner, "Gangnam")

    # when
    result = await api.gql(STORE_DELETE, {"input": {"storeId": store["storeId"]}})

    # then
    assert result.error_codes == ["UNAUTHENTICATED"]
    assert result.body.get("data") is None
    assert await sub_store_ids(api, owner) == [store["storeId"]]


# --- stores that do not exist for the caller ------------------------------------------------

MISSING_STORE_IDS = {
    "unknown": f"store-{uuid.uuid4()}",
    "malformed": "not-a-store-id",
    "empty": "",
    "uppercase": f"STORE-{uuid.uuid4()}",
}


@pytest.mark.parametrize("store_id", MISSING_STORE_IDS.values(), ids=MISSING_STORE_IDS.keys())
async def test_update_and_delete_of_a_missing_store_are_not_found(api: Api, store_id: str) -> None:
    # given
    owner = await api.sign_up()

    # when
    renamed = await api.gql(
        STORE_UPDATE, {"input": {"storeId": store_id, "name": "X"}}, token=owner.token
    )
    deleted = await api.gql(STORE_DELETE, {"input": {"storeId": store_id}}, token=owner.token)

    # then
    for payload in (renamed.data["storeUpdate"], deleted.data["storeDelete"]):
        error = single_error(payload)
        assert error["code"] == "NOT_FOUND"
        assert error["field"] == ["input", "storeId"]


async def test_another_merchants_store_is_not_found(api: Api) -> None:
    # given
    victim = await api.sign_up()
    victims_store = await create_store(api, victim, "Gangnam")
    attacker = await api.sign_up()
    targets = [victim.representative_store_id, victims_store["storeId"]]

    for store_id in targets:
        # when
        renamed = await api.gql(
            STORE_UPDATE, {"input": {"storeId": store_id, "name": "Owned"}}, token=attacker.token
        )
        deleted = await api.gql(
            STORE_DELETE, {"input": {"storeId": store_id}}, token=attacker.token
        )

        # then
        for payload in (renamed.data["storeUpdate"], deleted.data["storeDelete"]):
            error = single_error(payload)
            assert error["code"] == "NOT_FOUND"
            assert error["field"] == ["input", "storeId"]
    assert "Owned" not in await store_names(api, victim)
    assert await sub_store_ids(api, victim) == [victims_store["storeId"]]


async def test_another_merchants_store_answers_like_an_unknown_one(api: Api) -> None:
    # given
    victim = await api.sign_up()
    attacker = await api.sign_up()
    unknown = f"store-{uuid.uuid4()}"

    # when
    theirs = await api.gql(
        STORE_DELETE, {"input": {"storeId": victim.representative_store_id}}, token=attacker.token
    )
    missing = await api.gql(STORE_DELETE, {"input": {"storeId": unknown}}, token=attacker.token)

    # then
    assert theirs.body == missing.body


STORE_CONTENTS = """
mutation Fill($s: String!) {
  channelCreate(input: {storeId: $s, mode: TEST, pgProvider: KCP_V2,
                        moduleCode: "KCP_V2_PAYMENT", name: "KCP test", pgMerchantId: "T0000"}) {
    channel { id } userErrors { code } }
  apiSecretIssue(input: {storeId: $s, name: "Partner"}) { secret userErrors { code } }
}
"""


async def test_deleting_a_sub_store_ends_its_channels_and_secrets(api: Api) -> None:
    # given a sub-store with a channel and an API secret
    owner = await api.sign_up()
    store_id = (await create_store(api, owner, "Closing branch"))["storeId"]
    filled = await api.gql(STORE_CONTENTS, {"s": store_id}, token=owner.token)
    channel_id = filled.data["channelCreate"]["channel"]["id"]
    secret = filled.data["apiSecretIssue"]["secret"]

    # when the sub-store is deleted
    deleted = await api.gql(STORE_DELETE, {"input": {"storeId": store_id}}, token=owner.token)
    assert deleted.data["storeDelete"]["userErrors"] == []

    # then its channel no longer resolves and its secret is refused
    node = await api.gql(
        "query($id: ID!) { node(id: $id) { id } }", {"id": channel_id}, token=owner.token
    )
    assert node.data == {"node": None}
    refused = await api.gql("{ viewer { role } }", authorization=f"PortOne {secret}")
    assert refused.status == 401
    assert refused.error_codes == ["UNAUTHENTICATED"]
