"""Nobody can hand out rights they do not have (issue 12, finding 1).

A role may be granted, changed to or acted on only by a caller whose own access covers every
cell of that role's row in the permission matrix, on the same store scope. The expected matrix
is the specification's (tests/members/test_permission_matrix.py), not the code's.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select
from sqlmodel import col

from db.engine import create_engine
from db.models import Invitation, Store, User
from db.types import utcnow
from gql_api.permissions import GRANTABLE, Role
from gql_api.security.tokens import INVITATION_TOKEN_PREFIX, new_token, token_hash
from tests.members.test_permission_matrix import EXPECTED_MATRIX, ROLES
from tests.support import ACCEPT, INVITE, PASSWORD, Api, create_store, invite_and_join

_LEVEL = {"no": 0, "own": 1, "all": 2}

# What the console lets each role grant (the product's table; peers only for ADMIN and
# STORE_MANAGER). The test below checks that every grant is also safe by the matrix.
EXPECTED_GRANTABLE = {
    "OWNER": {"ADMIN", "MANAGER", "DEVELOPER", "READ_ONLY", "STORE_MANAGER", "STORE_READ_ONLY"},
    "ADMIN": {"ADMIN", "MANAGER", "DEVELOPER", "READ_ONLY", "STORE_MANAGER", "STORE_READ_ONLY"},
    "MANAGER": {"READ_ONLY", "STORE_READ_ONLY"},
    "DEVELOPER": set(),
    "READ_ONLY": set(),
    "STORE_MANAGER": {"STORE_MANAGER", "STORE_READ_ONLY"},
    "STORE_READ_ONLY": set(),
}


def _cell(operation: str, role: str) -> int:
    return _LEVEL[EXPECTED_MATRIX[operation].split()[ROLES.index(role)]]


def _exceeds(granted: str, granter: str) -> list[str]:
    """The operations `granted` may do where `granter` may not (or more widely)."""
    return [op for op in EXPECTED_MATRIX if _cell(op, granted) > _cell(op, granter)]


@pytest.mark.parametrize("granter", ROLES)
@pytest.mark.parametrize("granted", ROLES)
def test_no_grantable_role_can_do_anything_its_granter_cannot(granter: str, granted: str) -> None:
    may_grant = Role(granted) in GRANTABLE[Role(granter)]
    if may_grant:
        assert _exceeds(granted, granter) == [], f"{granter} may grant {granted}"
    assert may_grant == (granted in EXPECTED_GRANTABLE[granter])


@pytest.mark.parametrize("granter", ROLES)
async def test_every_role_invites_exactly_what_it_may_grant_over_http(
    api: Api, granter: str
) -> None:
    # given: a merchant with a sub-store, and a member with the granter's role (bound to it)
    owner = await api.sign_up()
    sub_store, _ = await create_store(api, owner.token, "Gangnam")
    token = owner.token
    if granter != "OWNER":
        store = sub_store if granter.startswith("STORE_") else None
        token = (await invite_and_join(api, owner.token, granter, store)).token

    for n, role in enumerate(ROLES):
        # when
        variables: dict[str, object] = {"email": f"new{n}@example.com", "role": role}
        if role.startswith("STORE_"):
            variables["storeId"] = sub_store
        response = await api.gql(INVITE, {"input": variables}, token=token)

        # then: refused (FORBIDDEN for roles that manage no members, ROLE_NOT_ALLOWED for the
        # others) unless the role is grantable and safe
        if not EXPECTED_GRANTABLE[granter]:
            assert response.error_codes == ["FORBIDDEN"]
            continue
        invited = response.data["memberInvite"]
        if role in EXPECTED_GRANTABLE[granter]:
            assert invited["userErrors"] == [], (granter, role, invited)
            assert _exceeds(role, granter) == []
            joined = await api.gql(
                ACCEPT,
                {
                    "input": {
                        "token": invited["invitationToken"],
                        "name": "New",
                        "password": PASSWORD,
                    }
                },
            )
            assert joined.data["invitationAccept"]["member"]["role"] == role
        else:
            codes = [e["code"] for e in invited["userErrors"]]
            assert codes == ["ROLE_NOT_ALLOWED"], (granter, role, invited)
            assert invited["invitationToken"] is None


async def test_a_manager_cannot_mint_a_store_manager_to_edit_channels(
    api: Api, database_url: str
) -> None:
    """The attack: a MANAGER (no channel rights) invited a STORE_MANAGER, accepted the
    invitation itself, and changed a sub-store's channels with the second account."""
    # given
    owner = await api.sign_up()
    gangnam, _ = await create_store(api, owner.token, "Gangnam")
    manager = await invite_and_join(api, owner.token, "MANAGER")

    # when
    invited = await api.gql(
        INVITE,
        {"input": {"email": "sock@example.com", "role": "STORE_MANAGER", "storeId": gangnam}},
        token=manager.token,
    )

    # then
    payload = invited.data["memberInvite"]
    assert [e["code"] for e in payload["userErrors"]] == ["ROLE_NOT_ALLOWED"]
    assert payload["invitationToken"] is None
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            emails = (await conn.execute(select(col(Invitation.email)))).scalars().all()
    finally:
        await engine.dispose()
    assert "sock@example.com" not in emails


async def test_an_invitation_sent_before_the_rule_cannot_be_accepted(
    api: Api, database_url: str
) -> None:
    """An invitation a MANAGER sent for STORE_MANAGER under the old rule dies at accept time."""
    # given: such an invitation, written as the old code wrote it
    owner = await api.sign_up()
    gangnam, _ = await create_store(api, owner.token, "Gangnam")
    manager = await invite_and_join(api, owner.token, "MANAGER")
    token = new_token(INVITATION_TOKEN_PREFIX)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            inviter = (
                await conn.execute(
                    select(User.id, User.merchant_id).where(col(User.email) == manager.email)
                )
            ).one()
            sub_store_pk = (
                await conn.execute(select(Store.id).where(col(Store.store_id) == gangnam))
            ).scalar_one()
            await conn.execute(
                insert(Invitation).values(
                    merchant_id=inviter.merchant_id,
                    email="sock@example.com",
                    role="STORE_MANAGER",
                    store_pk=sub_store_pk,
                    token_hash=token_hash(token),
                    invited_by=inviter.id,
                    expires_at=utcnow() + timedelta(days=7),
                    created_at=utcnow(),
                )
            )
    finally:
        await engine.dispose()

    # when
    accepted = await api.gql(
        ACCEPT, {"input": {"token": token, "name": "Sock", "password": PASSWORD}}
    )

    # then
    payload = accepted.data["invitationAccept"]
    assert [e["code"] for e in payload["userErrors"]] == ["TOKEN_INVALID"]
    assert payload["session"] is None
