"""invitationRevoke and invitationResend: only pending invitations, only those the caller could
have sent, the old token dead after either, and another merchant's invitations never there."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from db.models import Invitation
from db.types import utcnow
from gql_api.ids import global_id, pk_of
from tests.factories import Seeded, seed_merchant
from tests.support import ACCEPT, INVITE, PASSWORD, Api, connect

REVOKE = """mutation($id: ID!) { invitationRevoke(input: {id: $id}) {
    invitation { id status email } userErrors { field code message } } }"""
RESEND = """mutation($id: ID!) { invitationResend(input: {id: $id}) {
    invitation { id status expiresAt createdAt } invitationToken
    userErrors { field code message } } }"""
NODE = """query($id: ID!) { node(id: $id) { id ... on Invitation { status email createdAt } } }"""
AUDIT = """query($a: String!) { merchant { auditEvents(action: $a) {
    nodes { action summary targetId storeId } } } }"""

_emails = iter(range(1_000_000))


async def _invite(
    api: Api, token: str, role: str = "READ_ONLY", store_id: str | None = None
) -> tuple[str, str]:
    """(invitation id, invitation token) of a new invitation sent with `token`."""
    invite: dict[str, object] = {"email": f"managed{next(_emails)}@example.com", "role": role}
    if store_id is not None:
        invite["storeId"] = store_id
    result = await api.gql(INVITE, {"input": invite}, token=token)
    payload = result.data["memberInvite"]
    assert payload["userErrors"] == [], payload
    return payload["invitation"]["id"], payload["invitationToken"]


async def _accept(api: Api, invitation_token: str) -> list[dict[str, object]]:
    accept = {"token": invitation_token, "name": "Invitee", "password": PASSWORD}
    result = await api.gql(ACCEPT, {"input": accept})
    errors: list[dict[str, object]] = result.data["invitationAccept"]["userErrors"]
    return errors


async def _expire(database_url: str, invitation_id: str) -> None:
    async with connect(database_url) as conn:
        await conn.execute(
            update(Invitation)
            .where(col(Invitation.id) == pk_of(invitation_id, "Invitation"))
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )


async def _seeded(db_engine: AsyncEngine) -> Seeded:
    return await seed_merchant(
        db_engine,
        roles=["MANAGER", "DEVELOPER", "STORE_MANAGER"],
        stores=("Sub store", "Other sub store"),
    )


async def test_revoked_invitation_token_is_refused(api: Api) -> None:
    # given a pending invitation
    owner = await api.sign_up()
    invitation_id, token = await _invite(api, owner.token)

    # when the owner revokes it
    result = await api.gql(REVOKE, {"id": invitation_id}, token=owner.token)

    # then it is REVOKED and its token no longer works
    payload = result.data["invitationRevoke"]
    assert payload["userErrors"] == []
    assert payload["invitation"]["status"] == "REVOKED"
    errors = await _accept(api, token)
    assert [e["code"] for e in errors] == ["TOKEN_INVALID"]
    node = await api.gql(NODE, {"id": invitation_id}, token=owner.token)
    assert node.data["node"]["status"] == "REVOKED"


async def test_resend_kills_the_old_token_and_the_new_one_works(api: Api) -> None:
    # given a pending invitation
    owner = await api.sign_up()
    invitation_id, old_token = await _invite(api, owner.token)

    # when it is resent
    result = await api.gql(RESEND, {"id": invitation_id}, token=owner.token)

    # then a new token is shown once, the old one is refused and the new one joins
    payload = result.data["invitationResend"]
    assert payload["userErrors"] == []
    new_token = payload["invitationToken"]
    assert new_token and new_token != old_token
    assert payload["invitation"]["status"] == "PENDING"
    assert [e["code"] for e in await _accept(api, old_token)] == ["TOKEN_INVALID"]
    assert await _accept(api, new_token) == []
    node = await api.gql(NODE, {"id": invitation_id}, token=owner.token)
    assert node.data["node"]["status"] == "ACCEPTED"


async def test_resend_renews_the_expiry(api: Api, database_url: str) -> None:
    # given an invitation whose token lapses in a minute
    owner = await api.sign_up()
    invitation_id, _ = await _invite(api, owner.token)
    async with connect(database_url) as conn:
        await conn.execute(
            update(Invitation)
            .where(col(Invitation.id) == pk_of(invitation_id, "Invitation"))
            .values(expires_at=utcnow() + timedelta(minutes=1))
        )

    # when it is resent
    result = await api.gql(RESEND, {"id": invitation_id}, token=owner.token)

    # then it is valid for another 7 days (well over 6 from now), created at the same time
    invitation = result.data["invitationResend"]["invitation"]
    expires_at = datetime.fromisoformat(invitation["expiresAt"])
    assert expires_at > utcnow() + timedelta(days=6)
    node = await api.gql(NODE, {"id": invitation_id}, token=owner.token)
    assert node.data["node"]["createdAt"] == invitation["createdAt"]


async def test_only_pending_invitations_can_be_revoked_or_resent(
    api: Api, database_url: str
) -> None:
    # given an accepted, a revoked and an expired invitation
    owner = await api.sign_up()
    accepted, accepted_token = await _invite(api, owner.token)
    assert await _accept(api, accepted_token) == []
    revoked, _ = await _invite(api, owner.token)
    await api.gql(REVOKE, {"id": revoked}, token=owner.token)
    expired, expired_token = await _invite(api, owner.token)
    await _expire(database_url, expired)

    for invitation_id, status in (
        (accepted, "ACCEPTED"),
        (revoked, "REVOKED"),
        (expired, "EXPIRED"),
    ):
        for mutation, name in ((REVOKE, "invitationRevoke"), (RESEND, "invitationResend")):
            # when it is revoked or resent
            result = await api.gql(mutation, {"id": invitation_id}, token=owner.token)

            # then INVITATION_NOT_PENDING names its status, and nothing changes
            payload = result.data[name]
            assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
                ("INVITATION_NOT_PENDING", ["input", "id"])
            ]
            assert status in payload["userErrors"][0]["message"]
            assert payload["invitation"] is None
        node = await api.gql(NODE, {"id": invitation_id}, token=owner.token)
        assert node.data["node"]["status"] == status
    # the expired token is still refused as expired, not revived by the failed resend
    assert [e["code"] for e in await _accept(api, expired_token)] == ["TOKEN_EXPIRED"]


async def test_store_manager_manages_only_its_own_stores_grantable_invitations(
    api: Api, db_engine: AsyncEngine
) -> None:
    # given invitations to the store manager's sub-store, another sub-store and merchant-wide
    seeded = await _seeded(db_engine)
    owner, manager = seeded.owner.token, seeded.members["STORE_MANAGER"].token
    own = await _invite(api, owner, "STORE_READ_ONLY", seeded.stores["Sub store"])
    other = await _invite(api, owner, "STORE_READ_ONLY", seeded.stores["Other sub store"])
    merchant_wide = await _invite(api, owner, "READ_ONLY")

    # when the store manager tries each
    outcomes = {}
    for name, (invitation_id, _) in (("own", own), ("other", other), ("wide", merchant_wide)):
        for mutation, field in ((RESEND, "invitationResend"), (REVOKE, "invitationRevoke")):
            result = await api.gql(mutation, {"id": invitation_id}, token=manager)
            errors = result.data[field]["userErrors"]
            outcomes[f"{name}:{field}"] = [(e["code"], e["field"]) for e in errors]

    # then only its own sub-store's invitation is there; the others do not exist for it
    not_found = [("NOT_FOUND", ["input", "id"])]
    assert outcomes == {
        "own:invitationResend": [],
        "own:invitationRevoke": [],
        "other:invitationResend": not_found,
        "other:invitationRevoke": not_found,
        "wide:invitationResend": not_found,
        "wide:invitationRevoke": not_found,
    }
    node = await api.gql(NODE, {"id": other[0]}, token=manager)
    assert node.data["node"] is None


async def test_manager_cannot_touch_an_invitation_for_a_role_it_cannot_grant(
    api: Api, db_engine: AsyncEngine
) -> None:
    # given an ADMIN invitation sent by the owner
    seeded = await _seeded(db_engine)
    invitation_id, token = await _invite(api, seeded.owner.token, "ADMIN")

    # when a MANAGER (who may not grant ADMIN) tries to revoke or resend it
    manager = seeded.members["MANAGER"].token
    revoked = await api.gql(REVOKE, {"id": invitation_id}, token=manager)
    resent = await api.gql(RESEND, {"id": invitation_id}, token=manager)

    # then it is not there for the manager, and its token still works
    for result, field in ((revoked, "invitationRevoke"), (resent, "invitationResend")):
        assert [e["code"] for e in result.data[field]["userErrors"]] == ["NOT_FOUND"]
    assert await _accept(api, token) == []


async def test_another_merchants_invitation_is_not_found(api: Api) -> None:
    # given merchant B's pending invitation
    owner_a = await api.sign_up()
    owner_b = await api.sign_up()
    foreign_id, foreign_token = await _invite(api, owner_b.token, "ADMIN")

    answers = {}
    for label, invitation_id in (
        ("B's", foreign_id),
        ("made up", global_id("Invitation", 999_999)),
    ):
        # when merchant A's owner revokes, resends or reads it
        revoked = await api.gql(REVOKE, {"id": invitation_id}, token=owner_a.token)
        resent = await api.gql(RESEND, {"id": invitation_id}, token=owner_a.token)
        node = await api.gql(NODE, {"id": invitation_id}, token=owner_a.token)
        answers[label] = (
            revoked.data["invitationRevoke"],
            resent.data["invitationResend"],
            node.data["node"],
        )

    # then B's invitation answers exactly as one that does not exist: NOT_FOUND, never FORBIDDEN
    assert answers["B's"] == answers["made up"]
    revoke_payload = answers["B's"][0]
    assert isinstance(revoke_payload, dict)
    assert [e["code"] for e in revoke_payload["userErrors"]] == ["NOT_FOUND"]
    assert await _accept(api, foreign_token) == []


async def test_revoke_and_resend_are_audited_without_the_token(api: Api) -> None:
    # given an invitation revoked and another resent
    owner = await api.sign_up()
    revoked_id, revoked_token = await _invite(api, owner.token)
    resent_id, first_token = await _invite(api, owner.token)
    await api.gql(REVOKE, {"id": revoked_id}, token=owner.token)
    resent = await api.gql(RESEND, {"id": resent_id}, token=owner.token)
    new_token = resent.data["invitationResend"]["invitationToken"]

    # when the audit log is read
    revokes = await api.gql(AUDIT, {"a": "invitation.revoke"}, token=owner.token)
    resends = await api.gql(AUDIT, {"a": "invitation.resend"}, token=owner.token)

    # then each names its invitation, and no token appears anywhere in it
    revoke_events = revokes.data["merchant"]["auditEvents"]["nodes"]
    resend_events = resends.data["merchant"]["auditEvents"]["nodes"]
    assert [e["targetId"] for e in revoke_events] == [revoked_id]
    assert [e["targetId"] for e in resend_events] == [resent_id]
    everything = await api.gql(
        "{ merchant { auditEvents { nodes { summary targetId actor } } } }", token=owner.token
    )
    text = str(everything.body)
    for token in (revoked_token, first_token, new_token):
        assert token not in text
        assert token[-12:] not in text


async def test_node_shows_the_status_of_an_expired_invitation(api: Api, database_url: str) -> None:
    # given an invitation past its expiry, never accepted
    owner = await api.sign_up()
    invitation_id, _ = await _invite(api, owner.token)
    await _expire(database_url, invitation_id)

    # when it is read
    node = await api.gql(NODE, {"id": invitation_id}, token=owner.token)

    # then it is EXPIRED
    assert node.data["node"]["status"] == "EXPIRED"
