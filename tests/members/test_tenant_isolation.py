"""Merchant B's objects do not exist for merchant A: the same answer as for made-up IDs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from gql_api.ids import global_id
from tests.support import INVITE, Api, create_store, invite_and_join

NODE = "query($id: ID!) { node(id: $id) { id } }"
STORE = "query($s: String!) { store(storeId: $s) { name } }"
STORE_UPDATE = """mutation($s: String!) { storeUpdate(input: {storeId: $s, name: "Mine now"}) {
    store { name } userErrors { field code } } }"""
STORE_DELETE = """mutation($s: String!) { storeDelete(input: {storeId: $s}) {
    deletedStoreId userErrors { field code } } }"""
ROLE_UPDATE = """mutation($m: ID!) { memberRoleUpdate(input: {memberId: $m, role: READ_ONLY}) {
    member { id } userErrors { field code } } }"""
REMOVE = """mutation($m: ID!) { memberRemove(input: {memberId: $m}) {
    removedMemberId userErrors { field code } } }"""
TRANSFER = """mutation($m: ID!) { merchantOwnershipTransfer(input: {memberId: $m}) {
    newOwner { id } userErrors { field code } } }"""
AUDIT = """query($s: String) { merchant { auditEvents(storeId: $s) { nodes { action } } } }"""
MEMBERS = "{ merchant { members { nodes { user { email } } } stores { nodes { storeId } } } }"


@dataclass
class Foreign:
    """Identifiers of merchant B, or made-up ones of the same shape."""

    representative_store: str
    sub_store: str
    store_node: str
    merchant_node: str
    member_node: str
    admin_member_node: str
    user_node: str
    audit_node: str


async def _merchant_b(api: Api) -> tuple[Foreign, str]:
    owner = await api.sign_up()
    sub_store, store_node = await create_store(api, owner.token, "B's shop")
    member = await invite_and_join(api, owner.token, "STORE_MANAGER", sub_store)
    admin = await invite_and_join(api, owner.token, "ADMIN")
    events = await api.gql(
        "{ merchant { auditEvents(first: 1) { nodes { id } } } }", token=owner.token
    )
    foreign = Foreign(
        representative_store=owner.representative_store_id,
        sub_store=sub_store,
        store_node=store_node,
        merchant_node=owner.merchant_id,
        member_node=member.member_id,
        admin_member_node=admin.member_id,
        user_node=member.user_id,
        audit_node=events.data["merchant"]["auditEvents"]["nodes"][0]["id"],
    )
    return foreign, owner.token


def _made_up() -> Foreign:
    return Foreign(
        representative_store=f"store-{uuid.uuid4()}",
        sub_store=f"store-{uuid.uuid4()}",
        store_node=global_id("Store", 999_999),
        merchant_node=global_id("Merchant", 999_999),
        member_node=global_id("Member", 999_999),
        admin_member_node=global_id("Member", 999_998),
        user_node=global_id("User", 999_999),
        audit_node=global_id("AuditEvent", 999_999),
    )


async def _answers(api: Api, token: str, ids: Foreign) -> dict[str, object]:
    """Everything merchant A can try with a set of identifiers, and what it gets back."""
    answers: dict[str, object] = {}
    for name in ("store_node", "merchant_node", "member_node", "user_node", "audit_node"):
        result = await api.gql(NODE, {"id": getattr(ids, name)}, token=token)
        answers[f"node:{name}"] = (result.status, result.body)
    for name in ("representative_store", "sub_store"):
        store_id = getattr(ids, name)
        for label, query in (("store", STORE), ("update", STORE_UPDATE), ("delete", STORE_DELETE)):
            result = await api.gql(query, {"s": store_id}, token=token)
            answers[f"{label}:{name}"] = (result.status, result.body)
        invite = {"email": f"x-{name}@example.com", "role": "STORE_MANAGER", "storeId": store_id}
        result = await api.gql(INVITE, {"input": invite}, token=token)
        answers[f"invite:{name}"] = result.body["data"]["memberInvite"]["userErrors"]
        result = await api.gql(AUDIT, {"s": store_id}, token=token)
        answers[f"audit:{name}"] = result.body
    for label, query in (("role", ROLE_UPDATE), ("remove", REMOVE)):
        result = await api.gql(query, {"m": ids.member_node}, token=token)
        answers[f"{label}:member"] = (result.status, result.body)
    result = await api.gql(TRANSFER, {"m": ids.admin_member_node}, token=token)
    answers["transfer:admin"] = (result.status, result.body)
    return answers


async def test_another_merchants_ids_behave_like_ids_that_do_not_exist(api: Api) -> None:
    # given two merchants
    foreign, b_token = await _merchant_b(api)
    a = await api.sign_up()
    b_before = await api.gql(MEMBERS, token=b_token)

    # when merchant A tries B's identifiers, and made-up ones
    with_foreign = await _answers(api, a.token, foreign)
    with_made_up = await _answers(api, a.token, _made_up())

    # then A gets exactly the "does not exist" answers, never FORBIDDEN and never data
    assert with_foreign == with_made_up
    assert with_foreign["node:store_node"] == (200, {"data": {"node": None}})
    assert with_foreign["update:sub_store"] == (
        200,
        {
            "data": {
                "storeUpdate": {
                    "store": None,
                    "userErrors": [{"field": ["input", "storeId"], "code": "NOT_FOUND"}],
                }
            }
        },
    )
    assert "FORBIDDEN" not in repr(with_foreign)
    # and nothing of B changed
    assert (await api.gql(MEMBERS, token=b_token)).body == b_before.body


async def test_lists_show_only_the_callers_merchant(api: Api) -> None:
    # given two merchants with sub-stores and members
    b = await api.sign_up()
    await create_store(api, b.token, "B only")
    await invite_and_join(api, b.token, "DEVELOPER")
    a = await api.sign_up()
    a_store, _ = await create_store(api, a.token, "A only")

    # when A lists its stores, members and audit events
    result = await api.gql(
        "{ merchant { stores { nodes { storeId } } members { nodes { user { email } } } "
        "auditEvents { nodes { storeId actor } } } }",
        token=a.token,
    )

    # then only A's own objects appear
    merchant = result.data["merchant"]
    assert [s["storeId"] for s in merchant["stores"]["nodes"]] == [
        a.representative_store_id,
        a_store,
    ]
    assert [m["user"]["email"] for m in merchant["members"]["nodes"]] == [a.email]
    assert {e["actor"] for e in merchant["auditEvents"]["nodes"]} == {a.email}
    assert b.representative_store_id not in repr(merchant)
