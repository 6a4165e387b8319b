"""Faults a running service must survive: PostgreSQL stopped for a while under a real
`integration-api serve` process, and a mutation whose second write the database refuses.

PostgreSQL away: every request fails masked and retryable (nothing of it committed), `/readyz`
says 503, the process stays up, and once PostgreSQL is back the service answers again by
itself with every acknowledged write still there. tests/test_database_recovery.py covers an
instant restart in-process; here the database is gone while requests arrive.

A mutation interrupted after its first write: one transaction per mutation, so the row
written first is rolled back with it; nothing partial is left for a retry to trip on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from db.migrate import upgrade
from tests.conftest import IN_CI, make_settings
from tests.pg_server import PostgresServer
from tests.support import PASSWORD, STORE_CREATE, connect
from tests.support_servers import Server, serve
from tests.test_database_recovery import serving

STRICT = {"accept": "application/graphql-response+json"}
# Generous: a request must fail, not hang, while the database is away.
CLIENT_TIMEOUT_SECONDS = 30.0
RECOVERY_DEADLINE_SECONDS = 30.0

SIGN_UP = """
mutation SignUp($input: MerchantSignUpInput!) {
  merchantSignUp(input: $input) { session { token } userErrors { code } }
}
"""

STORE_NAMES = "{ merchant { stores(first: 50) { edges { node { name } } } } }"


@pytest.fixture
def own_postgresql() -> Iterator[PostgresServer]:
    """A migrated PostgreSQL server of the test's own, to stop: stopping the session's server
    would break the other tests."""
    try:
        server = PostgresServer.start()
    except FileNotFoundError as error:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI: {error}")
        pytest.skip(f"PostgreSQL not available: {error}")
    try:
        upgrade(server.url)
        yield server
    finally:
        server.stop()


def gql(server: Server, query: str, variables: dict[str, Any], token: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/graphql",
        json={"query": query, "variables": variables},
        headers={**STRICT, "authorization": f"Bearer {token}"},
        timeout=CLIENT_TIMEOUT_SECONDS,
    )


def create_store(server: Server, token: str, name: str) -> httpx.Response:
    return gql(server, STORE_CREATE, {"name": name}, token)


def store_names(server: Server, token: str) -> set[str]:
    answer = gql(server, STORE_NAMES, {}, token)
    assert answer.status_code == 200, answer.text
    edges = answer.json()["data"]["merchant"]["stores"]["edges"]
    return {edge["node"]["name"] for edge in edges}


def ready(server: Server) -> int:
    return httpx.get(f"{server.base_url}/readyz", timeout=CLIENT_TIMEOUT_SECONDS).status_code


def assert_masked_retryable(answer: httpx.Response, port: int) -> None:
    """A 503 with Retry-After, every error INTERNAL and retryable, nothing of the failure shown."""
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"], answer.headers
    errors = answer.json()["errors"]
    assert errors, answer.text
    for error in errors:
        assert error["message"] == "Internal server error."
        assert error["extensions"]["code"] == "INTERNAL"
        assert error["extensions"]["retryable"] is True
    assert str(port) not in answer.text.replace(answer.headers["x-request-id"], "")


def test_postgresql_stopped_and_started_again(own_postgresql: PostgresServer) -> None:
    with serve(own_postgresql.url, {"WEBHOOK_WORKER": "off", "DEFAULT_LOCALE": "en"}) as server:
        # given: an owner and stores the service acknowledged
        signed_up = httpx.post(
            f"{server.base_url}/graphql",
            json={
                "query": SIGN_UP,
                "variables": {
                    "input": {
                        "merchantName": "Faults",
                        "email": "faults@example.com",
                        "password": PASSWORD,
                        "name": "Owner",
                    }
                },
            },
            timeout=CLIENT_TIMEOUT_SECONDS,
        )
        token = signed_up.json()["data"]["merchantSignUp"]["session"]["token"]
        before = {f"Before {n}" for n in range(3)}
        for name in sorted(before):
            answer = create_store(server, token, name)
            assert answer.json()["data"]["storeCreate"]["userErrors"] == [], answer.text

        # when: PostgreSQL stops, and requests arrive meanwhile
        own_postgresql.halt()
        try:
            refused_write = create_store(server, token, "While away")
            refused_read = gql(server, STORE_NAMES, {}, token)
            readiness = ready(server)
            alive = server.process.poll() is None
        finally:
            own_postgresql.resume()

        # then: each failed masked and retryable, not ready, the process still up
        assert_masked_retryable(refused_write, own_postgresql.port)
        assert_masked_retryable(refused_read, own_postgresql.port)
        assert readiness == 503
        assert alive, server.output()

        # and: with PostgreSQL back, the service answers again by itself
        deadline = time.monotonic() + RECOVERY_DEADLINE_SECONDS
        while gql(server, STORE_NAMES, {}, token).status_code != 200:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)
        assert ready(server) == 200
        after = create_store(server, token, "After")
        assert after.json()["data"]["storeCreate"]["userErrors"] == [], after.text

        # and: every acknowledged write is there; the retryable one committed nothing
        names = store_names(server, token)
        assert before | {"After"} <= names
        assert "While away" not in names
        assert server.process.poll() is None


# --- a mutation interrupted after its first write -------------------------------------------

# The database refuses storeCreate's second write (its audit event), after the store row.
FAIL_AUDIT = {
    "sqlite": [
        "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_events "
        "WHEN NEW.action = 'store.create' BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'injected fault'; END $$",
        "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_events FOR EACH ROW "
        "WHEN (NEW.action = 'store.create') EXECUTE FUNCTION fail_audit()",
    ],
}
HEAL_AUDIT = {
    "sqlite": ["DROP TRIGGER IF EXISTS fail_audit"],
    "postgresql": [
        "DROP TRIGGER IF EXISTS fail_audit ON audit_events",
        "DROP FUNCTION IF EXISTS fail_audit()",
    ],
}


async def run_sql(database_url: str, statements: list[str]) -> None:
    async with connect(database_url) as conn:
        for statement in statements:
            await conn.execute(text(statement))


async def stores_named(database_url: str, name: str) -> int:
    async with connect(database_url) as conn:
        found = await conn.execute(text("SELECT count(*) FROM stores WHERE name = :n"), {"n": name})
        count = found.scalar_one()
    assert isinstance(count, int)
    return count


async def test_a_mutation_failing_after_its_first_write_leaves_nothing(
    database_url: str, backend: str
) -> None:
    async with serving(make_settings(database_url, webhook_worker="off")) as (api, _):
        owner = await api.sign_up()
        await run_sql(database_url, FAIL_AUDIT[backend])
        try:
            # when: the store row is written, then its audit event is refused
            failed = await api.gql(STORE_CREATE, {"name": "Half"}, token=owner.token)
        finally:
            await run_sql(database_url, HEAL_AUDIT[backend])

        # then: a masked error with a code, and no store row left behind
        assert failed.error_codes == ["INTERNAL"], failed.body
        assert "injected" not in str(failed.body)
        assert await stores_named(database_url, "Half") == 0

        # and: sent again once the database accepts it, it succeeds, once
        again = await api.gql(STORE_CREATE, {"name": "Half"}, token=owner.token)
        assert again.data["storeCreate"]["userErrors"] == [], again.body
        assert await stores_named(database_url, "Half") == 1
