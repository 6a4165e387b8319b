"""Merchant.auditEvents: one event per change, newest first, filtered, paged, never a secret."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from db.models import AuditEvent
from tests.support import (
    ACCEPT,
    INVITE,
    PASSWORD,
    SIGN_UP,
    Api,
    GraphQLResponse,
    connect,
    create_store,
    invite_and_join,
)

AUDIT_EVENTS = """
query Audit($first: Int, $after: String, $storeId: String, $action: String) {
  merchant {
    auditEvents(first: $first, after: $after, storeId: $storeId, action: $action) {
      edges { cursor node { id action actor storeId targetId summary occurredAt } }
      pageInfo { hasNextPage hasPreviousPage endCursor }
    }
  }
}
"""

NODE = """
query Node($id: ID!) {
  node(id: $id) { id ... on AuditEvent { action } }
}
"""

VIEWER = "{ viewer { user { id } } }"

SESSION_CREATE = """
mutation LogIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) { session { token } userErrors { field code } }
}
"""

SESSION_REVOKE = "mutation { sessionRevoke { revoked userErrors { code } } }"

STORE_CREATE = """
mutation Create($name: String!) {
  storeCreate(input: { name: $name }) { store { storeId } userErrors { field code } }
}
"""

STORE_UPDATE = """
mutation Rename($storeId: String!, $name: String!) {
  storeUpdate(input: { storeId: $storeId, name: $name }) {
    store { storeId }
    userErrors { field code }
  }
}
"""

STORE_DELETE = """
mutation Delete($storeId: String!) {
  storeDelete(input: { storeId: $storeId }) { deletedStoreId userErrors { field code } }
}
"""

ROLE_UPDATE = """
mutation RoleUpdate($input: MemberRoleUpdateInput!) {
  memberRoleUpdate(input: $input) { member { id role } userErrors { field code } }
}
"""

REMOVE = """
mutation Remove($memberId: ID!) {
  memberRemove(input: { memberId: $memberId }) { removedMemberId userErrors { field code } }
}
"""

TRANSFER = """
mutation Transfer($memberId: ID!) {
  merchantOwnershipTransfer(input: { memberId: $memberId }) {
    newOwner { id role }
    userErrors { field code }
  }
}
"""

MEMBERS = "{ merchant { members { nodes { id role } } } }"

OWNER_EMAIL = "founder@example.com"
STORE_MANAGER_EMAIL = "gangnam.manager@example.com"
ADMIN_EMAIL = "second.admin@example.com"
INVITEE_PASSWORD = "invitee secret passphrase"


# --- helpers --------------------------------------------------------------------------------


async def stored_events(database_url: str) -> list[Any]:
    async with connect(database_url) as conn:
        table = AuditEvent.__table__  # type: ignore[attr-defined]
        return list(await conn.execute(select(table).order_by(table.c.id)))


def ok(result: GraphQLResponse, name: str) -> dict[str, Any]:
    payload: dict[str, Any] = result.data[name]
    assert payload["userErrors"] == [], payload
    return payload


async def audit_events(api: Api, token: str, **arguments: Any) -> list[dict[str, Any]]:
    result = await api.gql(AUDIT_EVENTS, arguments, token=token)
    edges = result.data["merchant"]["auditEvents"]["edges"]
    return [edge["node"] for edge in edges]


async def actions(api: Api, token: str, **arguments: Any) -> list[str]:
    return [event["action"] for event in await audit_events(api, token, **arguments)]


@dataclass
class Story:
    """A merchant that went through every kind of change, and what it produced."""

    owner_token: str
    new_owner_token: str
    merchant_id: str
    representative_store_id: str
    gangnam: str
    owner_user_id: str
    invitation_ids: list[str] = field(default_factory=list)
    store_manager_member_id: str = ""
    admin_member_id: str = ""
    secrets: list[str] = field(default_factory=list)
    # (action, X-Request-ID of the request that made it), in the order they happened
    requests: list[tuple[str, str]] = field(default_factory=list)


async def live_a_story(api: Api) -> Story:
    """Sign up, log in, create / rename a sub-store, invite and accept a store manager,
    change its role, invite and accept an admin, remove the store manager, hand ownership
    to the admin, delete the sub-store, log out."""
    requests: list[tuple[str, str]] = []
    secrets = [PASSWORD, INVITEE_PASSWORD]

    def seen(action: str, result: GraphQLResponse) -> GraphQLResponse:
        requests.append((action, result.headers["x-request-id"]))
        return result

    sign_up_input = {
        "merchantName": "Seoul Coffee",
        "email": OWNER_EMAIL,
        "password": PASSWORD,
        "name": "Founder",
    }
    signed = ok(
        seen("merchant.sign_up", await api.gql(SIGN_UP, {"input": sign_up_input})),
        "merchantSignUp",
    )
    owner_token = signed["session"]["token"]
    secrets.append(owner_token)
    logged_in = ok(
        seen(
            "session.create",
            await api.gql(SESSION_CREATE, {"input": {"email": OWNER_EMAIL, "password": PASSWORD}}),
        ),
        "sessionCreate",
    )
    second_token = logged_in["session"]["token"]
    secrets.append(second_token)
    owner_user_id = (await api.gql(VIEWER, token=owner_token)).data["viewer"]["user"]["id"]

    gangnam = ok(
        seen("store.create", await api.gql(STORE_CREATE, {"name": "Gangnam"}, token=owner_token)),
        "storeCreate",
    )["store"]["storeId"]
    ok(
        seen(
            "store.update",
            await api.gql(
                STORE_UPDATE, {"storeId": gangnam, "name": "Gangnam Station"}, token=owner_token
            ),
        ),
        "storeUpdate",
    )
    story = Story(
        owner_token=owner_token,
        new_owner_token="",
        merchant_id=signed["merchant"]["id"],
        representative_store_id=signed["merchant"]["representativeStore"]["storeId"],
        gangnam=gangnam,
        owner_user_id=owner_user_id,
        secrets=secrets,
        requests=requests,
    )

    for email, role, store_id in (
        (STORE_MANAGER_EMAIL, "STORE_MANAGER", gangnam),
        (ADMIN_EMAIL, "ADMIN", None),
    ):
        invitation_input: dict[str, Any] = {"email": email, "role": role}
        if store_id:
            invitation_input["storeId"] = store_id
        invited = ok(
            seen(
                "member.invite",
                await api.gql(INVITE, {"input": invitation_input}, token=owner_token),
            ),
            "memberInvite",
        )
        story.invitation_ids.append(invited["invitation"]["id"])
        secrets.append(invited["invitationToken"])
        accept_input = {
            "token": invited["invitationToken"],
            "name": "Invitee",
            "password": INVITEE_PASSWORD,
        }
        accepted = ok(
            seen("invitation.accept", await api.gql(ACCEPT, {"input": accept_input})),
            "invitationAccept",
        )
        secrets.append(accepted["session"]["token"])
        if role == "ADMIN":
            story.admin_member_id = accepted["member"]["id"]
            story.new_owner_token = accepted["session"]["token"]
        else:
            story.store_manager_member_id = accepted["member"]["id"]
            role_input = {
                "memberId": story.store_manager_member_id,
                "role": "STORE_READ_ONLY",
                "storeId": gangnam,
            }
            ok(
                seen(
                    "member.role_update",
                    await api.gql(ROLE_UPDATE, {"input": role_input}, token=owner_token),
                ),
                "memberRoleUpdate",
            )

    ok(
        seen(
            "member.remove",
            await api.gql(REMOVE, {"memberId": story.store_manager_member_id}, token=owner_token),
        ),
        "memberRemove",
    )
    ok(
        seen(
            "merchant.ownership_transfer",
            await api.gql(TRANSFER, {"memberId": story.admin_member_id}, token=owner_token),
        ),
        "merchantOwnershipTransfer",
    )
    ok(
        seen("store.delete", await api.gql(STORE_DELETE, {"storeId": gangnam}, token=owner_token)),
        "storeDelete",
    )
    ok(seen("session.revoke", await api.gql(SESSION_REVOKE, token=second_token)), "sessionRevoke")
    return story


STORY_ACTIONS = [
    "merchant.sign_up",
    "session.create",
    "store.create",
    "store.update",
    "member.invite",
    "invitation.accept",
    "member.role_update",
    "member.invite",
    "invitation.accept",
    "member.remove",
    "merchant.ownership_transfer",
    "store.delete",
    "session.revoke",
]


# --- what is written ------------------------------------------------------------------------


async def test_every_kind_of_change_writes_one_event_newest_first(api: Api) -> None:
    # given
    story = await live_a_story(api)

    # when
    events = await audit_events(api, story.owner_token)

    # then
    assert [event["action"] for event in events] == list(reversed(STORY_ACTIONS))
    assert [action for action, _ in story.requests] == STORY_ACTIONS
    by_action: dict[str, list[dict[str, Any]]] = {}
    for event in reversed(events):
        by_action.setdefault(event["action"], []).append(event)
        assert event["summary"]
        assert event["occurredAt"]
    assert len({event["id"] for event in events}) == len(events)
    occurred = [event["occurredAt"] for event in events]
    assert occurred == sorted(occurred, reverse=True)

    def who_where_what(event: dict[str, Any]) -> tuple[str, str | None, str | None]:
        return event["actor"], event["storeId"], event["targetId"]

    merchant_pk = by_action["merchant.sign_up"][0]
    assert who_where_what(merchant_pk) == (
        OWNER_EMAIL,
        story.representative_store_id,
        story.merchant_id,
    )
    assert who_where_what(by_action["session.create"][0]) == (
        OWNER_EMAIL,
        None,
        story.owner_user_id,
    )
    for action in ("store.create", "store.update", "store.delete"):
        event = by_action[action][0]
        assert (event["actor"], event["storeId"]) == (OWNER_EMAIL, story.gangnam)
    invites = by_action["member.invite"]
    assert [who_where_what(e) for e in invites] == [
        (OWNER_EMAIL, story.gangnam, story.invitation_ids[0]),
        (OWNER_EMAIL, None, story.invitation_ids[1]),
    ]
    assert STORE_MANAGER_EMAIL in invites[0]["summary"]
    accepts = by_action["invitation.accept"]
    assert [(e["actor"], e["targetId"]) for e in accepts] == [
        (STORE_MANAGER_EMAIL, story.store_manager_member_id),
        (ADMIN_EMAIL, story.admin_member_id),
    ]
    assert who_where_what(by_action["member.role_update"][0]) == (
        OWNER_EMAIL,
        story.gangnam,
        story.store_manager_member_id,
    )
    removed = by_action["member.remove"][0]
    assert (removed["actor"], removed["targetId"]) == (OWNER_EMAIL, story.store_manager_member_id)
    assert who_where_what(by_action["merchant.ownership_transfer"][0]) == (
        OWNER_EMAIL,
        None,
        story.admin_member_id,
    )
    assert by_action["session.revoke"][0]["actor"] == OWNER_EMAIL


async def test_each_event_carries_the_id_of_the_request_that_made_it(
    api: Api, database_url: str
) -> None:
    # given
    story = await live_a_story(api)

    # when
    rows = await stored_events(database_url)

    # then
    assert [(row.action, row.request_id) for row in rows] == story.requests
    assert len({request_id for _, request_id in story.requests}) == len(story.requests)


async def test_events_about_a_store_bound_member_name_its_sub_store(api: Api) -> None:
    # given: the story invites a STORE_MANAGER to Gangnam, who joins, is changed and removed
    story = await live_a_story(api)

    # when
    events = await audit_events(api, story.owner_token)

    # then
    about_the_store_member = {
        e["action"]: e["storeId"]
        for e in events
        if story.store_manager_member_id == e["targetId"]
        or (e["action"] == "member.invite" and e["targetId"] == story.invitation_ids[0])
    }
    assert about_the_store_member == {
        "member.invite": story.gangnam,
        "invitation.accept": story.gangnam,
        "member.role_update": story.gangnam,
        "member.remove": story.gangnam,
    }


async def test_the_new_owner_and_the_owner_turned_admin_read_the_same_log(api: Api) -> None:
    # given
    story = await live_a_story(api)

    # when
    as_new_owner = await audit_events(api, story.new_owner_token)
    as_admin = await audit_events(api, story.owner_token)

    # then
    assert as_new_owner == as_admin
    assert len(as_admin) == len(STORY_ACTIONS)


async def test_an_event_can_be_refetched_by_its_id(api: Api) -> None:
    # given
    owner = await api.sign_up()
    developer = await invite_and_join(api, owner.token, "DEVELOPER")
    event = (await audit_events(api, owner.token, first=1))[0]

    # when
    as_owner = await api.gql(NODE, {"id": event["id"]}, token=owner.token)
    as_developer = await api.gql(NODE, {"id": event["id"]}, token=developer.token)

    # then
    assert as_owner.data["node"] == {"id": event["id"], "action": "invitation.accept"}
    assert as_developer.data["node"] is None


# --- filters and pages ----------------------------------------------------------------------


async def test_events_filtered_by_store_and_by_action(api: Api) -> None:
    # given
    story = await live_a_story(api)
    token = story.owner_token

    everything = await audit_events(api, token)

    # when
    of_gangnam = await actions(api, token, storeId=story.gangnam)

    # then
    assert of_gangnam == [e["action"] for e in everything if e["storeId"] == story.gangnam]
    assert [a for a in of_gangnam if a.startswith("store.")] == [
        "store.delete",
        "store.update",
        "store.create",
    ]
    assert {"member.invite", "member.role_update"} <= set(of_gangnam)
    assert await actions(api, token, storeId=story.representative_store_id) == ["merchant.sign_up"]
    invites = await audit_events(api, token, action="member.invite")
    assert [event["targetId"] for event in invites] == list(reversed(story.invitation_ids))
    both = await audit_events(api, token, storeId=story.gangnam, action="member.invite")
    assert [event["targetId"] for event in both] == [story.invitation_ids[0]]
    assert await actions(api, token, action="no.such.action") == []
    assert await actions(api, token, storeId="store-00000000-0000-4000-8000-000000000000") == []


async def test_another_merchants_store_filter_shows_nothing(api: Api) -> None:
    # given
    owner = await api.sign_up()
    other = await api.sign_up()
    other_store, _ = await create_store(api, other.token, "Elsewhere")

    # when
    events = await audit_events(api, owner.token, storeId=other_store)

    # then
    assert events == []
    assert await actions(api, owner.token) == ["merchant.sign_up"]
    assert await actions(api, other.token) == ["store.create", "merchant.sign_up"]


async def test_pages_follow_one_another_newest_first(api: Api) -> None:
    # given
    story = await live_a_story(api)
    everything = await audit_events(api, story.owner_token)

    # when
    pages: list[list[str]] = []
    infos: list[dict[str, Any]] = []
    after = None
    while True:
        result = await api.gql(AUDIT_EVENTS, {"first": 5, "after": after}, token=story.owner_token)
        connection = result.data["merchant"]["auditEvents"]
        pages.append([edge["node"]["id"] for edge in connection["edges"]])
        infos.append(connection["pageInfo"])
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]

    # then
    assert [len(page) for page in pages] == [5, 5, 3]
    assert [id_ for page in pages for id_ in page] == [event["id"] for event in everything]
    assert [info["hasNextPage"] for info in infos] == [True, True, False]
    assert [info["hasPreviousPage"] for info in infos] == [False, True, True]


async def test_a_filtered_page_stays_filtered(api: Api) -> None:
    # given
    story = await live_a_story(api)
    first_page = await api.gql(
        AUDIT_EVENTS, {"first": 1, "action": "invitation.accept"}, token=story.owner_token
    )
    connection = first_page.data["merchant"]["auditEvents"]
    assert connection["pageInfo"]["hasNextPage"] is True

    # when
    rest = await audit_events(
        api,
        story.owner_token,
        action="invitation.accept",
        after=connection["pageInfo"]["endCursor"],
    )

    # then
    assert [e["node"]["targetId"] for e in connection["edges"]] == [story.admin_member_id]
    assert [e["targetId"] for e in rest] == [story.store_manager_member_id]


# --- no secrets -----------------------------------------------------------------------------


async def test_no_secret_appears_in_any_event_or_in_the_table(api: Api, database_url: str) -> None:
    # given
    story = await live_a_story(api)
    assert len(story.secrets) == 8  # 2 passwords, 4 session tokens, 2 invitation tokens

    # when
    result = await api.gql(AUDIT_EVENTS, {"first": 100}, token=story.owner_token)
    rows = await stored_events(database_url)

    # then
    shown = json.dumps(result.body)
    stored = [str(value) for row in rows for value in row]
    assert len(rows) == len(STORY_ACTIONS)
    for secret in story.secrets:
        assert secret not in shown
        assert all(secret not in value for value in stored)


# --- who may read ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role", ["MANAGER", "DEVELOPER", "READ_ONLY", "STORE_MANAGER", "STORE_READ_ONLY"]
)
async def test_only_owner_and_admin_read_the_log(api: Api, role: str) -> None:
    # given
    owner = await api.sign_up()
    sub_store, _ = await create_store(api, owner.token, "Gangnam")
    member = await invite_and_join(
        api, owner.token, role, sub_store if role.startswith("STORE") else None
    )

    # when
    result = await api.gql(AUDIT_EVENTS, {"storeId": sub_store}, token=member.token)

    # then
    assert result.error_codes == ["FORBIDDEN"]
    assert result.body["data"]["merchant"] is None
    assert member.email not in json.dumps(result.body)


async def test_an_admin_reads_the_log(api: Api) -> None:
    # given
    owner = await api.sign_up()
    admin = await invite_and_join(api, owner.token, "ADMIN")

    # when
    events = await actions(api, admin.token)

    # then
    assert events == ["invitation.accept", "member.invite", "merchant.sign_up"]


async def test_reading_the_log_without_a_session_is_unauthenticated(api: Api) -> None:
    # when
    result = await api.gql(AUDIT_EVENTS, {})

    # then
    assert result.error_codes == ["UNAUTHENTICATED"]


# --- failures write nothing -----------------------------------------------------------------


async def test_a_failed_mutation_writes_no_event(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up(email=OWNER_EMAIL)
    gangnam, _ = await create_store(api, owner.token, "Gangnam")
    developer = await invite_and_join(api, owner.token, "DEVELOPER")
    nodes = (await api.gql(MEMBERS, token=owner.token)).data["merchant"]["members"]["nodes"]
    owner_member = next(node["id"] for node in nodes if node["role"] == "OWNER")
    before = await stored_events(database_url)

    def code(result: GraphQLResponse, name: str) -> str:
        errors = result.data[name]["userErrors"]
        assert len(errors) == 1, errors
        return str(errors[0]["code"])

    # when
    sign_up_again = {
        "merchantName": "Copy",
        "email": OWNER_EMAIL,
        "password": PASSWORD,
        "name": "Copycat",
    }
    failures = {
        "merchantSignUp": await api.gql(SIGN_UP, {"input": sign_up_again}),
        "sessionCreate": await api.gql(
            SESSION_CREATE, {"input": {"email": OWNER_EMAIL, "password": "wrong password 1"}}
        ),
        "storeCreate": await api.gql(STORE_CREATE, {"name": "Gangnam"}, token=owner.token),
        "storeUpdate": await api.gql(
            STORE_UPDATE, {"storeId": gangnam, "name": "  "}, token=owner.token
        ),
        "storeDelete": await api.gql(
            STORE_DELETE, {"storeId": owner.representative_store_id}, token=owner.token
        ),
        "memberInvite": await api.gql(
            INVITE, {"input": {"email": developer.email, "role": "ADMIN"}}, token=owner.token
        ),
        "invitationAccept": await api.gql(
            ACCEPT, {"input": {"token": "poi_forged", "name": "X", "password": PASSWORD}}
        ),
        "memberRoleUpdate": await api.gql(
            ROLE_UPDATE, {"input": {"memberId": owner_member, "role": "ADMIN"}}, token=owner.token
        ),
        "memberRemove": await api.gql(REMOVE, {"memberId": owner_member}, token=owner.token),
        "merchantOwnershipTransfer": await api.gql(
            TRANSFER, {"memberId": developer.member_id}, token=owner.token
        ),
    }
    forbidden = await api.gql(STORE_CREATE, {"name": "Hongdae"}, token=developer.token)

    # then
    assert {name: code(result, name) for name, result in failures.items()} == {
        "merchantSignUp": "EMAIL_TAKEN",
        "sessionCreate": "INVALID_CREDENTIALS",
        "storeCreate": "NAME_TAKEN",
        "storeUpdate": "REQUIRED",
        "storeDelete": "REPRESENTATIVE_STORE_UNDELETABLE",
        "memberInvite": "ALREADY_MEMBER",
        "invitationAccept": "TOKEN_INVALID",
        "memberRoleUpdate": "OWNER_REQUIRED",
        "memberRemove": "OWNER_REQUIRED",
        "merchantOwnershipTransfer": "ROLE_NOT_ALLOWED",
    }
    assert forbidden.error_codes == ["FORBIDDEN"]
    assert await stored_events(database_url) == before
    assert await actions(api, owner.token) == [
        "invitation.accept",
        "member.invite",
        "store.create",
        "merchant.sign_up",
    ]
