"""apiSecretDelete (OWNER and ADMIN only): the secret is refused on the very next request,
by every process, including one that had already verified and remembered it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from db.types import utcnow
from gql_api.ids import global_id
from tests.api_secrets.helpers import (
    DELETE,
    LOGIN,
    STORE_SECRETS,
    WHO_AM_I,
    assert_forbidden,
    assert_refused,
    codes_and_fields,
    delete,
    issue,
    listed,
    portone,
    second_instance,
    set_secret_columns,
)
from tests.support import Api, create_store, invite_and_join

NODE = "query Node($id: ID!) { node(id: $id) { id ... on ApiSecret { name } } }"

AUDIT = """
{
  merchant {
    auditEvents(action: "api_secret.delete") { nodes { action actor storeId targetId summary } }
  }
}
"""

FORBIDDEN_ROLES = ["MANAGER", "DEVELOPER", "READ_ONLY", "STORE_MANAGER", "STORE_READ_ONLY"]

PAGE = """
query Page($storeId: String!, $after: String) {
  store(storeId: $storeId) {
    apiSecrets(first: 1, after: $after) {
      nodes { name }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""


# --- list ----------------------------------------------------------------------------------


async def test_the_list_shows_live_secrets_with_their_metadata_only(api: Api) -> None:
    # given
    owner = await api.sign_up(email="lister@example.com")
    store = owner.representative_store_id
    forever = await issue(api, owner.token, store, name="Forever")
    weekly = await issue(api, owner.token, store, name="Weekly", expiration_days=7)
    gone = await issue(api, owner.token, store, name="Gone")
    assert (await delete(api, owner.token, gone.id))["userErrors"] == []
    reader = await invite_and_join(api, owner.token, "READ_ONLY")

    # when
    as_owner = await listed(api, owner.token, store)
    as_reader = await listed(api, reader.token, store)

    # then
    assert as_reader == as_owner
    by_name = {node["name"]: node for node in as_owner}
    assert set(by_name) == {"Forever", "Weekly"}
    assert by_name["Forever"] == forever.node
    assert by_name["Weekly"]["id"] == weekly.id
    assert by_name["Weekly"]["expiresAt"] is not None
    for node in as_owner:
        assert node["createdBy"]["email"] == "lister@example.com"
        assert node["hint"]
        assert node["createdAt"]
        assert node["lastUsedAt"] is None
        assert node["isExpired"] is False


async def test_the_list_is_paged(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store = owner.representative_store_id
    for name in ("One", "Two"):
        await issue(api, owner.token, store, name=name)

    # when
    first = (await api.gql(PAGE, {"storeId": store}, token=owner.token)).data
    cursor = first["store"]["apiSecrets"]["pageInfo"]["endCursor"]
    second = (await api.gql(PAGE, {"storeId": store, "after": cursor}, token=owner.token)).data

    # then
    assert first["store"]["apiSecrets"]["pageInfo"]["hasNextPage"] is True
    assert second["store"]["apiSecrets"]["pageInfo"]["hasNextPage"] is False
    names = first["store"]["apiSecrets"]["nodes"] + second["store"]["apiSecrets"]["nodes"]
    assert sorted(n["name"] for n in names) == ["One", "Two"]


async def test_a_store_manager_lists_only_its_sub_store_secrets(api: Api) -> None:
    # given
    owner = await api.sign_up()
    gangnam, _ = await create_store(api, owner.token, "Gangnam")
    await issue(api, owner.token, gangnam, name="Gangnam POS")
    main = await issue(api, owner.token, owner.representative_store_id, name="Main")
    manager = await invite_and_join(api, owner.token, "STORE_MANAGER", gangnam)

    # when
    own = await listed(api, manager.token, gangnam)
    other = await api.gql(
        STORE_SECRETS, {"storeId": owner.representative_store_id}, token=manager.token
    )
    node = await api.gql(NODE, {"id": main.id}, token=manager.token)

    # then
    assert [n["name"] for n in own] == ["Gangnam POS"]
    assert other.data["store"] is None
    assert node.data["node"] is None


async def test_another_merchant_cannot_see_a_secret(api: Api) -> None:
    # given
    owner = await api.sign_up()
    stranger = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    theirs = await issue(api, stranger.token, stranger.representative_store_id)

    for auth in ({"token": stranger.token}, {"authorization": portone(theirs.secret)}):
        # when
        node = await api.gql(NODE, {"id": issued.id}, **auth)
        store = await api.gql(STORE_SECRETS, {"storeId": owner.representative_store_id}, **auth)

        # then
        assert node.data["node"] is None
        assert store.data["store"] is None


# --- delete --------------------------------------------------------------------------------


async def test_an_owner_deletes_a_secret_and_the_next_request_is_refused(api: Api) -> None:
    # given: a secret in use (this process has verified and remembered it)
    owner = await api.sign_up()
    store = owner.representative_store_id
    issued = await issue(api, owner.token, store, name="Old ERP")
    kept = await issue(api, owner.token, store, name="New ERP")
    for _ in range(2):
        assert (await api.gql(WHO_AM_I, authorization=portone(issued.secret))).status == 200

    # when
    result = await api.gql(DELETE, {"id": issued.id}, token=owner.token)

    # then
    payload = result.data["apiSecretDelete"]
    assert payload == {"deletedApiSecretId": issued.id, "userErrors": []}
    assert_refused(
        await api.gql(WHO_AM_I, authorization=portone(issued.secret)), "REVOKED", issued.secret
    )
    assert [n["name"] for n in await listed(api, owner.token, store)] == ["New ERP"]
    assert (await api.gql(NODE, {"id": issued.id}, token=owner.token)).data["node"] is None
    # and: the other secret is untouched
    assert (await api.gql(WHO_AM_I, authorization=portone(kept.secret))).status == 200


async def test_an_admin_may_delete_a_secret_the_owner_issued(api: Api) -> None:
    # given
    owner = await api.sign_up()
    admin = await invite_and_join(api, owner.token, "ADMIN")
    sub_store, _ = await create_store(api, owner.token, "Gangnam")
    issued = await issue(api, owner.token, sub_store)

    # when
    payload = await delete(api, admin.token, issued.id)

    # then
    assert payload == {"deletedApiSecretId": issued.id, "userErrors": []}
    assert_refused(await api.gql(WHO_AM_I, authorization=portone(issued.secret)), "REVOKED")


@pytest.mark.parametrize("role", FORBIDDEN_ROLES)
async def test_other_roles_may_not_delete(api: Api, role: str) -> None:
    # given
    owner = await api.sign_up()
    sub_store, _ = await create_store(api, owner.token, "Gangnam")
    issued = await issue(api, owner.token, sub_store)
    scoped = role.startswith("STORE_")
    member = await invite_and_join(api, owner.token, role, sub_store if scoped else None)

    # when
    result = await api.gql(DELETE, {"id": issued.id}, token=member.token)

    # then
    assert_forbidden(result)
    assert result.body.get("data") is None
    assert len(await listed(api, owner.token, sub_store)) == 1
    assert (await api.gql(WHO_AM_I, authorization=portone(issued.secret))).status == 200


async def test_a_second_process_that_remembered_the_secret_refuses_it_after_deletion(
    api: Api, database_url: str
) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    async with second_instance(database_url) as other:
        # and: the other process has verified the secret and holds an access token for it
        for _ in range(3):
            assert (await other.gql(WHO_AM_I, authorization=portone(issued.secret))).status == 200
        login = await other.gql(LOGIN, {"apiSecret": issued.secret})
        access_token = login.data["apiSecretLogin"]["accessToken"]
        assert (await other.gql(WHO_AM_I, token=access_token)).status == 200

        # when: this process deletes it
        assert (await delete(api, owner.token, issued.id))["userErrors"] == []

        # then: the other process refuses it on its very next request
        by_secret = await other.gql(WHO_AM_I, authorization=portone(issued.secret))
        by_token = await other.gql(WHO_AM_I, token=access_token)
    assert_refused(by_secret, "REVOKED", issued.secret)
    assert_refused(by_token, "REVOKED", issued.secret, access_token)


async def test_a_second_process_that_remembered_the_secret_refuses_it_once_expired(
    api: Api, database_url: str
) -> None:
    # given
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id, expiration_days=1)
    async with second_instance(database_url) as other:
        for _ in range(2):
            assert (await other.gql(WHO_AM_I, authorization=portone(issued.secret))).status == 200

        # when
        await set_secret_columns(
            database_url, issued.pk, expires_at=utcnow() - timedelta(minutes=1)
        )

        # then
        result = await other.gql(WHO_AM_I, authorization=portone(issued.secret))
    assert_refused(result, "EXPIRED", issued.secret)


async def test_a_foreign_unknown_or_already_deleted_secret_is_not_found(api: Api) -> None:
    # given
    owner = await api.sign_up()
    other = await api.sign_up()
    theirs = await issue(api, other.token, other.representative_store_id)
    deleted = await issue(api, owner.token, owner.representative_store_id)
    assert (await delete(api, owner.token, deleted.id))["userErrors"] == []
    ids = [
        theirs.id,
        deleted.id,
        global_id("ApiSecret", 987654),
        other.merchant_id,
        "not-an-id",
    ]

    for secret_id in ids:
        # when
        payload = await delete(api, owner.token, secret_id)

        # then
        assert payload["deletedApiSecretId"] is None
        assert codes_and_fields(payload) == [("NOT_FOUND", ["input", "id"])]
    # and: the foreign secret still works
    assert (await api.gql(WHO_AM_I, authorization=portone(theirs.secret))).status == 200


async def test_deleting_is_an_audit_event_without_the_secret(api: Api) -> None:
    # given
    owner = await api.sign_up(email="deleting-owner@example.com")
    sub_store, _ = await create_store(api, owner.token, "Gangnam")
    issued = await issue(api, owner.token, sub_store, name="Retired key")

    # when
    assert (await delete(api, owner.token, issued.id))["userErrors"] == []

    # then
    events = (await api.gql(AUDIT, token=owner.token)).data["merchant"]["auditEvents"]["nodes"]
    assert len(events) == 1
    event = events[0]
    assert event["action"] == "api_secret.delete"
    assert event["actor"] == "deleting-owner@example.com"
    assert event["storeId"] == sub_store
    assert event["targetId"] == issued.id
    assert "Retired key" in event["summary"]
    assert issued.secret not in repr(event)
    assert issued.random_part not in repr(event)
