"""memberInvite and invitationAccept: who may invite whom, the one-time token, bad input."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlmodel import SQLModel

from db.models import Invitation
from tests.support import (
    ACCEPT,
    INVITE,
    PASSWORD,
    Api,
    SignedUp,
    connect,
    create_store,
    invite_and_join,
)

MEMBERS = """
{
  merchant {
    members { nodes { id role user { id email name } store { storeId } } }
  }
}
"""

VIEWER = """
{
  viewer { role user { email name } }
  merchant { stores { nodes { storeId } } }
}
"""

NODE = """
query Node($id: ID!) {
  node(id: $id) { id }
}
"""

AUDIT = """
{
  merchant {
    auditEvents(first: 100) { nodes { id action actor storeId targetId summary occurredAt } }
  }
}
"""

SESSION_CREATE = """
mutation LogIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) {
    session { token user { email } }
    userErrors { field code }
  }
}
"""

STORE_DELETE = """
mutation Delete($storeId: String!) {
  storeDelete(input: { storeId: $storeId }) { deletedStoreId userErrors { code } }
}
"""

# Tables whose rows must not change when a mutation fails.
DOMAIN_TABLES = ("merchants", "stores", "users", "invitations", "audit_events")

INVITEE = "invitee@example.com"
MERCHANT_WIDE_ROLES = ["ADMIN", "MANAGER", "DEVELOPER", "READ_ONLY"]
STORE_ROLES = ["STORE_MANAGER", "STORE_READ_ONLY"]


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


async def every_stored_value(database_url: str) -> list[str]:
    """Every value of every table, as text."""
    values: list[str] = []
    async with connect(database_url) as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in await conn.execute(select(table)):
                values.extend(str(value) for value in row)
    return values


async def invitation_rows(database_url: str) -> list[Any]:
    async with connect(database_url) as conn:
        return list(await conn.execute(select(Invitation.__table__).order_by(Invitation.id)))  # type: ignore[attr-defined]


async def expire_invitations(database_url: str) -> None:
    async with connect(database_url) as conn:
        await conn.execute(
            update(Invitation).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


async def invitation_count(database_url: str) -> int:
    async with connect(database_url) as conn:
        count = (await conn.execute(select(func.count()).select_from(Invitation))).scalar_one()
    return int(count)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def invite(
    api: Api, token: str, email: str, role: str, store_id: str | None = None
) -> dict[str, Any]:
    variables: dict[str, Any] = {"email": email, "role": role}
    if store_id is not None:
        variables["storeId"] = store_id
    result = await api.gql(INVITE, {"input": variables}, token=token)
    payload: dict[str, Any] = result.data["memberInvite"]
    return payload


async def invited(api: Api, token: str, email: str, role: str, store_id: str | None = None) -> str:
    """The invitation token of a successful invitation."""
    payload = await invite(api, token, email, role, store_id)
    assert payload["userErrors"] == [], payload
    invitation_token: str = payload["invitationToken"]
    return invitation_token


async def accept(
    api: Api, token: str, *, name: str = "New Member", password: str = PASSWORD
) -> dict[str, Any]:
    result = await api.gql(ACCEPT, {"input": {"token": token, "name": name, "password": password}})
    payload: dict[str, Any] = result.data["invitationAccept"]
    return payload


async def members(api: Api, token: str) -> list[tuple[str, str, str | None]]:
    """(email, role, storeId) of each member the caller sees, oldest first."""
    nodes = (await api.gql(MEMBERS, token=token)).data["merchant"]["members"]["nodes"]
    return [
        (node["user"]["email"], node["role"], node["store"]["storeId"] if node["store"] else None)
        for node in nodes
    ]


def single_error(payload: dict[str, Any]) -> dict[str, Any]:
    assert len(payload["userErrors"]) == 1, payload
    error: dict[str, Any] = payload["userErrors"][0]
    assert error["message"]
    return error


def assert_invite_refused(payload: dict[str, Any], code: str, field: list[str]) -> None:
    error = single_error(payload)
    assert error["code"] == code
    assert error["field"] == field
    assert payload["invitation"] is None
    assert payload["invitationToken"] is None


def assert_accept_refused(payload: dict[str, Any], code: str, field: list[str] | None) -> None:
    error = single_error(payload)
    assert error["code"] == code
    assert error["field"] == field
    assert payload["member"] is None
    assert payload["session"] is None


# --- invite and accept ----------------------------------------------------------------------


@pytest.mark.parametrize("role", MERCHANT_WIDE_ROLES + STORE_ROLES)
async def test_the_owner_invites_each_role_and_the_invitee_joins_with_it(
    api: Api, role: str
) -> None:
    # given
    owner = await api.sign_up()
    sub_store, _ = await create_store(api, owner.token, "Gangnam")
    store_id = sub_store if role in STORE_ROLES else None

    # when
    before = datetime.now(UTC)
    invitation = await invite(api, owner.token, INVITEE, role, store_id)
    after = datetime.now(UTC)

    # then
    assert invitation["userErrors"] == []
    assert invitation["invitation"]["email"] == INVITEE
    assert invitation["invitation"]["role"] == role
    assert invitation["invitation"]["store"] == ({"storeId": store_id} if store_id else None)
    expires_at = datetime.fromisoformat(invitation["invitation"]["expiresAt"])
    assert before + timedelta(days=7) - timedelta(seconds=1) <= expires_at
    assert expires_at <= after + timedelta(days=7) + timedelta(seconds=1)
    token = invitation["invitationToken"]
    assert token.startswith("poi_")
    assert len(token) >= 40

    # when
    joined = await accept(api, token, name="Kim Minji")

    # then
    assert joined["userErrors"] == []
    assert joined["member"]["role"] == role
    assert joined["member"]["user"]["email"] == INVITEE
    assert joined["member"]["store"] == ({"storeId": store_id} if store_id else None)
    session = joined["session"]["token"]
    viewer = (await api.gql(VIEWER, token=session)).data
    assert viewer["viewer"] == {"role": role, "user": {"email": INVITEE, "name": "Kim Minji"}}
    assert await members(api, owner.token) == [
        (owner.email, "OWNER", None),
        (INVITEE, role, store_id),
    ]
    log_in = await api.gql(SESSION_CREATE, {"input": {"email": INVITEE, "password": PASSWORD}})
    assert log_in.data["sessionCreate"]["userErrors"] == []


async def test_the_email_is_normalised_before_it_is_stored(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    token = await invited(api, owner.token, "  Mixed.Case@Example.COM ", "READ_ONLY")
    joined = await accept(api, token)

    # then
    assert joined["member"]["user"]["email"] == "mixed.case@example.com"


async def test_an_admin_may_invite_an_admin(api: Api) -> None:
    # given
    owner = await api.sign_up()
    admin = await invite_and_join(api, owner.token, "ADMIN")

    # when
    payload = await invite(api, admin.token, INVITEE, "ADMIN")

    # then
    assert payload["userErrors"] == []
    assert payload["invitation"]["role"] == "ADMIN"


@pytest.mark.parametrize("role", ["READ_ONLY", "STORE_READ_ONLY"])
async def test_a_manager_may_invite_read_only_roles(api: Api, role: str) -> None:
    # given
    owner = await api.sign_up()
    sub_store, _ = await create_store(api, owner.token, "Gangnam")
    manager = await invite_and_join(api, owner.token, "MANAGER")

    # when
    payload = await invite(
        api, manager.token, INVITEE, role, sub_store if role in STORE_ROLES else None
    )

    # then
    assert payload["userErrors"] == []
    joined = await accept(api, payload["invitationToken"])
    assert joined["member"]["role"] == role


@pytest.mark.parametrize("role", STORE_ROLES)
async def test_a_store_manager_may_invite_store_roles_to_its_own_sub_store(
    api: Api, role: str
) -> None:
    # given
    owner = await api.sign_up()
    sub_store, _ = await create_store(api, owner.token, "Gangnam")
    store_manager = await invite_and_join(api, owner.token, "STORE_MANAGER", sub_store)

    # when
    payload = await invite(api, store_manager.token, INVITEE, role, sub_store)

    # then
    assert payload["userErrors"] == []
    joined = await accept(api, payload["invitationToken"])
    assert joined["member"]["role"] == role
    assert joined["member"]["store"] == {"storeId": sub_store}
    assert [m[0] for m in await members(api, store_manager.token)] == [
        store_manager.email,
        INVITEE,
    ]


# --- the token is shown once ----------------------------------------------------------------


async def test_the_invitation_token_is_shown_once_and_stored_only_as_its_sha256(
    api: Api, database_url: str
) -> None:
    # given
    owner = await api.sign_up()

    # when
    payload = await invite(api, owner.token, INVITEE, "DEVELOPER")

    # then
    token = payload["invitationToken"]
    later = [
        await api.gql(MEMBERS, token=owner.token),
        await api.gql(AUDIT, token=owner.token),
        await api.gql(NODE, {"id": payload["invitation"]["id"]}, token=owner.token),
        await api.gql(VIEWER, token=owner.token),
    ]
    for result in later:
        assert token not in json.dumps(result.body)
    rows = await invitation_rows(database_url)
    assert len(rows) == 1
    assert rows[0].token_hash == sha256_hex(token)
    assert all(token not in value for value in await every_stored_value(database_url))


async def test_accepting_does_not_give_the_token_back(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    token = await invited(api, owner.token, INVITEE, "READ_ONLY")

    # when
    result = await api.gql(
        ACCEPT, {"input": {"token": token, "name": "New Member", "password": PASSWORD}}
    )

    # then
    assert result.data["invitationAccept"]["userErrors"] == []
    assert token not in json.dumps(result.body)
    assert all(token not in value for value in await every_stored_value(database_url))
    assert all(PASSWORD not in value for value in await every_stored_value(database_url))


async def test_an_invitation_works_only_once(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    token = await invited(api, owner.token, INVITEE, "READ_ONLY")
    assert (await accept(api, token))["userErrors"] == []
    before = await stored_rows(database_url)

    # when
    payload = await accept(api, token, name="Someone Else", password="another password 1")

    # then
    assert_accept_refused(payload, "TOKEN_INVALID", ["input", "token"])
    assert await stored_rows(database_url) == before


async def test_a_new_invitation_supersedes_the_pending_one(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    first = await invited(api, owner.token, INVITEE, "DEVELOPER")

    # when
    second = await invited(api, owner.token, INVITEE.upper(), "READ_ONLY")

    # then
    assert second != first
    refused = await accept(api, first)
    assert_accept_refused(refused, "TOKEN_INVALID", ["input", "token"])
    joined = await accept(api, second)
    assert joined["userErrors"] == []
    assert joined["member"]["role"] == "READ_ONLY"
    assert await members(api, owner.token) == [
        (owner.email, "OWNER", None),
        (INVITEE, "READ_ONLY", None),
    ]


# --- accepting: bad tokens and bad input ----------------------------------------------------


async def test_an_expired_invitation_gives_token_expired_and_changes_nothing(
    api: Api, database_url: str
) -> None:
    # given
    owner = await api.sign_up()
    token = await invited(api, owner.token, INVITEE, "DEVELOPER")
    await expire_invitations(database_url)
    before = await stored_rows(database_url)

    # when
    payload = await accept(api, token)

    # then
    assert_accept_refused(payload, "TOKEN_EXPIRED", ["input", "token"])
    assert await stored_rows(database_url) == before
    assert await members(api, owner.token) == [(owner.email, "OWNER", None)]


@pytest.mark.parametrize(
    "forge",
    [
        "unknown",
        "altered",
        "hash-of-the-token",
        "session-token",
        "empty",
        "no-prefix",
        "too-long",
    ],
)
async def test_a_forged_token_gives_token_invalid_and_changes_nothing(
    api: Api, database_url: str, forge: str
) -> None:
    # given
    owner = await api.sign_up()
    token = await invited(api, owner.token, INVITEE, "ADMIN")
    forged = {
        "unknown": "poi_" + "A" * 43,
        "altered": token[:-1] + ("A" if token[-1] != "A" else "B"),
        "hash-of-the-token": sha256_hex(token),
        "session-token": owner.token,
        "empty": "",
        "no-prefix": token.removeprefix("poi_"),
        "too-long": token + "A" * 600,
    }[forge]
    before = await stored_rows(database_url)

    # when
    payload = await accept(api, forged)

    # then
    assert_accept_refused(payload, "TOKEN_INVALID", ["input", "token"])
    assert await stored_rows(database_url) == before
    assert (await accept(api, token))["userErrors"] == []


@pytest.mark.parametrize(
    ("name", "password", "errors"),
    [
        ("New Member", "short", [("WEAK_PASSWORD", ["input", "password"])]),
        ("   ", PASSWORD, [("REQUIRED", ["input", "name"])]),
        ("n" * 101, PASSWORD, [("INVALID_INPUT", ["input", "name"])]),
        (
            "",
            "short",
            [("REQUIRED", ["input", "name"]), ("WEAK_PASSWORD", ["input", "password"])],
        ),
    ],
    ids=["weak-password", "blank-name", "long-name", "both"],
)
async def test_bad_name_or_password_keeps_the_invitation_usable(
    api: Api, database_url: str, name: str, password: str, errors: list[tuple[str, list[str]]]
) -> None:
    # given
    owner = await api.sign_up()
    token = await invited(api, owner.token, INVITEE, "READ_ONLY")
    before = await stored_rows(database_url)

    # when
    payload = await accept(api, token, name=name, password=password)

    # then
    assert payload["member"] is None
    assert payload["session"] is None
    assert len(payload["userErrors"]) == len(errors)
    assert sorted((e["code"], e["field"]) for e in payload["userErrors"]) == sorted(errors)
    assert await stored_rows(database_url) == before
    assert (await accept(api, token))["userErrors"] == []


async def test_accepting_after_the_email_signed_up_elsewhere_gives_email_taken(
    api: Api, database_url: str
) -> None:
    # given
    owner = await api.sign_up()
    token = await invited(api, owner.token, INVITEE, "READ_ONLY")
    await api.sign_up(email=INVITEE)
    before = await stored_rows(database_url)

    # when
    payload = await accept(api, token)

    # then
    error = single_error(payload)
    assert error["code"] == "EMAIL_TAKEN"
    # InvitationAcceptInput has no `email`: the field at fault is the token (or none).
    assert error["field"] in (["input", "token"], None)
    assert payload["member"] is None
    assert await stored_rows(database_url) == before


# --- inviting: bad input --------------------------------------------------------------------


async def test_inviting_an_existing_member_gives_already_member(
    api: Api, database_url: str
) -> None:
    # given
    owner = await api.sign_up()
    member = await invite_and_join(api, owner.token, "READ_ONLY")
    before = await stored_rows(database_url)
    listed = await members(api, owner.token)

    # when
    for email in (member.email, member.email.upper(), owner.email):
        payload = await invite(api, owner.token, email, "DEVELOPER")

        # then
        assert_invite_refused(payload, "ALREADY_MEMBER", ["input", "email"])
    assert await stored_rows(database_url) == before
    assert await members(api, owner.token) == listed


async def test_inviting_an_email_of_another_merchant_reveals_nothing(api: Api) -> None:
    """Merchant A must not learn that an email belongs to merchant B's user: the invitation is
    made exactly as for a new email, and the clash surfaces only to the invitee."""
    # given
    owner = await api.sign_up()
    elsewhere = await api.sign_up()

    # when
    taken = await invite(api, owner.token, elsewhere.email, "READ_ONLY")
    fresh = await invite(api, owner.token, "nobody-yet@example.com", "READ_ONLY")

    # then: the same shape of answer for both
    assert taken["userErrors"] == [] and fresh["userErrors"] == []
    assert taken["invitation"]["email"] == elsewhere.email
    assert taken["invitationToken"] and fresh["invitationToken"]
    assert set(taken) == set(fresh)
    # only the invitee learns of the clash, when accepting
    accepted = await accept(api, taken["invitationToken"])
    assert single_error(accepted)["code"] == "EMAIL_TAKEN"
    assert await members(api, owner.token) == [(owner.email, "OWNER", None)]
    assert await members(api, elsewhere.token) == [(elsewhere.email, "OWNER", None)]


@pytest.mark.parametrize(
    ("email", "code"),
    [("", "REQUIRED"), ("   ", "REQUIRED"), ("not-an-email", "INVALID_INPUT")],
    ids=["empty", "blank", "malformed"],
)
async def test_inviting_a_bad_email_changes_nothing(
    api: Api, database_url: str, email: str, code: str
) -> None:
    # given
    owner = await api.sign_up()
    before = await stored_rows(database_url)

    # when
    payload = await invite(api, owner.token, email, "READ_ONLY")

    # then
    assert_invite_refused(payload, code, ["input", "email"])
    assert await stored_rows(database_url) == before


@pytest.mark.parametrize(
    ("inviter", "role"),
    [
        ("OWNER", "OWNER"),
        ("ADMIN", "OWNER"),
        ("MANAGER", "OWNER"),
        ("MANAGER", "ADMIN"),
        ("MANAGER", "MANAGER"),
        ("MANAGER", "DEVELOPER"),
        ("STORE_MANAGER", "READ_ONLY"),
        ("STORE_MANAGER", "DEVELOPER"),
        ("STORE_MANAGER", "MANAGER"),
    ],
)
async def test_inviting_with_a_role_one_may_not_grant_gives_role_not_allowed(
    api: Api, database_url: str, inviter: str, role: str
) -> None:
    # given
    owner = await api.sign_up()
    sub_store, _ = await create_store(api, owner.token, "Gangnam")
    token = owner.token
    if inviter != "OWNER":
        store_id = sub_store if inviter in STORE_ROLES else None
        token = (await invite_and_join(api, owner.token, inviter, store_id)).token
    before = await stored_rows(database_url)
    listed = await members(api, owner.token)

    # when
    payload = await invite(api, token, INVITEE, role)

    # then
    assert_invite_refused(payload, "ROLE_NOT_ALLOWED", ["input", "role"])
    assert await stored_rows(database_url) == before
    assert await members(api, owner.token) == listed


@pytest.mark.parametrize("inviter", ["DEVELOPER", "READ_ONLY", "STORE_READ_ONLY"])
async def test_roles_without_member_management_are_forbidden_to_invite(
    api: Api, database_url: str, inviter: str
) -> None:
    # given
    owner = await api.sign_up()
    sub_store, _ = await create_store(api, owner.token, "Gangnam")
    member = await invite_and_join(
        api, owner.token, inviter, sub_store if inviter in STORE_ROLES else None
    )
    before = await stored_rows(database_url)

    # when
    result = await api.gql(
        INVITE,
        {"input": {"email": INVITEE, "role": "STORE_READ_ONLY", "storeId": sub_store}},
        token=member.token,
    )

    # then
    assert result.error_codes == ["FORBIDDEN"]
    assert result.body.get("data") is None
    assert await stored_rows(database_url) == before


async def test_inviting_without_a_session_is_unauthenticated(api: Api, database_url: str) -> None:
    # given
    await api.sign_up()
    before = await stored_rows(database_url)

    # when
    result = await api.gql(INVITE, {"input": {"email": INVITEE, "role": "READ_ONLY"}})

    # then
    assert result.error_codes == ["UNAUTHENTICATED"]
    assert await stored_rows(database_url) == before


async def _store_id_for(api: Api, owner: SignedUp, which: str) -> str:
    if which == "representative":
        return owner.representative_store_id
    if which == "sub-store":
        return (await create_store(api, owner.token, "Gangnam"))[0]
    if which == "deleted-sub-store":
        store_id, _ = await create_store(api, owner.token, "Closed")
        result = await api.gql(STORE_DELETE, {"storeId": store_id}, token=owner.token)
        assert result.data["storeDelete"]["userErrors"] == []
        return store_id
    if which == "other-merchant":
        other = await api.sign_up()
        return (await create_store(api, other.token, "Elsewhere"))[0]
    if which == "unknown":
        return "store-00000000-0000-4000-8000-000000000000"
    assert which == "malformed"
    return "not-a-store-id"


@pytest.mark.parametrize(
    ("role", "store", "code"),
    [
        ("STORE_MANAGER", None, "REQUIRED"),
        ("STORE_READ_ONLY", None, "REQUIRED"),
        ("STORE_MANAGER", "representative", "INVALID_INPUT"),
        ("STORE_READ_ONLY", "representative", "INVALID_INPUT"),
        ("READ_ONLY", "sub-store", "INVALID_INPUT"),
        ("DEVELOPER", "sub-store", "INVALID_INPUT"),
        ("ADMIN", "representative", "INVALID_INPUT"),
        ("STORE_MANAGER", "unknown", "NOT_FOUND"),
        ("STORE_MANAGER", "malformed", "NOT_FOUND"),
        ("STORE_MANAGER", "deleted-sub-store", "NOT_FOUND"),
        ("STORE_READ_ONLY", "other-merchant", "NOT_FOUND"),
    ],
)
async def test_a_wrong_store_for_the_role_changes_nothing(
    api: Api, database_url: str, role: str, store: str | None, code: str
) -> None:
    # given
    owner = await api.sign_up()
    store_id = await _store_id_for(api, owner, store) if store else None
    before = await stored_rows(database_url)

    # when
    payload = await invite(api, owner.token, INVITEE, role, store_id)

    # then
    assert_invite_refused(payload, code, ["input", "storeId"])
    assert await stored_rows(database_url) == before
    assert await members(api, owner.token) == [(owner.email, "OWNER", None)]


async def test_a_store_manager_cannot_invite_to_another_sub_store(
    api: Api, database_url: str
) -> None:
    # given
    owner = await api.sign_up()
    gangnam, _ = await create_store(api, owner.token, "Gangnam")
    hongdae, _ = await create_store(api, owner.token, "Hongdae")
    store_manager = await invite_and_join(api, owner.token, "STORE_MANAGER", gangnam)
    before = await stored_rows(database_url)

    # when
    payload = await invite(api, store_manager.token, INVITEE, "STORE_READ_ONLY", hongdae)

    # then
    assert_invite_refused(payload, "NOT_FOUND", ["input", "storeId"])
    assert await stored_rows(database_url) == before


async def test_a_failed_re_invitation_keeps_the_pending_one(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    token = await invited(api, owner.token, INVITEE, "READ_ONLY")
    before = await stored_rows(database_url)

    # when
    payload = await invite(api, owner.token, INVITEE, "STORE_MANAGER")

    # then
    assert_invite_refused(payload, "REQUIRED", ["input", "storeId"])
    assert await stored_rows(database_url) == before
    assert await invitation_count(database_url) == 1
    assert (await accept(api, token))["userErrors"] == []
