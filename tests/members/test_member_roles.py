"""memberRoleUpdate, memberRemove, merchantOwnershipTransfer and the developer limit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlmodel import SQLModel

from db.models import Invitation
from gql_api.ids import global_id
from tests.support import (
    ACCEPT,
    INVITE,
    PASSWORD,
    Api,
    GraphQLResponse,
    Joined,
    connect,
    create_store,
    invite_and_join,
)

ROLE_UPDATE = """
mutation RoleUpdate($input: MemberRoleUpdateInput!) {
  memberRoleUpdate(input: $input) {
    member { id role user { email } store { storeId } }
    userErrors { field code message }
  }
}
"""

REMOVE = """
mutation Remove($memberId: ID!) {
  memberRemove(input: { memberId: $memberId }) {
    removedMemberId
    userErrors { field code message }
  }
}
"""

TRANSFER = """
mutation Transfer($memberId: ID!) {
  merchantOwnershipTransfer(input: { memberId: $memberId }) {
    previousOwner { id role user { email } }
    newOwner { id role user { email } }
    userErrors { field code message }
  }
}
"""

MEMBERS = """
{
  merchant {
    members { nodes { id role user { email } store { storeId } } }
  }
}
"""

VIEWER = """
{
  viewer { role }
  merchant { stores { nodes { storeId } } }
}
"""

AUDIT = "{ merchant { auditEvents(first: 1) { nodes { action } } } }"

STORE_DELETE = """
mutation Delete($storeId: String!) {
  storeDelete(input: { storeId: $storeId }) { deletedStoreId userErrors { code } }
}
"""

SESSION_CREATE = """
mutation LogIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) {
    session { token }
    userErrors { field code }
  }
}
"""

DOMAIN_TABLES = ("merchants", "stores", "users", "invitations", "audit_events")
DEVELOPER_LIMIT = 10


# --- helpers --------------------------------------------------------------------------------


async def stored_rows(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the domain tables, to show that nothing changed."""
    tables = SQLModel.metadata.tables
    async with connect(database_url) as conn:
        return {
            name: [
                tuple(row)
                for row in await conn.execute(select(tables[name]).order_by(tables[name].c.id))
            ]
            for name in DOMAIN_TABLES
        }


async def owner_member_id(api: Api, token: str) -> str:
    nodes = (await api.gql(MEMBERS, token=token)).data["merchant"]["members"]["nodes"]
    owners = [node["id"] for node in nodes if node["role"] == "OWNER"]
    assert len(owners) == 1, nodes
    owner_id: str = owners[0]
    return owner_id


async def members(api: Api, token: str) -> list[tuple[str, str, str | None]]:
    """(email, role, storeId) of each member the caller sees, oldest first."""
    nodes = (await api.gql(MEMBERS, token=token)).data["merchant"]["members"]["nodes"]
    return [
        (node["user"]["email"], node["role"], node["store"]["storeId"] if node["store"] else None)
        for node in nodes
    ]


async def role_update(
    api: Api, token: str, member_id: str, role: str, store_id: str | None = None
) -> dict[str, Any]:
    variables: dict[str, Any] = {"memberId": member_id, "role": role}
    if store_id is not None:
        variables["storeId"] = store_id
    result = await api.gql(ROLE_UPDATE, {"input": variables}, token=token)
    payload: dict[str, Any] = result.data["memberRoleUpdate"]
    return payload


async def remove(api: Api, token: str, member_id: str) -> dict[str, Any]:
    payload: dict[str, Any] = (await api.gql(REMOVE, {"memberId": member_id}, token=token)).data[
        "memberRemove"
    ]
    return payload


async def transfer(api: Api, token: str, member_id: str) -> GraphQLResponse:
    return await api.gql(TRANSFER, {"memberId": member_id}, token=token)


async def invite(
    api: Api, token: str, email: str, role: str, store_id: str | None = None
) -> dict[str, Any]:
    variables: dict[str, Any] = {"email": email, "role": role}
    if store_id is not None:
        variables["storeId"] = store_id
    payload: dict[str, Any] = (await api.gql(INVITE, {"input": variables}, token=token)).data[
        "memberInvite"
    ]
    return payload


