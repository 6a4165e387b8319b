"""sessionCreate throttling: guessing never locks the owner out; past the per-email ceiling
password checks take turns (refused when the queue is full) except from an address known to the
email; IPv6 addresses count per /64; failures are logged, audited and pruned."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select
from sqlmodel import col
from starlette.applications import Starlette

from db import sqlite_reads
from db.models import AuditEvent, LoginFailure, LoginKnownAddress
from gql_api.app import create_app
from gql_api.client_address import throttling_key
from gql_api.logs import JsonFormatter
from tests.conftest import make_settings
from tests.support import PASSWORD, Api, GraphQLResponse, connect

SESSION_CREATE = """
mutation LogIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) {
    session { token user { email } }
    userErrors { field code message }
  }
}
"""

AUDIT_EVENTS = """
query Audit($action: String) {
  merchant {
    auditEvents(first: 50, action: $action) {
      edges { node { action actor targetId summary } }
    }
  }
}
"""

VIEWER = "{ viewer { role } }"

OWNER_ADDRESS = "127.0.0.1"  # httpx.ASGITransport's default client
ATTACKER_ADDRESS = "127.0.0.2"
OTHER_ADDRESS = "127.0.0.3"
WRONG_PASSWORD = "wrong password 123"
DELAYED = "login_attempts_delayed_total"
# Turns come 0.25 s, then 0.5 s, then 1 s apart; with a queue of 0.9 s the first two are
# given and every later one is refused, however fast or slow the claims run.
TAKING_TURNS = {
    "login_email_slowdown_after": 3,
    "login_email_max_delay_seconds": 1.0,
    "login_email_max_queue_seconds": 0.9,
}


# --- helpers --------------------------------------------------------------------------------


def credentials(email: str, password: str) -> dict[str, Any]:
    return {"input": {"email": email, "password": password}}


@asynccontextmanager
async def service(database_url: str, **overrides: object) -> AsyncIterator[Starlette]:
    """The service with some settings changed (small limits keep the tests fast)."""
    application = create_app(make_settings(database_url, **overrides))
    try:
        yield application
    finally:
        application.state.app_state.hashing.close()
        sqlite_reads.close(application.state.app_state.engine)
        await application.state.app_state.engine.dispose()


@asynccontextmanager
async def client_at(app: Starlette, address: str) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=app, client=(address, 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield Api(http)


async def log_in(api: Api, email: str, password: str) -> GraphQLResponse:
    return await api.gql(SESSION_CREATE, credentials(email, password))


async def fail_log_in(api: Api, email: str, times: int) -> None:
    for _ in range(times):
        result = await log_in(api, email, WRONG_PASSWORD)
        codes = [e["code"] for e in result.data["sessionCreate"]["userErrors"]]
        assert codes == ["INVALID_CREDENTIALS"]


def assert_logged_in(result: GraphQLResponse, email: str) -> None:
    payload = result.data["sessionCreate"]
    assert payload["userErrors"] == []
    assert payload["session"]["user"]["email"] == email
    assert payload["session"]["token"]


def assert_rate_limited(result: GraphQLResponse) -> None:
    assert result.error_codes == ["RATE_LIMITED"]
    assert result.body.get("data") is None
    assert result.body["errors"][0]["extensions"]["retryAfterSeconds"] >= 1


def delayed_attempts(app: Starlette) -> float:
    value = app.state.app_state.metrics.registry.get_sample_value(DELAYED)
    assert value is not None, f"{DELAYED} is not exported"
    return float(value)


async def failed_login_events(api: Api, token: str) -> list[dict[str, Any]]:
    result = await api.gql(AUDIT_EVENTS, {"action": "session.failed_login"}, token=token)
    return [edge["node"] for edge in result.data["merchant"]["auditEvents"]["edges"]]


def as_json(record: logging.LogRecord) -> str:
    return JsonFormatter().format(record)


def guessers(count: int) -> list[str]:
    """Addresses in distinct IPv6 /64 networks: no per-address limit holds them back."""
    return [f"2001:db8:{n:x}::1" for n in range(1, count + 1)]


async def guess_from(app: Starlette, address: str, email: str) -> GraphQLResponse:
    async with client_at(app, address) as guesser:
        return await log_in(guesser, email, WRONG_PASSWORD)


def checked(results: list[GraphQLResponse]) -> list[GraphQLResponse]:
    """The answers of attempts whose password was checked (and was wrong)."""
    return [
        r
        for r in results
        if not r.error_codes
        and [e["code"] for e in r.data["sessionCreate"]["userErrors"]] == ["INVALID_CREDENTIALS"]
    ]


async def turns_of(database_url: str, email: str) -> list[datetime]:
    async with connect(database_url) as conn:
        rows = await conn.execute(
            select(col(LoginFailure.not_before))
            .where(col(LoginFailure.email) == email, col(LoginFailure.not_before).is_not(None))
            .order_by(col(LoginFailure.not_before))
        )
        return list(rows.scalars())


# --- refusals are per address ---------------------------------------------------------------


async def test_guesses_from_another_address_do_not_lock_the_owner_out(
    app: Starlette, api: Api
) -> None:
    # given
    owner = await api.sign_up()
    async with client_at(app, ATTACKER_ADDRESS) as attacker:
        await fail_log_in(attacker, owner.email, 5)
        refused = await log_in(attacker, owner.email, PASSWORD)

    # when
    result = await log_in(api, owner.email, PASSWORD)

    # then
    assert_rate_limited(refused)
    assert owner.token not in str(refused.body)
    assert_logged_in(result, owner.email)


async def test_one_address_guessing_many_emails_is_refused_and_other_addresses_are_not(
    database_url: str,
) -> None:
    async with (
        service(database_url, login_max_failures_per_address=4) as app,
        client_at(app, OWNER_ADDRESS) as api,
        client_at(app, ATTACKER_ADDRESS) as attacker,
        client_at(app, OTHER_ADDRESS) as bystander,
    ):
        # given
        owner = await api.sign_up()
        for n in range(4):
            await fail_log_in(attacker, f"victim{n}@example.com", 1)

        # when
        next_email = await log_in(attacker, "victim9@example.com", WRONG_PASSWORD)
        right_password = await log_in(attacker, owner.email, PASSWORD)
        elsewhere = await log_in(bystander, "victim9@example.com", WRONG_PASSWORD)
        from_home = await log_in(api, owner.email, PASSWORD)

    # then
    assert_rate_limited(next_email)
    assert_rate_limited(right_password)
    assert [e["code"] for e in elsewhere.data["sessionCreate"]["userErrors"]] == [
        "INVALID_CREDENTIALS"
    ]
    assert_logged_in(from_home, owner.email)


async def test_concurrent_guesses_are_counted_before_the_password_is_checked(
    app: Starlette, api: Api
) -> None:
    # given
    owner = await api.sign_up()

    # when
    async with client_at(app, ATTACKER_ADDRESS) as attacker:
        results = await asyncio.gather(
            *(log_in(attacker, owner.email, WRONG_PASSWORD) for _ in range(8))
        )

    # then: exactly the limit of guesses reached a password check
    refused = [r for r in results if r.error_codes == ["RATE_LIMITED"]]
    checked = [r for r in results if not r.error_codes]
    assert len(refused) == 3
    assert len(checked) == 5
    for result in checked:
        codes = [e["code"] for e in result.data["sessionCreate"]["userErrors"]]
        assert codes == ["INVALID_CREDENTIALS"]


async def test_a_success_forgets_only_the_failures_of_its_own_address(
    app: Starlette, api: Api
) -> None:
    # given
    owner = await api.sign_up()
    async with client_at(app, ATTACKER_ADDRESS) as attacker:
        await fail_log_in(attacker, owner.email, 5)
        await fail_log_in(api, owner.email, 4)
        assert_logged_in(await log_in(api, owner.email, PASSWORD), owner.email)

        # when
        await fail_log_in(api, owner.email, 4)
        from_home = await log_in(api, owner.email, PASSWORD)
        from_attacker = await log_in(attacker, owner.email, PASSWORD)

    # then
    assert_logged_in(from_home, owner.email)
    assert_rate_limited(from_attacker)


# --- past the per-email ceiling, password checks take turns ---------------------------------


async def test_past_the_per_email_ceiling_an_attempt_waits_for_its_turn(
    database_url: str,
) -> None:
    overrides = {
        "login_max_failures": 2,
        "login_email_slowdown_after": 3,
        "login_email_max_delay_seconds": 0.01,
    }
    async with (
        service(database_url, **overrides) as app,
        client_at(app, OWNER_ADDRESS) as api,
        client_at(app, ATTACKER_ADDRESS) as attacker,
        client_at(app, OTHER_ADDRESS) as accomplice,
    ):
        # given: four failures for the email, two from each of two addresses
        owner = await api.sign_up()
        await fail_log_in(attacker, owner.email, 2)
        await fail_log_in(accomplice, owner.email, 1)
        assert delayed_attempts(app) == 0
        await fail_log_in(accomplice, owner.email, 1)
        assert delayed_attempts(app) == 1

        # when: the owner, from an address with no failures
        result = await log_in(api, owner.email, PASSWORD)

        # then: delayed, and let in
        assert_logged_in(result, owner.email)
        assert delayed_attempts(app) == 2


async def test_concurrent_guesses_from_many_addresses_get_a_bounded_number_of_checks(
    database_url: str,
) -> None:
    async with (
        service(database_url, **TAKING_TURNS) as app,
        client_at(app, OWNER_ADDRESS) as api,
    ):
        # given: the email at its ceiling, from three addresses
        owner = await api.sign_up()
        for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
            assert checked([await guess_from(app, address, owner.email)])

        # when: twenty guesses arrive at once, each from its own /64
        results = await asyncio.gather(
            *(guess_from(app, address, owner.email) for address in guessers(20))
        )

    # then: two were given turns and checked; the queue was full for the other eighteen
    assert len(checked(results)) == 2
    refused = [r for r in results if r.error_codes == ["RATE_LIMITED"]]
    assert len(refused) == 18
    for result in refused:
        assert_rate_limited(result)
    assert delayed_attempts(app) == 2
    # and: the turns were spaced by the interval, whatever the clock did
    first, second = await turns_of(database_url, owner.email)
    assert second - first >= timedelta(seconds=0.5)


async def test_the_owner_from_a_known_address_takes_no_turn_during_an_attack(
    database_url: str,
) -> None:
    async with (
        service(database_url, **TAKING_TURNS) as app,
        client_at(app, OWNER_ADDRESS) as api,
        client_at(app, OTHER_ADDRESS) as new_device,
    ):
        # given: the owner has logged in from their address once
        owner = await api.sign_up()
        assert_logged_in(await log_in(api, owner.email, PASSWORD), owner.email)
        for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
            assert checked([await guess_from(app, address, owner.email)])
        # and: an attack fills the email's queue
        attack = asyncio.gather(
            *(guess_from(app, address, owner.email) for address in guessers(10))
        )
        for _ in range(1000):
            if delayed_attempts(app) == 2:
                break
            await asyncio.sleep(0.01)
        delayed_before = delayed_attempts(app)

        # when
        from_home = await log_in(api, owner.email, PASSWORD)
        from_new_device = await log_in(new_device, owner.email, PASSWORD)
        results = await attack

    # then: from home, at once; from a new address, queued like any guess (here: refused)
    assert delayed_before == 2
    assert_logged_in(from_home, owner.email)
    assert_rate_limited(from_new_device)
    assert delayed_attempts(app) == 2
    assert len(checked(results)) == 2


async def test_known_addresses_unused_for_30_days_are_pruned(api: Api, database_url: str) -> None:
    # given: two known addresses, one of them last used 31 days ago
    long_ago = datetime.now(UTC) - timedelta(days=31)
    lately = datetime.now(UTC) - timedelta(days=29)
    async with connect(database_url) as conn:
        await conn.execute(
            insert(LoginKnownAddress),
            [
                {
                    "email": "old@example.com",
                    "client_key": OTHER_ADDRESS,
                    "last_success_at": long_ago,
                },
                {
                    "email": "new@example.com",
                    "client_key": OTHER_ADDRESS,
                    "last_success_at": lately,
                },
            ],
        )

    # when: anyone logs in
    owner = await api.sign_up()
    assert_logged_in(await log_in(api, owner.email, PASSWORD), owner.email)

    # then: the stale row is pruned, and the success remembered
    async with connect(database_url) as conn:
        left = (await conn.execute(select(col(LoginKnownAddress.email)))).scalars().all()
    assert sorted(left) == ["new@example.com", owner.email]


# --- IPv6 addresses count per /64 -----------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("192.0.2.7", "192.0.2.7"),
        ("unknown", "unknown"),
    ],
)
def test_the_throttling_key_of_an_address(address: str, key: str) -> None:
    assert throttling_key(address) == key


async def test_addresses_in_one_ipv6_network_share_one_per_address_limit(
    database_url: str,
) -> None:
    async with service(database_url, login_max_failures_per_address=4) as app:
        # given: four guesses from four addresses of one /64
        for n in range(1, 5):
            assert checked([await guess_from(app, f"2001:db8:1:2::{n}", f"victim{n}@example.com")])

        # when
        same_network = await guess_from(app, "2001:db8:1:2:abcd::9", "victim9@example.com")
        next_network = await guess_from(app, "2001:db8:1:3::1", "victim9@example.com")

    # then
    assert_rate_limited(same_network)
    assert checked([next_network])


# --- logs and audit -------------------------------------------------------------------------


async def test_a_failed_log_in_is_logged_with_the_client_address_and_never_the_password(
    app: Starlette, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    owner = await api.sign_up()
    caplog.clear()

    # when
    with caplog.at_level(logging.DEBUG):
        async with client_at(app, ATTACKER_ADDRESS) as attacker:
            await fail_log_in(attacker, owner.email, 1)

    # then
    (line,) = [r for r in caplog.records if r.name == "gql_api.accounts"]
    entry = json.loads(as_json(line))
    assert entry["client"] == ATTACKER_ADDRESS
    assert entry["email_domain"] == "example.com"
    assert entry["email_ref"]
    for record in caplog.records:
        assert WRONG_PASSWORD not in as_json(record)
    for record in [r for r in caplog.records if r.name.startswith("gql_api")]:
        assert owner.email not in as_json(record)


async def test_every_fifth_failure_for_an_account_is_audited_for_its_merchant(
    app: Starlette, api: Api, database_url: str
) -> None:
    # given
    owner = await api.sign_up()
    bystander = await api.sign_up()
    async with client_at(app, ATTACKER_ADDRESS) as attacker:
        await fail_log_in(attacker, owner.email, 4)
        before = await failed_login_events(api, owner.token)

        # when
        await fail_log_in(attacker, owner.email, 1)
        await fail_log_in(attacker, "nobody@example.com", 5)

    # then
    assert before == []
    (event,) = await failed_login_events(api, owner.token)
    assert ATTACKER_ADDRESS in event["summary"]
    assert ATTACKER_ADDRESS in event["actor"]
    assert "5 failed log-in attempts" in event["summary"]
    assert WRONG_PASSWORD not in json.dumps(event)
    assert await failed_login_events(api, bystander.token) == []
    async with connect(database_url) as conn:
        events = (
            await conn.execute(
                select(col(AuditEvent.summary)).where(
                    col(AuditEvent.action) == "session.failed_login"
                )
            )
        ).all()
    assert len(events) == 1  # none for the unknown email


async def test_the_access_log_line_carries_the_client_address(
    app: Starlette, caplog: pytest.LogCaptureFixture
) -> None:
    # when
    with caplog.at_level(logging.INFO, logger="gql_api.access"):
        async with client_at(app, ATTACKER_ADDRESS) as caller:
            await caller.gql(VIEWER)

    # then
    (line,) = [r for r in caplog.records if r.name == "gql_api.access"]
    assert json.loads(as_json(line))["client"] == ATTACKER_ADDRESS


# --- pruning --------------------------------------------------------------------------------


async def test_old_failures_of_unknown_emails_are_pruned(api: Api, database_url: str) -> None:
    # given
    old = datetime.now(UTC) - timedelta(minutes=16)
    recent = datetime.now(UTC) - timedelta(minutes=1)
    async with connect(database_url) as conn:
        await conn.execute(
            insert(LoginFailure),
            [
                {
                    "email": "ghost1@example.com",
                    "client_address": OTHER_ADDRESS,
                    "attempted_at": old,
                },
                {
                    "email": "ghost2@example.com",
                    "client_address": OTHER_ADDRESS,
                    "attempted_at": old,
                },
                {
                    "email": "ghost3@example.com",
                    "client_address": ATTACKER_ADDRESS,
                    "attempted_at": old,
                },
                {
                    "email": "recent@example.com",
                    "client_address": OTHER_ADDRESS,
                    "attempted_at": recent,
                },
            ],
        )

    # when: anyone tries any other email
    await fail_log_in(api, "someone@example.com", 1)

    # then
    async with connect(database_url) as conn:
        left = (await conn.execute(select(col(LoginFailure.email)))).scalars().all()
    assert sorted(left) == ["recent@example.com", "someone@example.com"]
