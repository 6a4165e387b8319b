"""A person's sessions and password (issue 16, part 3): viewer.sessions, sessionRevoke by id,
sessionRevokeAll, passwordChange, and memberSessionsRevoke for those who may manage the member;
lastSeenAt written at most once a minute per session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from starlette.applications import Starlette

from db import sqlite_reads
from db.models import AuthSession, User
from db.types import utcnow
from gql_api.accounts.sessions import LAST_SEEN_GRANULARITY, seen_statement
from gql_api.app import create_app
from gql_api.security.tokens import token_hash
from tests.conftest import make_settings
from tests.factories import add_member, seed_merchant
from tests.support import PASSWORD, Api, connect, invite_and_join

SESSION_CREATE = """mutation($i: SessionCreateInput!) { sessionCreate(input: $i) {
    session { token } userErrors { field code } } }"""
SESSIONS = """query($first: Int, $after: String) { viewer { sessions(first: $first, after: $after) {
    totalCount
    edges { cursor node { id createdAt lastSeenAt expiresAt clientAddress userAgent current } }
    pageInfo { hasNextPage endCursor } } } }"""
REVOKE = """mutation($i: SessionRevokeInput) { sessionRevoke(input: $i) {
    revoked userErrors { field code message } } }"""
REVOKE_ALL = "mutation { sessionRevokeAll { revokedCount userErrors { field code } } }"
PASSWORD_CHANGE = """mutation($i: PasswordChangeInput!) { passwordChange(input: $i) {
    revokedSessionCount userErrors { field code message } } }"""
MEMBER_SESSIONS_REVOKE = """mutation($m: ID!) { memberSessionsRevoke(input: {memberId: $m}) {
    revokedCount userErrors { field code message } } }"""
AUDIT = """query($a: String) { merchant { auditEvents(first: 20, action: $a) {
    nodes { action actor targetId summary storeId } } } }"""
NODE = "query($id: ID!) { node(id: $id) { id ... on SessionInfo { current } } }"
VIEWER = "{ viewer { role } }"
SECRET_ISSUE = """mutation($s: String!) { apiSecretIssue(input: {storeId: $s, name: "Partner"}) {
    secret userErrors { code } } }"""

NEW_PASSWORD = "a brand new passphrase"
WRONG_PASSWORD = "wrong password 123"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@asynccontextmanager
async def client_at(
    app: Starlette, address: str = "127.0.0.1", user_agent: str | None = None
) -> AsyncIterator[Api]:
    """The service as seen from `address`, sending `user_agent`."""
    transport = httpx.ASGITransport(app=app, client=(address, 1234))
    headers = {"User-Agent": user_agent} if user_agent is not None else {}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as http:
        yield Api(http)


@asynccontextmanager
async def service(database_url: str, **overrides: object) -> AsyncIterator[Starlette]:
    application = create_app(make_settings(database_url, **overrides))
    try:
        yield application
    finally:
        application.state.app_state.hashing.close()
        sqlite_reads.close(application.state.app_state.engine)
        await application.state.app_state.engine.dispose()


async def log_in(api: Api, email: str, password: str = PASSWORD) -> str:
    result = await api.gql(SESSION_CREATE, {"i": {"email": email, "password": password}})
    payload = result.data["sessionCreate"]
    assert payload["userErrors"] == [], payload
    return str(payload["session"]["token"])


async def sessions_of(api: Api, token: str) -> list[dict[str, Any]]:
    result = await api.gql(SESSIONS, {"first": 100}, token=token)
    return [edge["node"] for edge in result.data["viewer"]["sessions"]["edges"]]


async def works(api: Api, token: str) -> bool:
    result = await api.gql(VIEWER, token=token)
    if result.status == 401:
        assert result.body["errors"][0]["extensions"]["reason"] == "REVOKED"
        return False
    return result.data["viewer"] is not None


async def audit(api: Api, owner_token: str, action: str) -> list[dict[str, Any]]:
    result = await api.gql(AUDIT, {"a": action}, token=owner_token)
    return list(result.data["merchant"]["auditEvents"]["nodes"])


def codes(payload: dict[str, Any]) -> list[tuple[list[str] | None, str]]:
    return [(error["field"], error["code"]) for error in payload["userErrors"]]


async def session_row(database_url: str, token: str) -> Any:
    async with connect(database_url) as conn:
        found = await conn.execute(
            select(AuthSession).where(col(AuthSession.token_hash) == token_hash(token))
        )
        return found.one()


async def set_last_seen(database_url: str, token: str, when: datetime) -> None:
    async with connect(database_url) as conn:
        await conn.execute(
            update(AuthSession)
            .where(col(AuthSession.token_hash) == token_hash(token))
            .values(last_seen_at=when)
        )


# --- viewer.sessions -----------------------------------------------------------------------------


async def test_sessions_lists_the_callers_working_sessions_newest_first(
    app: Starlette, api: Api
) -> None:
    # given an owner logged in three times, from two addresses and browsers, one logged out
    owner = await api.sign_up()
    async with client_at(app, "127.0.0.2", FIREFOX) as firefox:
        from_firefox = await log_in(firefox, owner.email)
    async with client_at(app, "::1", "curl/8.5.0") as curl:
        logged_out = await log_in(curl, owner.email)
    await api.gql(REVOKE, token=logged_out)
    other = await api.sign_up()

    # when the owner lists their sessions from the Firefox one
    async with client_at(app, "127.0.0.2", FIREFOX) as firefox:
        result = await firefox.gql(SESSIONS, {"first": 10}, token=from_firefox)

    # then the two working sessions, newest first, the caller's marked current
    connection = result.data["viewer"]["sessions"]
    assert connection["totalCount"] == 2
    nodes = [edge["node"] for edge in connection["edges"]]
    assert [(n["clientAddress"], n["userAgent"], n["current"]) for n in nodes] == [
        ("127.0.0.2", FIREFOX, True),
        ("127.0.0.1", f"python-httpx/{httpx.__version__}", False),
    ]
    for node in nodes:
        created = datetime.fromisoformat(node["createdAt"])
        assert datetime.fromisoformat(node["lastSeenAt"]) >= created
        assert datetime.fromisoformat(node["expiresAt"]) > created
    assert nodes[0]["createdAt"] >= nodes[1]["createdAt"]
    # no token anywhere, and nothing of the other person's
    assert from_firefox not in str(result.body) and owner.token not in str(result.body)
    assert len(await sessions_of(api, other.token)) == 1


async def test_sessions_page_with_cursors(api: Api) -> None:
    # given three sessions
    owner = await api.sign_up()
    await log_in(api, owner.email)
    await log_in(api, owner.email)

    # when paged two at a time
    first = (await api.gql(SESSIONS, {"first": 2}, token=owner.token)).data["viewer"]["sessions"]
    after = first["pageInfo"]["endCursor"]
    second = await api.gql(SESSIONS, {"first": 2, "after": after}, token=owner.token)

    # then every session once
    rest = second.data["viewer"]["sessions"]
    assert first["pageInfo"]["hasNextPage"] is True
    assert rest["pageInfo"]["hasNextPage"] is False
    ids = [e["node"]["id"] for e in first["edges"]] + [e["node"]["id"] for e in rest["edges"]]
    assert len(set(ids)) == 3


async def test_user_agent_is_kept_printable_and_at_most_256_characters(
    app: Starlette, api: Api
) -> None:
    owner = await api.sign_up()
    async with client_at(app, user_agent="A\tgent/1.0 " + "x" * 1000) as client:
        token = await log_in(client, owner.email)
    sessions = await sessions_of(api, token)
    agent = next(s["userAgent"] for s in sessions if s["current"])
    assert agent.startswith("Agent/1.0 x") and len(agent) == 256


async def test_an_api_secret_has_no_sessions(api: Api) -> None:
    owner = await api.sign_up()
    issued = await api.gql(SECRET_ISSUE, {"s": owner.representative_store_id}, token=owner.token)
    secret = f"PortOne {issued.data['apiSecretIssue']['secret']}"

    result = await api.gql(SESSIONS, {"first": 5}, authorization=secret)

    assert result.error_codes == ["FORBIDDEN"]


async def test_node_finds_only_the_callers_own_sessions(api: Api) -> None:
    owner = await api.sign_up()
    other = await api.sign_up()
    own_id = (await sessions_of(api, owner.token))[0]["id"]

    mine = await api.gql(NODE, {"id": own_id}, token=owner.token)
    theirs = await api.gql(NODE, {"id": own_id}, token=other.token)

    assert mine.data["node"] == {"id": own_id, "current": True}
    assert theirs.data["node"] is None


# --- lastSeenAt ----------------------------------------------------------------------------------


async def test_last_seen_is_written_when_a_minute_old_with_the_address_used(
    app: Starlette, api: Api, database_url: str
) -> None:
    # given a session last seen two minutes ago from another address
    owner = await api.sign_up()
    two_minutes_ago = utcnow() - timedelta(minutes=2)
    await set_last_seen(database_url, owner.token, two_minutes_ago)

    # when it is used from 127.0.0.7
    async with client_at(app, "127.0.0.7") as elsewhere:
        assert await works(elsewhere, owner.token)

    # then it was seen now, from there
    row = await session_row(database_url, owner.token)
    assert row.last_seen_at > two_minutes_ago + timedelta(minutes=1)
    assert row.client_address == "127.0.0.7"


async def test_last_seen_is_not_written_again_within_the_minute(
    app: Starlette, api: Api, database_url: str
) -> None:
    # given a session seen 30 seconds ago from its log-in address
    owner = await api.sign_up()
    half_a_minute_ago = utcnow() - timedelta(seconds=30)
    await set_last_seen(database_url, owner.token, half_a_minute_ago)

    # when it is used several times, from another address too
    for _ in range(3):
        assert await works(api, owner.token)
    async with client_at(app, "127.0.0.8") as elsewhere:
        assert await works(elsewhere, owner.token)

    # then nothing was written
    row = await session_row(database_url, owner.token)
    assert abs(row.last_seen_at - half_a_minute_ago) < timedelta(milliseconds=1)
    assert row.client_address == "127.0.0.1"


async def test_two_processes_seeing_a_stale_session_write_it_once(
    api: Api, database_url: str, db_engine: AsyncEngine
) -> None:
    # given a session last seen two minutes ago
    owner = await api.sign_up()
    await set_last_seen(database_url, owner.token, utcnow() - timedelta(minutes=2))
    row = await session_row(database_url, owner.token)

    # when two processes, both having read the stale time, mark it seen a moment apart
    now = utcnow()
    async with db_engine.begin() as conn:
        first = await conn.execute(seen_statement(row.id, now, "127.0.0.1", None))
    async with db_engine.begin() as conn:
        second = await conn.execute(
            seen_statement(row.id, now + timedelta(seconds=1), "127.0.0.9", None)
        )

    # then only the first one wrote
    assert (first.rowcount, second.rowcount) == (1, 0)
    assert (await session_row(database_url, owner.token)).client_address == "127.0.0.1"
    assert timedelta(minutes=1) == LAST_SEEN_GRANULARITY


# --- sessionRevoke -------------------------------------------------------------------------------


async def test_session_revoke_by_id_ends_that_session_only(api: Api) -> None:
    # given an owner logged in twice
    owner = await api.sign_up()
    laptop = await log_in(api, owner.email)
    laptop_id = next(s["id"] for s in await sessions_of(api, laptop) if s["current"])

    # when the first session ends the laptop's
    result = await api.gql(REVOKE, {"i": {"id": laptop_id}}, token=owner.token)

    # then
    assert result.data["sessionRevoke"] == {"revoked": True, "userErrors": []}
    assert not await works(api, laptop)
    assert await works(api, owner.token)
    assert [s["id"] for s in await sessions_of(api, owner.token)] != [laptop_id]
    events = await audit(api, owner.token, "session.revoke")
    assert len(events) == 1 and events[0]["targetId"] == laptop_id
    assert laptop not in str(events)
    # once more: already ended
    again = await api.gql(REVOKE, {"i": {"id": laptop_id}}, token=owner.token)
    assert again.data["sessionRevoke"] == {"revoked": False, "userErrors": []}


async def test_session_revoke_without_id_logs_out_as_before(api: Api) -> None:
    owner = await api.sign_up()
    second = await log_in(api, owner.email)

    without_input = await api.gql(REVOKE, token=owner.token)
    with_empty_input = await api.gql(REVOKE, {"i": {}}, token=second)

    assert without_input.data["sessionRevoke"] == {"revoked": True, "userErrors": []}
    assert with_empty_input.data["sessionRevoke"] == {"revoked": True, "userErrors": []}
    assert not await works(api, owner.token)
    assert not await works(api, second)


@pytest.mark.parametrize("whose", ["another user's", "garbage", "another type's"])
async def test_session_revoke_of_an_id_not_ones_own_is_not_found(api: Api, whose: str) -> None:
    # given two people of different merchants
    owner = await api.sign_up()
    other = await api.sign_up()
    theirs = (await sessions_of(api, other.token))[0]["id"]
    target = {"another user's": theirs, "garbage": "nope", "another type's": owner.merchant_id}

    # when the owner names the other's session
    result = await api.gql(REVOKE, {"i": {"id": target[whose]}}, token=owner.token)

    # then it does not exist for them, and the other's session works on
    payload = result.data["sessionRevoke"]
    assert payload["revoked"] is False
    assert codes(payload) == [(["input", "id"], "NOT_FOUND")]
    assert await works(api, other.token)


async def test_session_revoke_of_a_colleagues_session_is_not_found(
    api: Api, db_engine: AsyncEngine
) -> None:
    seeded = await seed_merchant(db_engine, roles=("ADMIN",))
    admin = seeded.members["ADMIN"]
    owner_session = (await sessions_of(api, seeded.owner.token))[0]["id"]

    result = await api.gql(REVOKE, {"i": {"id": owner_session}}, token=admin.token)

    assert codes(result.data["sessionRevoke"]) == [(["input", "id"], "NOT_FOUND")]
    assert await works(api, seeded.owner.token)


# --- sessionRevokeAll ----------------------------------------------------------------------------


async def test_session_revoke_all_ends_every_other_session(api: Api) -> None:
    # given three sessions of the owner and one of someone else
    owner = await api.sign_up()
    others = [await log_in(api, owner.email), await log_in(api, owner.email)]
    stranger = await api.sign_up()

    # when
    result = await api.gql(REVOKE_ALL, token=owner.token)

    # then
    assert result.data["sessionRevokeAll"] == {"revokedCount": 2, "userErrors": []}
    assert [await works(api, token) for token in others] == [False, False]
    assert await works(api, owner.token)
    assert await works(api, stranger.token)
    assert [s["current"] for s in await sessions_of(api, owner.token)] == [True]
    events = await audit(api, owner.token, "session.revoke_all")
    assert len(events) == 1 and "2" in events[0]["summary"]
    again = await api.gql(REVOKE_ALL, token=owner.token)
    assert again.data["sessionRevokeAll"]["revokedCount"] == 0


async def test_session_revoke_all_is_for_people_not_api_secrets(api: Api) -> None:
    owner = await api.sign_up()
    issued = await api.gql(SECRET_ISSUE, {"s": owner.representative_store_id}, token=owner.token)
    secret = f"PortOne {issued.data['apiSecretIssue']['secret']}"

    result = await api.gql(REVOKE_ALL, authorization=secret)

    assert result.error_codes == ["FORBIDDEN"]
    assert await works(api, owner.token)


# --- passwordChange ------------------------------------------------------------------------------


async def test_password_change_rehashes_and_ends_every_other_session(
    api: Api, database_url: str
) -> None:
    # given an owner with two more sessions
    owner = await api.sign_up()
    others = [await log_in(api, owner.email), await log_in(api, owner.email)]

    # when the owner changes their password
    change = {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}
    result = await api.gql(PASSWORD_CHANGE, {"i": change}, token=owner.token)

    # then
    assert result.data["passwordChange"] == {"revokedSessionCount": 2, "userErrors": []}
    assert [await works(api, token) for token in others] == [False, False]
    assert await works(api, owner.token)
    refused = await api.gql(SESSION_CREATE, {"i": {"email": owner.email, "password": PASSWORD}})
    assert codes(refused.data["sessionCreate"]) == [(["input"], "INVALID_CREDENTIALS")]
    assert await works(api, await log_in(api, owner.email, NEW_PASSWORD))
    async with connect(database_url) as conn:
        stored = await conn.execute(select(User.password_hash).where(User.email == owner.email))
        assert stored.scalar_one().startswith("$argon2id$")
    events = await audit(api, owner.token, "user.password_change")
    assert len(events) == 1
    assert PASSWORD not in str(events) and NEW_PASSWORD not in str(events)


async def test_password_change_with_a_wrong_current_password_changes_nothing(api: Api) -> None:
    owner = await api.sign_up()
    other = await log_in(api, owner.email)

    change = {"currentPassword": WRONG_PASSWORD, "newPassword": NEW_PASSWORD}
    result = await api.gql(PASSWORD_CHANGE, {"i": change}, token=owner.token)

    payload = result.data["passwordChange"]
    assert payload["revokedSessionCount"] is None
    assert codes(payload) == [(["input", "currentPassword"], "INVALID_CREDENTIALS")]
    assert await works(api, other)
    assert await works(api, await log_in(api, owner.email, PASSWORD))


@pytest.mark.parametrize(
    ("new_password", "code"),
    [("short", "WEAK_PASSWORD"), ("aaaaaaaaaaaa", "WEAK_PASSWORD"), ("x" * 2000, "INVALID_INPUT")],
)
async def test_password_change_follows_the_sign_up_rule(
    api: Api, new_password: str, code: str
) -> None:
    owner = await api.sign_up()
    other = await log_in(api, owner.email)

    change = {"currentPassword": PASSWORD, "newPassword": new_password}
    result = await api.gql(PASSWORD_CHANGE, {"i": change}, token=owner.token)

    assert codes(result.data["passwordChange"]) == [(["input", "newPassword"], code)]
    assert await works(api, other)
    assert await works(api, await log_in(api, owner.email, PASSWORD))


async def test_wrong_current_passwords_count_as_failed_log_ins(database_url: str) -> None:
    # given log-ins refused after 3 failures of one email from one address
    async with service(database_url, login_max_failures=3) as app, client_at(app) as api:
        owner = await api.sign_up()

        # when a session guesses the current password three times
        for _ in range(3):
            change = {"currentPassword": WRONG_PASSWORD, "newPassword": NEW_PASSWORD}
            result = await api.gql(PASSWORD_CHANGE, {"i": change}, token=owner.token)
            assert codes(result.data["passwordChange"]) == [
                (["input", "currentPassword"], "INVALID_CREDENTIALS")
            ]

        # then a fourth guess, even the right password, is refused, as is a log-in from there
        right = {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}
        refused = await api.gql(PASSWORD_CHANGE, {"i": right}, token=owner.token)
        assert refused.error_codes == ["RATE_LIMITED"]
        log_in_refused = await api.gql(
            SESSION_CREATE, {"i": {"email": owner.email, "password": PASSWORD}}
        )
        assert log_in_refused.error_codes == ["RATE_LIMITED"]
        # and from another address the owner still logs in with the unchanged password
        async with client_at(app, "127.0.0.5") as elsewhere:
            assert await works(elsewhere, await log_in(elsewhere, owner.email))


async def test_password_change_is_for_people_not_api_secrets(api: Api) -> None:
    owner = await api.sign_up()
    issued = await api.gql(SECRET_ISSUE, {"s": owner.representative_store_id}, token=owner.token)
    secret = f"PortOne {issued.data['apiSecretIssue']['secret']}"

    change = {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}
    result = await api.gql(PASSWORD_CHANGE, {"i": change}, authorization=secret)

    assert result.error_codes == ["FORBIDDEN"]


# --- memberSessionsRevoke ------------------------------------------------------------------------


async def test_member_sessions_revoke_logs_the_member_out_everywhere(
    api: Api, db_engine: AsyncEngine
) -> None:
    # given an admin and a read-only member logged in twice
    seeded = await seed_merchant(db_engine, roles=("ADMIN", "READ_ONLY"))
    member = seeded.members["READ_ONLY"]
    second = await log_in(api, member.email)

    # when the admin ends the member's sessions
    result = await api.gql(
        MEMBER_SESSIONS_REVOKE, {"m": member.member_id}, token=seeded.members["ADMIN"].token
    )

    # then both are ended, the member stays and can log in again
    assert result.data["memberSessionsRevoke"] == {"revokedCount": 2, "userErrors": []}
    assert [await works(api, t) for t in (member.token, second)] == [False, False]
    assert await works(api, seeded.members["ADMIN"].token)
    assert await works(api, await log_in(api, member.email))
    events = await audit(api, seeded.owner.token, "member.sessions_revoke")
    assert len(events) == 1
    assert events[0]["targetId"] == member.member_id
    assert events[0]["actor"] == seeded.members["ADMIN"].email


@pytest.mark.parametrize(
    ("caller", "target"),
    [("MANAGER", "ADMIN"), ("ADMIN", "OWNER"), ("STORE_MANAGER", "MANAGER")],
)
async def test_member_sessions_revoke_only_for_members_one_may_manage(
    api: Api, db_engine: AsyncEngine, caller: str, target: str
) -> None:
    seeded = await seed_merchant(db_engine, roles=("ADMIN", "MANAGER", "STORE_MANAGER"))
    members = {**seeded.members, "OWNER": seeded.owner}
    target_token = members[target].token
    target_id = (
        seeded.members[target].member_id
        if target != "OWNER"
        else await _owner_member_id(api, seeded.owner.token)
    )

    result = await api.gql(
        MEMBER_SESSIONS_REVOKE, {"m": target_id}, token=seeded.members[caller].token
    )

    payload = result.data["memberSessionsRevoke"]
    expected = "NOT_FOUND" if caller == "STORE_MANAGER" else "ROLE_NOT_ALLOWED"
    assert codes(payload) == [(["input", "memberId"], expected)]
    assert payload["revokedCount"] is None
    assert await works(api, target_token)


async def test_member_sessions_revoke_across_sub_stores_and_merchants_is_not_found(
    api: Api, db_engine: AsyncEngine
) -> None:
    # given a sub-store manager, a member of another sub-store and another merchant's member
    seeded = await seed_merchant(
        db_engine, roles=("STORE_MANAGER",), stores=("Sub store", "Other sub store")
    )
    elsewhere = await add_member(
        db_engine, seeded, "STORE_READ_ONLY", seeded.stores["Other sub store"]
    )
    other_merchant = await seed_merchant(db_engine, roles=("READ_ONLY",))
    stranger = other_merchant.members["READ_ONLY"]

    for caller, target in [
        (seeded.members["STORE_MANAGER"].token, elsewhere),
        (seeded.owner.token, stranger),
    ]:
        result = await api.gql(MEMBER_SESSIONS_REVOKE, {"m": target.member_id}, token=caller)
        assert codes(result.data["memberSessionsRevoke"]) == [(["input", "memberId"], "NOT_FOUND")]
        assert await works(api, target.token)


async def test_a_sub_store_manager_ends_its_own_sub_stores_members_sessions(
    api: Api, db_engine: AsyncEngine
) -> None:
    seeded = await seed_merchant(db_engine, roles=("STORE_MANAGER", "STORE_READ_ONLY"))
    member = seeded.members["STORE_READ_ONLY"]

    result = await api.gql(
        MEMBER_SESSIONS_REVOKE, {"m": member.member_id}, token=seeded.members["STORE_MANAGER"].token
    )

    assert result.data["memberSessionsRevoke"] == {"revokedCount": 1, "userErrors": []}
    assert not await works(api, member.token)
    events = await audit(api, seeded.owner.token, "member.sessions_revoke")
    assert events[0]["storeId"] == seeded.stores["Sub store"]


async def _owner_member_id(api: Api, owner_token: str) -> str:
    result = await api.gql(
        "{ merchant { members(first: 50) { nodes { id role } } } }", token=owner_token
    )
    nodes = result.data["merchant"]["members"]["nodes"]
    return str(next(n["id"] for n in nodes if n["role"] == "OWNER"))


async def test_a_session_opened_by_accepting_an_invitation_shows_where_it_came_from(
    database_url: str,
) -> None:
    async with service(database_url) as app:
        async with client_at(app) as owner_api:
            owner = await owner_api.sign_up()
        async with client_at(app, "127.0.0.7", FIREFOX) as newcomer_api:
            joined = await invite_and_join(newcomer_api, owner.token, "DEVELOPER")
            result = await newcomer_api.gql(SESSIONS, {"first": 5}, token=joined.token)

    (edge,) = result.data["viewer"]["sessions"]["edges"]
    assert edge["node"]["current"] is True
    assert edge["node"]["clientAddress"] == "127.0.0.7"
    assert edge["node"]["userAgent"] == FIREFOX