async def accept(api: Api, token: str) -> dict[str, Any]:
    variables = {"input": {"token": token, "name": "New Member", "password": PASSWORD}}
    payload: dict[str, Any] = (await api.gql(ACCEPT, variables)).data["invitationAccept"]
    return payload


async def viewer_role(api: Api, token: str) -> str:
    role: str = (await api.gql(VIEWER, token=token)).data["viewer"]["role"]
    return role


async def visible_store_ids(api: Api, token: str) -> list[str]:
    nodes = (await api.gql(VIEWER, token=token)).data["merchant"]["stores"]["nodes"]
    return [node["storeId"] for node in nodes]


def single_error(payload: dict[str, Any], code: str, field: list[str]) -> None:
    assert len(payload["userErrors"]) == 1, payload
    error = payload["userErrors"][0]
    assert error["code"] == code, payload
    assert error["field"] == field, payload
    assert error["message"]


def assert_refused_with_401(result: GraphQLResponse) -> None:
    assert result.status == 401
    assert result.body.get("data") is None
    assert result.error_codes == ["UNAUTHENTICATED"]


async def join(api: Api, token: str, role: str, store_id: str | None = None) -> Joined:
    return await invite_and_join(api, token, role, store_id)


# --- memberRoleUpdate -----------------------------------------------------------------------


async def test_the_owner_changes_a_role_and_it_applies_on_the_next_request(api: Api) -> None:
    # given
    owner = await api.sign_up()
    admin = await join(api, owner.token, "ADMIN")
    assert (await api.gql(AUDIT, token=admin.token)).error_codes == []

    # when
    payload = await role_update(api, owner.token, admin.member_id, "DEVELOPER")

    # then
    assert payload["userErrors"] == []
    assert payload["member"]["id"] == admin.member_id
    assert payload["member"]["role"] == "DEVELOPER"
    assert await viewer_role(api, admin.token) == "DEVELOPER"
    assert (await api.gql(AUDIT, token=admin.token)).error_codes == ["FORBIDDEN"]
    assert (admin.email, "DEVELOPER", None) in await members(api, owner.token)


async def test_a_promotion_applies_on_the_next_request(api: Api) -> None:
    # given
    owner = await api.sign_up()
    member = await join(api, owner.token, "READ_ONLY")
    assert (await api.gql(AUDIT, token=member.token)).error_codes == ["FORBIDDEN"]

    # when
    payload = await role_update(api, owner.token, member.member_id, "ADMIN")

    # then
    assert payload["userErrors"] == []
    assert (await api.gql(AUDIT, token=member.token)).error_codes == []
    assert (await invite(api, member.token, "new@example.com", "MANAGER"))["userErrors"] == []


async def test_binding_a_member_to_a_sub_store_and_back(api: Api) -> None:
    # given
    owner = await api.sign_up()
    gangnam, _ = await create_store(api, owner.token, "Gangnam")
    member = await join(api, owner.token, "READ_ONLY")
    everything = [owner.representative_store_id, gangnam]
    assert await visible_store_ids(api, member.token) == everything

    # when
    bound = await role_update(api, owner.token, member.member_id, "STORE_READ_ONLY", gangnam)

    # then
    assert bound["userErrors"] == []
    assert bound["member"]["store"] == {"storeId": gangnam}
    assert await visible_store_ids(api, member.token) == [gangnam]

    # when
    unbound = await role_update(api, owner.token, member.member_id, "READ_ONLY")

    # then
    assert unbound["userErrors"] == []
    assert unbound["member"]["store"] is None
    assert await visible_store_ids(api, member.token) == everything
    assert (member.email, "READ_ONLY", None) in await members(api, owner.token)


async def test_a_role_update_on_another_merchants_member_is_not_found(
    api: Api, database_url: str
) -> None:
    # given
    owner = await api.sign_up()
    other = await api.sign_up()
    stranger = await join(api, other.token, "READ_ONLY")
    before = await stored_rows(database_url)

    # when
    payload = await role_update(api, owner.token, stranger.member_id, "ADMIN")

    # then
    single_error(payload, "NOT_FOUND", ["input", "memberId"])
    assert payload["member"] is None
    assert await stored_rows(database_url) == before


