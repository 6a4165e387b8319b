"""Exactly one owner, and invitations that die with the inviter's rights."""

from __future__ import annotations

import asyncio

from tests.support import ACCEPT, INVITE, PASSWORD, Api, invite_and_join

TWICE = """mutation($a: ID!, $b: ID!) {
  first: merchantOwnershipTransfer(input: {memberId: $a}) { newOwner { id } userErrors { code } }
  second: merchantOwnershipTransfer(input: {memberId: $b}) { newOwner { id } userErrors { code } }
}"""
TRANSFER = """mutation($m: ID!) { merchantOwnershipTransfer(input: {memberId: $m}) {
  newOwner { id } userErrors { code } } }"""
OWNERS = "{ merchant { members { nodes { role } } } }"
REMOVE = "mutation($m: ID!) { memberRemove(input: {memberId: $m}) { userErrors { code } } }"


async def _owner_count(api: Api, token: str) -> int:
    result = await api.gql(OWNERS, token=token)
    return [m["role"] for m in result.data["merchant"]["members"]["nodes"]].count("OWNER")


async def test_two_transfers_in_one_request_leave_one_owner(api: Api) -> None:
    # given an owner and two admins
    owner = await api.sign_up()
    a = await invite_and_join(api, owner.token, "ADMIN")
    b = await invite_and_join(api, owner.token, "ADMIN")

    # when the owner transfers twice in one document
    result = await api.gql(TWICE, {"a": a.member_id, "b": b.member_id}, token=owner.token)

    # then the second is refused (the caller is no longer the owner) and A alone owns it
    assert result.error_codes == ["FORBIDDEN"]
    assert await _owner_count(api, a.token) == 1
    viewer = await api.gql("{ viewer { role } }", token=a.token)
    assert viewer.data["viewer"]["role"] == "OWNER"


async def test_concurrent_transfers_leave_one_owner(api: Api) -> None:
    owner = await api.sign_up()
    a = await invite_and_join(api, owner.token, "ADMIN")
    b = await invite_and_join(api, owner.token, "ADMIN")

    await asyncio.gather(
        api.gql(TRANSFER, {"m": a.member_id}, token=owner.token),
        api.gql(TRANSFER, {"m": b.member_id}, token=owner.token),
    )

    assert await _owner_count(api, a.token) == 1


async def test_an_invitation_dies_when_its_sender_is_removed(api: Api) -> None:
    # given an admin who invited someone as ADMIN, then was removed
    owner = await api.sign_up()
    admin = await invite_and_join(api, owner.token, "ADMIN")
    issued = await api.gql(
        INVITE, {"input": {"email": "comeback@example.com", "role": "ADMIN"}}, token=admin.token
    )
    token = issued.data["memberInvite"]["invitationToken"]
    removed = await api.gql(REMOVE, {"m": admin.member_id}, token=owner.token)
    assert removed.data["memberRemove"]["userErrors"] == []

    # when the invitation is accepted
    accepted = await api.gql(
        ACCEPT, {"input": {"token": token, "name": "Back door", "password": PASSWORD}}
    )

    # then it is refused
    errors = accepted.data["invitationAccept"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [("TOKEN_INVALID", ["input", "token"])]


async def test_a_store_manager_cannot_replace_the_owners_invitation(api: Api) -> None:
    # given the owner invited an email as ADMIN
    owner = await api.sign_up()
    store = await api.gql(
        'mutation { storeCreate(input: {name: "Branch"}) { store { storeId } } }',
        token=owner.token,
    )
    store_id = store.data["storeCreate"]["store"]["storeId"]
    manager = await invite_and_join(api, owner.token, "STORE_MANAGER", store_id)
    first = await api.gql(
        INVITE, {"input": {"email": "boss@example.com", "role": "ADMIN"}}, token=owner.token
    )
    owner_token = first.data["memberInvite"]["invitationToken"]

    # when a store manager invites the same email to its sub-store
    second = await api.gql(
        INVITE,
        {"input": {"email": "boss@example.com", "role": "STORE_READ_ONLY", "storeId": store_id}},
        token=manager.token,
    )

    # then that is refused and the owner's invitation still works
    errors = second.data["memberInvite"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [("ROLE_NOT_ALLOWED", ["input", "email"])]
    accepted = await api.gql(
        ACCEPT, {"input": {"token": owner_token, "name": "Boss", "password": PASSWORD}}
    )
    assert accepted.data["invitationAccept"]["member"]["role"] == "ADMIN"
