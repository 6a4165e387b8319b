"""Merchant.invitations: every status, filtered by the database so pages and totalCount agree,
only the invitations the caller could have sent, and never a token."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from db.models import Invitation
from db.types import utcnow
from gql_api.ids import pk_of
from tests.factories import seed_merchant
from tests.support import ACCEPT, INVITE, PASSWORD, Api, connect

LIST = """query($first: Int, $after: String, $status: InvitationStatus) { merchant {
    invitations(first: $first, after: $after, status: $status) {
        totalCount nodes { id email role status createdAt expiresAt store { storeId } }
        pageInfo { hasNextPage endCursor } } } }"""
REVOKE = """mutation($id: ID!) { invitationRevoke(input: {id: $id}) { userErrors { code } } }"""

_emails = iter(range(1_000_000))


async def _invite(
    api: Api, token: str, role: str = "READ_ONLY", store_id: str | None = None
) -> tuple[str, str]:
    invite: dict[str, object] = {"email": f"listed{next(_emails)}@example.com", "role": role}
    if store_id is not None:
        invite["storeId"] = store_id
    result = await api.gql(INVITE, {"input": invite}, token=token)
    payload = result.data["memberInvite"]
    assert payload["userErrors"] == [], payload
    return payload["invitation"]["id"], payload["invitationToken"]


async def _list(
    api: Api,
    token: str,
    status: str | None = None,
    first: int | None = None,
    after: str | None = None,
) -> dict[str, object]:
    variables = {"status": status, "first": first, "after": after}
    result = await api.gql(LIST, variables, token=token)
    invitations: dict[str, object] = result.data["merchant"]["invitations"]
    return invitations


async def test_each_status_filter_lists_exactly_its_invitations(
    api: Api, database_url: str
) -> None:
    # given two pending, one accepted, one revoked and one expired invitation
    owner = await api.sign_up()
    pending = [(await _invite(api, owner.token))[0] for _ in range(2)]
    accepted, accepted_token = await _invite(api, owner.token)
    joined = await api.gql(
        ACCEPT, {"input": {"token": accepted_token, "name": "A", "password": PASSWORD}}
    )
    assert joined.data["invitationAccept"]["userErrors"] == []
    revoked, _ = await _invite(api, owner.token)
    await api.gql(REVOKE, {"id": revoked}, token=owner.token)
    expired, _ = await _invite(api, owner.token)
    async with connect(database_url) as conn:
        await conn.execute(
            update(Invitation)
            .where(col(Invitation.id) == pk_of(expired, "Invitation"))
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )

    # when the owner lists them by status, and without one
    by_status = {
        s: await _list(api, owner.token, s) for s in ("PENDING", "ACCEPTED", "EXPIRED", "REVOKED")
    }
    everything = await _list(api, owner.token)

    # then each filter lists exactly its invitations, newest first, with the matching count
    expected = {
        "PENDING": list(reversed(pending)),
        "ACCEPTED": [accepted],
        "EXPIRED": [expired],
        "REVOKED": [revoked],
    }
    for status, page in by_status.items():
        nodes = page["nodes"]
        assert isinstance(nodes, list)
        assert [n["id"] for n in nodes] == expected[status]
        assert {n["status"] for n in nodes} == {status}
        assert page["totalCount"] == len(expected[status])
    all_nodes = everything["nodes"]
    assert isinstance(all_nodes, list)
    assert [n["id"] for n in all_nodes] == [expired, revoked, accepted, *reversed(pending)]
    assert everything["totalCount"] == 5


async def test_a_filtered_list_pages_through_only_matching_invitations(api: Api) -> None:
    # given five invitations, revoked and pending in turn
    owner = await api.sign_up()
    ids = [(await _invite(api, owner.token))[0] for _ in range(5)]
    for invitation_id in ids[::2]:
        await api.gql(REVOKE, {"id": invitation_id}, token=owner.token)

    # when the pending ones are read one per page
    first = await _list(api, owner.token, "PENDING", first=1)
    info = first["pageInfo"]
    assert isinstance(info, dict)
    second = await _list(api, owner.token, "PENDING", first=1, after=info["endCursor"])

    # then the pages hold the two pending ones, and say where the list ends
    pages = [first, second]
    assert [p["nodes"][0]["id"] for p in pages] == [ids[3], ids[1]]  # type: ignore[index]
    assert [p["pageInfo"]["hasNextPage"] for p in pages] == [True, False]  # type: ignore[index]
    assert [p["totalCount"] for p in pages] == [2, 2]


async def test_store_manager_lists_only_its_stores_invitations_for_roles_it_grants(
    api: Api, db_engine: AsyncEngine
) -> None:
    # given invitations to the store manager's sub-store, another one, and merchant-wide
    seeded = await seed_merchant(
        db_engine, roles=["STORE_MANAGER"], stores=("Sub store", "Other sub store")
    )
    owner = seeded.owner.token
    own, _ = await _invite(api, owner, "STORE_READ_ONLY", seeded.stores["Sub store"])
    await _invite(api, owner, "STORE_READ_ONLY", seeded.stores["Other sub store"])
    await _invite(api, owner, "ADMIN")

    # when the store manager lists invitations
    page = await _list(api, seeded.members["STORE_MANAGER"].token)

    # then it sees only its own sub-store's
    nodes = page["nodes"]
    assert isinstance(nodes, list)
    assert [n["id"] for n in nodes] == [own]
    assert nodes[0]["store"] == {"storeId": seeded.stores["Sub store"]}
    assert page["totalCount"] == 1
    assert (await _list(api, owner))["totalCount"] == 3


async def test_the_list_never_shows_a_token(api: Api) -> None:
    # given an invitation, resent once
    owner = await api.sign_up()
    invitation_id, first_token = await _invite(api, owner.token)
    resent = await api.gql(
        """mutation($id: ID!) { invitationResend(input: {id: $id}) { invitationToken } }""",
        {"id": invitation_id},
        token=owner.token,
    )
    second_token = resent.data["invitationResend"]["invitationToken"]

    # when the list is read
    result = await api.gql(LIST, {}, token=owner.token)

    # then neither token is in it
    assert result.data["merchant"]["invitations"]["totalCount"] == 1
    for token in (first_token, second_token):
        assert token not in str(result.body)


async def test_roles_without_member_management_may_not_list(
    api: Api, db_engine: AsyncEngine
) -> None:
    # given a developer (who may not manage members)
    seeded = await seed_merchant(db_engine, roles=["DEVELOPER"])

    # when it lists invitations
    result = await api.gql(LIST, {}, token=seeded.members["DEVELOPER"].token)

    # then it is FORBIDDEN
    assert result.error_codes == ["FORBIDDEN"]