@pytest.mark.parametrize(
    ("target", "role", "store", "code", "field"),
    [
        ("owner", "ADMIN", None, "OWNER_REQUIRED", ["input", "memberId"]),
        ("owner", "READ_ONLY", None, "OWNER_REQUIRED", ["input", "memberId"]),
        ("member", "OWNER", None, "ROLE_NOT_ALLOWED", ["input", "role"]),
        ("member", "STORE_MANAGER", None, "REQUIRED", ["input", "storeId"]),
        ("member", "STORE_READ_ONLY", "representative", "INVALID_INPUT", ["input", "storeId"]),
        ("member", "ADMIN", "sub-store", "INVALID_INPUT", ["input", "storeId"]),
        ("member", "READ_ONLY", "representative", "INVALID_INPUT", ["input", "storeId"]),
        ("unknown", "ADMIN", None, "NOT_FOUND", ["input", "memberId"]),
        ("store-id", "ADMIN", None, "NOT_FOUND", ["input", "memberId"]),
    ],
)
async def test_a_bad_role_update_changes_nothing(
    api: Api,
    database_url: str,
    target: str,
    role: str,
    store: str | None,
    code: str,
    field: list[str],
) -> None:
    # given
    owner = await api.sign_up()
    sub_store, sub_store_node = await create_store(api, owner.token, "Gangnam")
    member = await join(api, owner.token, "DEVELOPER")
    member_id = {
        "owner": await owner_member_id(api, owner.token),
        "member": member.member_id,
        "unknown": global_id("Member", 999_999),
        "store-id": sub_store_node,
    }[target]
    store_id = {None: None, "representative": owner.representative_store_id}.get(store, sub_store)
    before = await stored_rows(database_url)
    listed = await members(api, owner.token)

    # when
    payload = await role_update(api, owner.token, member_id, role, store_id)

    # then
    single_error(payload, code, field)
    assert payload["member"] is None
    assert await stored_rows(database_url) == before
    assert await members(api, owner.token) == listed


async def test_an_admin_cannot_demote_the_owner(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    admin = await join(api, owner.token, "ADMIN")
    owner_id = await owner_member_id(api, owner.token)
    before = await stored_rows(database_url)

    # when
    payload = await role_update(api, admin.token, owner_id, "READ_ONLY")

    # then
    single_error(payload, "OWNER_REQUIRED", ["input", "memberId"])
    assert await stored_rows(database_url) == before
    assert await viewer_role(api, owner.token) == "OWNER"


# --- MANAGER and STORE_MANAGER limits -------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "role", "store"),
    [
        ("READ_ONLY", "STORE_READ_ONLY", True),
        ("STORE_READ_ONLY", "READ_ONLY", False),
    ],
)
async def test_a_manager_changes_roles_within_read_only_roles(
    api: Api, start: str, role: str, store: bool
) -> None:
    # given
    owner = await api.sign_up()
    gangnam, _ = await create_store(api, owner.token, "Gangnam")
    manager = await join(api, owner.token, "MANAGER")
    member = await join(api, owner.token, start, gangnam if start.startswith("STORE") else None)

    # when
    payload = await role_update(
        api, manager.token, member.member_id, role, gangnam if store else None
    )

    # then
    assert payload["userErrors"] == []
    assert payload["member"]["role"] == role
    assert await viewer_role(api, member.token) == role


@pytest.mark.parametrize("role", ["ADMIN", "MANAGER", "DEVELOPER", "STORE_MANAGER"])
async def test_a_manager_cannot_promote_above_read_only(
    api: Api, database_url: str, role: str
) -> None:
    # given
    owner = await api.sign_up()
    manager = await join(api, owner.token, "MANAGER")
    member = await join(api, owner.token, "READ_ONLY")
    before = await stored_rows(database_url)

    # when
    payload = await role_update(api, manager.token, member.member_id, role)

    # then
    single_error(payload, "ROLE_NOT_ALLOWED", ["input", "role"])
    assert await stored_rows(database_url) == before


