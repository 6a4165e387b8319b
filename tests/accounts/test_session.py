"""sessionCreate (log in), sessionRevoke (log out) and how a session token is checked."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlmodel import col

from db.models import AuthSession, LoginFailure
from gql_api.app import create_app
from tests.conftest import make_settings
from tests.support import PASSWORD, Api, GraphQLResponse, connect

SESSION_CREATE = """
mutation LogIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) {
    session { token expiresAt user { id email } }
    userErrors { field code message }
  }
}
"""

SESSION_REVOKE = """
mutation LogOut {
  sessionRevoke { revoked userErrors { field code } }
}
"""

VIEWER = "{ viewer { role user { email } } }"

WRONG_PASSWORD = "wrong password 123"


def credentials(email: str, password: str) -> dict[str, Any]:
    return {"input": {"email": email, "password": password}}


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@asynccontextmanager
async def second_instance(database_url: str) -> AsyncIterator[Api]:
    """Another process of the service on the same database."""
    application = create_app(make_settings(database_url))
    transport = httpx.ASGITransport(app=application)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Api(http)
    finally:
        await application.state.app_state.engine.dispose()


def assert_refused(result: GraphQLResponse, reason: str) -> None:
    assert result.status == 401
    assert result.body.get("data") is None
    assert len(result.body["errors"]) == 1
    extensions = result.body["errors"][0]["extensions"]
    assert extensions["code"] == "UNAUTHENTICATED"
    assert extensions["reason"] == reason
    assert result.body["errors"][0]["message"]


async def fail_log_in(api: Api, email: str, times: int) -> None:
    for _ in range(times):
        result = await api.gql(SESSION_CREATE, credentials(email, WRONG_PASSWORD))
        codes = [e["code"] for e in result.data["sessionCreate"]["userErrors"]]
        assert codes == ["INVALID_CREDENTIALS"]


# --- log in ---------------------------------------------------------------------------------


async def test_the_right_password_opens_a_new_working_session(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(SESSION_CREATE, credentials(owner.email, PASSWORD))

    # then
    payload = result.data["sessionCreate"]
    assert payload["userErrors"] == []
    session = payload["session"]
    assert session["user"]["email"] == owner.email
    assert datetime.fromisoformat(session["expiresAt"]) > datetime.now(UTC)
    assert session["token"] != owner.token
    viewer = (await api.gql(VIEWER, token=session["token"])).data["viewer"]
    assert viewer == {"role": "OWNER", "user": {"email": owner.email}}
    assert (await api.gql(VIEWER, token=owner.token)).data["viewer"] is not None


async def test_the_email_is_matched_whatever_its_case(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(SESSION_CREATE, credentials(owner.email.upper(), PASSWORD))

    # then
    payload = result.data["sessionCreate"]
    assert payload["userErrors"] == []
    assert payload["session"]["user"]["email"] == owner.email


async def test_a_wrong_password_gives_invalid_credentials(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(SESSION_CREATE, credentials(owner.email, WRONG_PASSWORD))

    # then
    payload = result.data["sessionCreate"]
    assert payload["session"] is None
    assert len(payload["userErrors"]) == 1
    assert payload["userErrors"][0]["code"] == "INVALID_CREDENTIALS"


async def test_an_unknown_email_looks_exactly_like_a_wrong_password(api: Api) -> None:
    # given
    owner = await api.sign_up()
    wrong_password = await api.gql(SESSION_CREATE, credentials(owner.email, WRONG_PASSWORD))

    # when
    result = await api.gql(SESSION_CREATE, credentials("nobody@example.com", PASSWORD))

    # then
    payload = result.data["sessionCreate"]
    assert payload["session"] is None
    assert len(payload["userErrors"]) == 1
    assert payload["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    assert payload == wrong_password.data["sessionCreate"]


@pytest.mark.parametrize(
    "email",
    ["a" * 5000 + "@example.com", "", "not an email", "bell\x07@example.com"],
    ids=["very-long", "empty", "not-an-email", "control-character"],
)
async def test_odd_emails_are_just_invalid_credentials(api: Api, email: str) -> None:
    # when
    result = await api.gql(SESSION_CREATE, credentials(email, PASSWORD))

    # then
    assert result.error_codes == []
    payload = result.data["sessionCreate"]
    assert payload["session"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["INVALID_CREDENTIALS"]


@pytest.mark.parametrize("email", ["nul\x00byte@example.com", "\x00"], ids=["inside", "alone"])
async def test_a_nul_byte_in_the_email_is_refused_cleanly(api: Api, email: str) -> None:
    # when
    result = await api.gql(SESSION_CREATE, credentials(email, PASSWORD))

    # then: a bad request or bad credentials, never a server error
    assert result.status < 500
    if result.error_codes:
        assert result.error_codes == ["BAD_REQUEST"]
    else:
        codes = [e["code"] for e in result.data["sessionCreate"]["userErrors"]]
        assert codes == ["INVALID_CREDENTIALS"]


# --- throttling -----------------------------------------------------------------------------


async def test_after_five_failures_from_one_address_even_the_right_password_from_it_is_refused(
    api: Api,
) -> None:
    # given
    owner = await api.sign_up()
    await fail_log_in(api, owner.email, 5)

    # when
    result = await api.gql(SESSION_CREATE, credentials(owner.email, PASSWORD))

    # then
    assert result.error_codes == ["RATE_LIMITED"]
    assert result.body.get("data") is None
    assert owner.token not in str(result.body)


async def test_four_failures_do_not_lock_the_owner_out(api: Api) -> None:
    # given
    owner = await api.sign_up()
    await fail_log_in(api, owner.email, 4)

    # when
    result = await api.gql(SESSION_CREATE, credentials(owner.email, PASSWORD))

    # then
    payload = result.data["sessionCreate"]
    assert payload["userErrors"] == []
    assert payload["session"]["token"]


async def test_failures_for_one_email_do_not_limit_another_from_the_same_address(
    api: Api,
) -> None:
    # given
    victim = await api.sign_up()
    other = await api.sign_up()
    await fail_log_in(api, victim.email, 5)

    # when
    result = await api.gql(SESSION_CREATE, credentials(other.email, PASSWORD))

    # then
    assert result.data["sessionCreate"]["userErrors"] == []


async def test_failures_for_an_unknown_email_are_throttled_too(api: Api) -> None:
    # given
    await fail_log_in(api, "ghost@example.com", 5)

    # when
    result = await api.gql(SESSION_CREATE, credentials("ghost@example.com", PASSWORD))

    # then
    assert result.error_codes == ["RATE_LIMITED"]


async def test_the_failure_count_is_shared_by_every_instance_of_the_service(
    api: Api, database_url: str
) -> None:
    # given
    owner = await api.sign_up()
    await fail_log_in(api, owner.email, 3)
    async with second_instance(database_url) as other:
        await fail_log_in(other, owner.email, 2)

        # when
        on_other = await other.gql(SESSION_CREATE, credentials(owner.email, PASSWORD))
        on_first = await api.gql(SESSION_CREATE, credentials(owner.email, PASSWORD))

    # then
    assert on_other.error_codes == ["RATE_LIMITED"]
    assert on_first.error_codes == ["RATE_LIMITED"]


async def test_failures_older_than_the_window_no_longer_count(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    await fail_log_in(api, owner.email, 5)
    async with connect(database_url) as conn:
        await conn.execute(
            update(LoginFailure).values(attempted_at=datetime.now(UTC) - timedelta(minutes=16))
        )

    # when
    result = await api.gql(SESSION_CREATE, credentials(owner.email, PASSWORD))

    # then
    assert result.data["sessionCreate"]["userErrors"] == []


# --- log out --------------------------------------------------------------------------------


async def test_log_out_revokes_the_token(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(SESSION_REVOKE, token=owner.token)

    # then
    assert result.data["sessionRevoke"] == {"revoked": True, "userErrors": []}
    refused = await api.gql(VIEWER, token=owner.token)
    assert_refused(refused, "REVOKED")
    assert owner.token not in str(refused.body)


async def test_log_out_ends_only_the_current_session(api: Api) -> None:
    # given
    owner = await api.sign_up()
    other = (await api.gql(SESSION_CREATE, credentials(owner.email, PASSWORD))).data
    other_token = other["sessionCreate"]["session"]["token"]

    # when
    await api.gql(SESSION_REVOKE, token=owner.token)

    # then
    assert (await api.gql(VIEWER, token=other_token)).data["viewer"]["role"] == "OWNER"


async def test_a_revoked_token_cannot_log_out_again(api: Api) -> None:
    # given
    owner = await api.sign_up()
    await api.gql(SESSION_REVOKE, token=owner.token)

    # when
    result = await api.gql(SESSION_REVOKE, token=owner.token)

    # then
    assert_refused(result, "REVOKED")


async def test_log_out_without_a_session_is_unauthenticated(api: Api) -> None:
    # when
    result = await api.gql(SESSION_REVOKE)

    # then
    assert result.error_codes == ["UNAUTHENTICATED"]
    assert result.body.get("data") is None


# --- token checks ---------------------------------------------------------------------------


async def test_an_expired_token_is_refused(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    async with connect(database_url) as conn:
        await conn.execute(
            update(AuthSession)
            .where(col(AuthSession.token_hash) == sha256_hex(owner.token))
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )

    # when
    result = await api.gql(VIEWER, token=owner.token)

    # then
    assert_refused(result, "EXPIRED")
    assert owner.token not in str(result.body)


async def test_a_forged_token_is_refused(api: Api) -> None:
    # given
    owner = await api.sign_up()
    forged = owner.token[:-1] + ("A" if owner.token[-1] != "A" else "B")

    # when
    result = await api.gql(VIEWER, token=forged)

    # then
    assert_refused(result, "INVALID")
    assert forged not in str(result.body)


async def test_a_refused_token_is_not_treated_as_anonymous(api: Api) -> None:
    # given
    owner = await api.sign_up()
    await api.gql(SESSION_REVOKE, token=owner.token)

    # when: even a public mutation is refused with a bad credential
    result = await api.gql(SESSION_CREATE, credentials(owner.email, PASSWORD), token=owner.token)

    # then
    assert_refused(result, "REVOKED")


async def test_malformed_authorization_headers_are_refused(api: Api) -> None:
    # given
    owner = await api.sign_up()
    headers = [
        "Bearer",
        "Bearer ",
        "Bearer not-a-session-token",
        f"Bearer {'x' * 600}",
        f"Token {owner.token}",
        f"Basic {owner.token}",
        "Basic dXNlcjpwYXNzd29yZA==",
        owner.token,
    ]

    for header in headers:
        # when
        result = await api.gql(VIEWER, authorization=header)

        # then
        assert result.status == 401, header
        assert result.error_codes == ["UNAUTHENTICATED"], header
        assert result.body.get("data") is None
        assert owner.token not in str(result.body)


async def test_no_authorization_header_is_anonymous(api: Api) -> None:
    # when
    result = await api.gql(VIEWER)

    # then
    assert result.status == 200
    assert result.data["viewer"] is None


# --- storage --------------------------------------------------------------------------------


async def test_session_tokens_are_stored_only_as_sha256(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    login = (await api.gql(SESSION_CREATE, credentials(owner.email, PASSWORD))).data
    tokens = [owner.token, login["sessionCreate"]["session"]["token"]]

    # when
    async with connect(database_url) as conn:
        hashes = (await conn.execute(select(col(AuthSession.token_hash)))).scalars().all()
        rows = (await conn.execute(text("SELECT * FROM sessions"))).all()

    # then
    assert sorted(hashes) == sorted(sha256_hex(token) for token in tokens)
    dump = repr(rows)
    for token in tokens:
        assert token not in dump
        assert token.split("_", 1)[-1] not in dump


async def test_tokens_appear_in_no_table_at_all(api: Api, database_url: str) -> None:
    # given
    owner = await api.sign_up()
    await api.gql(SESSION_REVOKE, token=owner.token)

    # when
    async with connect(database_url) as conn:
        dumps = [
            repr((await conn.execute(text(f"SELECT * FROM {table}"))).all())
            for table in ("merchants", "stores", "users", "sessions", "login_failures")
        ]

    # then
    assert all(owner.token not in dump for dump in dumps)


async def test_passwords_are_stored_as_argon2id_hashes(api: Api, database_url: str) -> None:
    # given
    await api.sign_up()

    # when
    async with connect(database_url) as conn:
        stored = (await conn.execute(text("SELECT password_hash FROM users"))).scalar_one()

    # then
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