@pytest.mark.parametrize("target", ["ADMIN", "MANAGER", "DEVELOPER", "STORE_MANAGER"])
async def test_a_manager_cannot_act_on_a_member_it_may_not_grant(
    api: Api, database_url: str, target: str
) -> None:
    # given
    owner = await api.sign_up()
    gangnam, _ = await create_store(api, owner.token, "Gangnam")
    manager = await join(api, owner.token, "MANAGER")
    member = await join(api, owner.token, target, gangnam if target.startswith("STORE") else None)
    before = await stored_rows(database_url)

    # when
    updated = await role_update(api, manager.token, member.member_id, "READ_ONLY")
    removed = await remove(api, manager.token, member.member_id)

    # then
    single_error(updated, "ROLE_NOT_ALLOWED", ["input", "memberId"])
    single_error(removed, "ROLE_NOT_ALLOWED", ["input", "memberId"])
    assert removed["removedMemberId"] is None
    assert await stored_rows(database_url) == before
    assert await viewer_role(api, member.token) == target


async def test_a_manager_cannot_remove_or_demote_the_owner(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    manager = await join(api, owner.token, "MANAGER")
    owner_id = await owner_member_id(api, owner.token)
    before = await stored_rows(database_url)

    # when
    updated = await role_update(api, manager.token, owner_id, "READ_ONLY")
    removed = await remove(api, manager.token, owner_id)

    # then
    single_error(updated, "OWNER_REQUIRED", ["input", "memberId"])
    single_error(removed, "OWNER_REQUIRED", ["input", "memberId"])
    assert await stored_rows(database_url) == before


async def test_a_manager_removes_a_read_only_member(api: Api) -> None:
    # given
    owner = await api.sign_up()
    manager = await join(api, owner.token, "MANAGER")
    member = await join(api, owner.token, "READ_ONLY")

    # when
    payload = await remove(api, manager.token, member.member_id)

    # then
    assert payload == {"removedMemberId": member.member_id, "userErrors": []}
    assert_refused_with_401(await api.gql(VIEWER, token=member.token))


async def test_a_store_manager_manages_store_roles_of_its_own_sub_store(api: Api) -> None:
    # given
    owner = await api.sign_up()
    gangnam, _ = await create_store(api, owner.token, "Gangnam")
    store_manager = await join(api, owner.token, "STORE_MANAGER", gangnam)
    clerk = await join(api, owner.token, "STORE_READ_ONLY", gangnam)

    # when
    promoted = await role_update(
        api, store_manager.token, clerk.member_id, "STORE_MANAGER", gangnam
    )

    # then
    assert promoted["userErrors"] == []
    assert promoted["member"]["role"] == "STORE_MANAGER"
    assert promoted["member"]["store"] == {"storeId": gangnam}

    # when
    removed = await remove(api, store_manager.token, clerk.member_id)

    # then
    assert removed == {"removedMemberId": clerk.member_id, "userErrors": []}
    assert await members(api, store_manager.token) == [
        (store_manager.email, "STORE_MANAGER", gangnam)
    ]


async def test_a_store_manager_cannot_grant_a_merchant_wide_role(
    api: Api, database_url: str
) -> None:
    # given
    owner = await api.sign_up()
    gangnam, _ = await create_store(api, owner.token, "Gangnam")
    store_manager = await join(api, owner.token, "STORE_MANAGER", gangnam)
    clerk = await join(api, owner.token, "STORE_READ_ONLY", gangnam)
    before = await stored_rows(database_url)

    # when
    payload = await role_update(api, store_manager.token, clerk.member_id, "READ_ONLY")

    # then
    single_error(payload, "ROLE_NOT_ALLOWED", ["input", "role"])
    assert await stored_rows(database_url) == before


async def test_a_store_manager_cannot_move_a_member_to_another_sub_store(
    api: Api, database_url: str
) -> None:
    # given
    owner = await api.sign_up()
    gangnam, _ = await create_store(api, owner.token, "Gangnam")
    hongdae, _ = await create_store(api, owner.token, "Hongdae")
    store_manager = await join(api, owner.token, "STORE_MANAGER", gangnam)
    clerk = await join(api, owner.token, "STORE_READ_ONLY", gangnam)
    before = await stored_rows(database_url)

    # when
    payload = await role_update(
        api, store_manager.token, clerk.member_id, "STORE_READ_ONLY", hongdae
    )

    # then
    single_error(payload, "NOT_FOUND", ["input", "storeId"])
    assert await stored_rows(database_url) == before


@pytest.mark.parametrize("target", ["other-sub-store", "READ_ONLY", "OWNER"])
async def test_a_store_manager_cannot_reach_members_outside_its_sub_store(
    api: Api, database_url: str, target: str
) -> None:
    # given
    owner = await api.sign_up()
    gangnam, _ = await create_store(api, owner.token, "Gangnam")
    hongdae, _ = await create_store(api, owner.token, "Hongdae")
    store_manager = await join(api, owner.token, "STORE_MANAGER", gangnam)
    if target == "OWNER":
        member_id = await owner_member_id(api, owner.token)
    elif target == "READ_ONLY":
        member_id = (await join(api, owner.token, "READ_ONLY")).member_id
    else:
        member_id = (await join(api, owner.token, "STORE_READ_ONLY", hongdae)).member_id
    before = await stored_rows(database_url)

    # when
    updated = await role_update(api, store_manager.token, member_id, "STORE_MANAGER", gangnam)
    removed = await remove(api, store_manager.token, member_id)

    # then
    single_error(updated, "NOT_FOUND", ["input", "memberId"])
    single_error(removed, "NOT_FOUND", ["input", "memberId"])
    assert await stored_rows(database_url) == before


@pytest.mark.parametrize("role", ["DEVELOPER", "READ_ONLY", "STORE_READ_ONLY"])
async def test_roles_without_member_management_are_forbidden_to_change_roles(
    api: Api, database_url: str, role: str
) -> None:
    # given
    owner = await api.sign_up()
    gangnam, _ = await create_store(api, owner.token, "Gangnam")
    caller = await join(api, owner.token, role, gangnam if role.startswith("STORE") else None)
    clerk = await join(api, owner.token, "STORE_READ_ONLY", gangnam)
    before = await stored_rows(database_url)

    # when
    updated = await api.gql(
        ROLE_UPDATE,
        {"input": {"memberId": clerk.member_id, "role": "STORE_MANAGER", "storeId": gangnam}},
        token=caller.token,
    )
    removed = await api.gql(REMOVE, {"memberId": clerk.member_id}, token=caller.token)

    # then
    assert updated.error_codes == ["FORBIDDEN"]
    assert removed.error_codes == ["FORBIDDEN"]
    assert await stored_rows(database_url) == before


# --- memberRemove ---------------------------------------------------------------------------


async def test_a_removed_members_token_is_refused_at_once(api: Api) -> None:
    # given
    owner = await api.sign_up()
    member = await join(api, owner.token, "DEVELOPER")
    second = await api.gql(SESSION_CREATE, {"input": {"email": member.email, "password": PASSWORD}})
    second_token = second.data["sessionCreate"]["session"]["token"]
    assert await viewer_role(api, member.token) == "DEVELOPER"

    # when
    payload = await remove(api, owner.token, member.member_id)

    # then
    assert payload == {"removedMemberId": member.member_id, "userErrors": []}
    assert_refused_with_401(await api.gql(VIEWER, token=member.token))
    assert_refused_with_401(await api.gql(VIEWER, token=second_token))
    assert await members(api, owner.token) == [(owner.email, "OWNER", None)]
    log_in = await api.gql(SESSION_CREATE, {"input": {"email": member.email, "password": PASSWORD}})
    assert [e["code"] for e in log_in.data["sessionCreate"]["userErrors"]] == [
        "INVALID_CREDENTIALS"
    ]


async def test_a_removed_members_email_may_be_invited_again(api: Api) -> None:
    # given
    owner = await api.sign_up()
    member = await join(api, owner.token, "DEVELOPER")
    await remove(api, owner.token, member.member_id)

    # when
    payload = await invite(api, owner.token, member.email, "READ_ONLY")

    # then
    assert payload["userErrors"] == []
    joined = await accept(api, payload["invitationToken"])
    assert joined["userErrors"] == []
    assert joined["member"]["id"] != member.member_id
    assert await members(api, owner.token) == [
        (owner.email, "OWNER", None),
        (member.email, "READ_ONLY", None),
    ]


@pytest.mark.parametrize("caller", ["OWNER", "ADMIN"])
async def test_nobody_removes_the_owner(api: Api, database_url: str, caller: str) -> None:
    # given
    owner = await api.sign_up()
    token = owner.token if caller == "OWNER" else (await join(api, owner.token, "ADMIN")).token
    owner_id = await owner_member_id(api, owner.token)
    before = await stored_rows(database_url)

    # when
    payload = await remove(api, token, owner_id)

    # then
    single_error(payload, "OWNER_REQUIRED", ["input", "memberId"])
    assert payload["removedMemberId"] is None
    assert await stored_rows(database_url) == before
    assert await viewer_role(api, owner.token) == "OWNER"


async def test_removing_a_member_twice_gives_not_found(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    member = await join(api, owner.token, "READ_ONLY")
    assert (await remove(api, owner.token, member.member_id))["userErrors"] == []
    before = await stored_rows(database_url)

    # when
    payload = await remove(api, owner.token, member.member_id)

    # then
    single_error(payload, "NOT_FOUND", ["input", "memberId"])
    assert await stored_rows(database_url) == before


async def test_an_admin_removes_another_admin(api: Api) -> None:
    # given
    owner = await api.sign_up()
    admin = await join(api, owner.token, "ADMIN")
    other_admin = await join(api, owner.token, "ADMIN")

    # when
    payload = await remove(api, admin.token, other_admin.member_id)

    # then
    assert payload == {"removedMemberId": other_admin.member_id, "userErrors": []}
    assert_refused_with_401(await api.gql(VIEWER, token=other_admin.token))


# --- merchantOwnershipTransfer --------------------------------------------------------------


async def test_the_owner_hands_ownership_to_an_admin_and_becomes_admin(api: Api) -> None:
    # given
    owner = await api.sign_up()
    owner_id = await owner_member_id(api, owner.token)
    admin = await join(api, owner.token, "ADMIN")

    # when
    result = await transfer(api, owner.token, admin.member_id)

    # then
    payload = result.data["merchantOwnershipTransfer"]
    assert payload["userErrors"] == []
    assert payload["previousOwner"] == {
        "id": owner_id,
        "role": "ADMIN",
        "user": {"email": owner.email},
    }
    assert payload["newOwner"] == {
        "id": admin.member_id,
        "role": "OWNER",
        "user": {"email": admin.email},
    }
    assert await members(api, admin.token) == [
        (owner.email, "ADMIN", None),
        (admin.email, "OWNER", None),
    ]
    assert await viewer_role(api, owner.token) == "ADMIN"
    assert (await transfer(api, owner.token, admin.member_id)).error_codes == ["FORBIDDEN"]
    single_error(
        await remove(api, owner.token, admin.member_id), "OWNER_REQUIRED", ["input", "memberId"]
    )
    assert (await remove(api, admin.token, owner_id))["userErrors"] == []


@pytest.mark.parametrize("target", ["MANAGER", "DEVELOPER", "READ_ONLY", "self", "unknown"])
async def test_ownership_moves_only_to_an_existing_admin(
    api: Api, database_url: str, target: str
) -> None:
    # given
    owner = await api.sign_up()
    if target == "self":
        member_id = await owner_member_id(api, owner.token)
    elif target == "unknown":
        member_id = global_id("Member", 999_999)
    else:
        member_id = (await join(api, owner.token, target)).member_id
    before = await stored_rows(database_url)

    # when
    result = await transfer(api, owner.token, member_id)

    # then
    payload = result.data["merchantOwnershipTransfer"]
    code = "NOT_FOUND" if target == "unknown" else "ROLE_NOT_ALLOWED"
    single_error(payload, code, ["input", "memberId"])
    assert payload["previousOwner"] is None
    assert payload["newOwner"] is None
    assert await stored_rows(database_url) == before


async def test_ownership_cannot_move_to_another_merchants_admin(
    api: Api, database_url: str
) -> None:
    # given
    owner = await api.sign_up()
    other = await api.sign_up()
    stranger = await join(api, other.token, "ADMIN")
    before = await stored_rows(database_url)

    # when
    result = await transfer(api, owner.token, stranger.member_id)

    # then
    single_error(result.data["merchantOwnershipTransfer"], "NOT_FOUND", ["input", "memberId"])
    assert await stored_rows(database_url) == before


async def test_an_admin_cannot_take_ownership(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    admin = await join(api, owner.token, "ADMIN")
    before = await stored_rows(database_url)

    # when
    result = await transfer(api, admin.token, admin.member_id)

    # then
    assert result.error_codes == ["FORBIDDEN"]
    assert await stored_rows(database_url) == before


# --- developer limit ------------------------------------------------------------------------


async def fill_developer_slots(api: Api, token: str, joined: int) -> list[str]:
    """`joined` accepted developers, the rest of the limit as pending invitations."""
    pending: list[str] = []
    for n in range(DEVELOPER_LIMIT):
        if n < joined:
            await join(api, token, "DEVELOPER")
        else:
            payload = await invite(api, token, f"dev{n}@example.com", "DEVELOPER")
            assert payload["userErrors"] == [], payload
            pending.append(payload["invitationToken"])
    return pending


async def test_the_eleventh_developer_invitation_exceeds_the_limit(
    api: Api, database_url: str
) -> None:
    # given
    owner = await api.sign_up()
    await fill_developer_slots(api, owner.token, joined=3)
    before = await stored_rows(database_url)

    # when
    payload = await invite(api, owner.token, "one.too.many@example.com", "DEVELOPER")

    # then
    single_error(payload, "MEMBER_LIMIT_EXCEEDED", ["input", "role"])
    assert payload["invitationToken"] is None
    assert await stored_rows(database_url) == before
    assert (await invite(api, owner.token, "reader@example.com", "READ_ONLY"))["userErrors"] == []


async def test_promoting_to_developer_at_the_limit_is_refused(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    reader = await join(api, owner.token, "READ_ONLY")
    await fill_developer_slots(api, owner.token, joined=2)
    before = await stored_rows(database_url)

    # when
    payload = await role_update(api, owner.token, reader.member_id, "DEVELOPER")

    # then
    single_error(payload, "MEMBER_LIMIT_EXCEEDED", ["input", "role"])
    assert await stored_rows(database_url) == before
    assert await viewer_role(api, reader.token) == "READ_ONLY"


async def test_at_the_limit_pending_developers_may_still_accept(api: Api) -> None:
    # given
    owner = await api.sign_up()
    pending = await fill_developer_slots(api, owner.token, joined=8)

    # when
    accepted = [await accept(api, token) for token in pending]

    # then
    assert [payload["userErrors"] for payload in accepted] == [[], []]
    roles = [role for _, role, _ in await members(api, owner.token)]
    assert roles.count("DEVELOPER") == DEVELOPER_LIMIT


async def test_a_re_invitation_at_the_limit_replaces_the_pending_one(api: Api) -> None:
    # given
    owner = await api.sign_up()
    pending = await fill_developer_slots(api, owner.token, joined=9)

    # when
    payload = await invite(api, owner.token, "dev9@example.com", "DEVELOPER")

    # then
    assert payload["userErrors"] == []
    assert [e["code"] for e in (await accept(api, pending[0]))["userErrors"]] == ["TOKEN_INVALID"]
    assert (await accept(api, payload["invitationToken"]))["userErrors"] == []


async def test_a_slot_frees_when_a_developer_leaves_or_an_invitation_expires(
    api: Api, database_url: str
) -> None:
    # given
    owner = await api.sign_up()
    developer = await join(api, owner.token, "DEVELOPER")
    for n in range(1, DEVELOPER_LIMIT):
        assert (await invite(api, owner.token, f"dev{n}@example.com", "DEVELOPER"))[
            "userErrors"
        ] == []
    full = await invite(api, owner.token, "late@example.com", "DEVELOPER")
    single_error(full, "MEMBER_LIMIT_EXCEEDED", ["input", "role"])

    # when
    await remove(api, owner.token, developer.member_id)
    after_removal = await invite(api, owner.token, "late@example.com", "DEVELOPER")

    # then
    assert after_removal["userErrors"] == []
    full = await invite(api, owner.token, "later@example.com", "DEVELOPER")
    single_error(full, "MEMBER_LIMIT_EXCEEDED", ["input", "role"])

    # when
    async with connect(database_url) as conn:
        await conn.execute(
            update(Invitation)
            .where(Invitation.email == "dev1@example.com")  # type: ignore[arg-type]
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    after_expiry = await invite(api, owner.token, "later@example.com", "DEVELOPER")

    # then
    assert after_expiry["userErrors"] == []


async def test_a_refused_re_invitation_at_the_limit_keeps_the_pending_one(
    api: Api, database_url: str
) -> None:
    # given
    owner = await api.sign_up()
    reader = await invite(api, owner.token, "reader@example.com", "READ_ONLY")
    await fill_developer_slots(api, owner.token, joined=0)
    before = await stored_rows(database_url)

    # when
    payload = await invite(api, owner.token, "reader@example.com", "DEVELOPER")

    # then
    single_error(payload, "MEMBER_LIMIT_EXCEEDED", ["input", "role"])
    assert await stored_rows(database_url) == before
    joined = await accept(api, reader["invitationToken"])
    assert joined["userErrors"] == []
    assert joined["member"]["role"] == "READ_ONLY"


async def test_concurrent_invitations_cannot_exceed_the_developer_limit(
    api: Api, database_url: str
) -> None:
    # given: two slots left
    owner = await api.sign_up()
    for n in range(DEVELOPER_LIMIT - 2):
        assert (await invite(api, owner.token, f"dev{n}@example.com", "DEVELOPER"))[
            "userErrors"
        ] == []

    # when: six invitations arrive at the same time
    results = await asyncio.gather(
        *(
            api.gql(
                INVITE,
                {"input": {"email": f"rush{n}@example.com", "role": "DEVELOPER"}},
                token=owner.token,
            )
            for n in range(6)
        )
    )

    # then
    payloads = [result.data["memberInvite"] for result in results]
    granted = [p for p in payloads if p["userErrors"] == []]
    refused = [p for p in payloads if p["userErrors"] != []]
    assert len(granted) == 2
    assert {e["code"] for p in refused for e in p["userErrors"]} == {"MEMBER_LIMIT_EXCEEDED"}
    async with connect(database_url) as conn:
        pending = (
            await conn.execute(
                select(func.count())
                .select_from(Invitation)
                .where(
                    Invitation.role == "DEVELOPER",  # type: ignore[arg-type]
                    Invitation.revoked_at.is_(None),  # type: ignore[union-attr]
                    Invitation.accepted_at.is_(None),  # type: ignore[union-attr]
                )
            )
        ).scalar_one()
    assert pending == DEVELOPER_LIMIT


# --- deleting a sub-store -------------------------------------------------------------------


async def test_deleting_a_sub_store_removes_its_members_and_kills_its_invitations(
    api: Api,
) -> None:
    # given
    owner = await api.sign_up()
    gangnam, _ = await create_store(api, owner.token, "Gangnam")
    hongdae, _ = await create_store(api, owner.token, "Hongdae")
    store_manager = await join(api, owner.token, "STORE_MANAGER", gangnam)
    clerk = await join(api, owner.token, "STORE_READ_ONLY", gangnam)
    neighbour = await join(api, owner.token, "STORE_MANAGER", hongdae)
    reader = await join(api, owner.token, "READ_ONLY")
    pending = await invite(api, owner.token, "pending@example.com", "STORE_READ_ONLY", gangnam)
    elsewhere = await invite(api, owner.token, "later@example.com", "STORE_READ_ONLY", hongdae)

    # when
    result = await api.gql(STORE_DELETE, {"storeId": gangnam}, token=owner.token)

    # then
    assert result.data["storeDelete"] == {"deletedStoreId": gangnam, "userErrors": []}
    assert_refused_with_401(await api.gql(VIEWER, token=store_manager.token))
    assert_refused_with_401(await api.gql(VIEWER, token=clerk.token))
    assert await viewer_role(api, neighbour.token) == "STORE_MANAGER"
    assert await viewer_role(api, reader.token) == "READ_ONLY"
    assert await members(api, owner.token) == [
        (owner.email, "OWNER", None),
        (neighbour.email, "STORE_MANAGER", hongdae),
        (reader.email, "READ_ONLY", None),
    ]
    killed = await accept(api, pending["invitationToken"])
    assert [e["code"] for e in killed["userErrors"]] == ["TOKEN_INVALID"]
    assert killed["userErrors"][0]["field"] == ["input", "token"]
    assert (await accept(api, elsewhere["invitationToken"]))["userErrors"] == []
