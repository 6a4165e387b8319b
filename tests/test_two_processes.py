"""Two real `integration-api serve` processes (A and B) and one `integration-api worker` on one
PostgreSQL database, as deployed behind a load balancer: whatever one process changes, the
other honours on its very next request, because every decision is read from the database and
never from one process's memory.

The servers are started once for the module, on a database of their own (the per-test
truncation of `database_url` would empty it under them): each test seeds its own merchant and
emails, so the tests do not depend on one another. Both servers see the client at 127.0.0.1.
Nothing here asserts how long anything took. Requests racing one another through both servers
(one version of a channel, the signing-secret limit, one owner, deleted API secrets):
tests/test_concurrency.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api_secrets.helpers import DELETE as SECRET_DELETE
from tests.api_secrets.helpers import ISSUE, WHO_AM_I, assert_refused, portone
from tests.concurrency_support import TwoServers, api_of, running_two_servers, verifications
from tests.factories import seed_merchant
from tests.pg_server import PostgresServer
from tests.support import PASSWORD, Api, GraphQLResponse, SignedUp
from tests.webhooks.events_support import PLATFORM_TOKEN, event_body, publish
from tests.webhooks.helpers import issue_secret, save_setting
from tests.webhooks.process_support import WorkerProcess, Workers, eventually
from tests.webhooks.receiver import Receivers, receivers

SESSION_CREATE = """
mutation LogIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) {
    session { token }
    userErrors { field code message }
  }
}
"""

SESSION_REVOKE = "mutation { sessionRevoke { revoked userErrors { field code } } }"

VIEWER = "{ viewer { role } }"

EVENT_STATUS = """
query Events($storeId: String!) {
  store(storeId: $storeId) { webhookEvents(first: 10) { nodes { eventId status } } }
}
"""

LOGIN_MAX_FAILURES = 4
WRONG_PASSWORD = "wrong password 123"

SERVER_ENV = {
    "WEBHOOK_WORKER": "off",  # only the separate worker process delivers
    "PLATFORM_EVENT_TOKENS": PLATFORM_TOKEN,
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "LOGIN_MAX_FAILURES": str(LOGIN_MAX_FAILURES),
}


@pytest.fixture(scope="module")
def two_servers(pg_server: PostgresServer) -> Iterator[TwoServers]:
    """Servers A and B on a migrated database of their own, stopped (and it dropped) after."""
    with running_two_servers(pg_server, SERVER_ENV, prefix="two_processes") as servers:
        yield servers


@pytest.fixture
async def a(two_servers: TwoServers) -> AsyncIterator[Api]:
    async with api_of(two_servers.a) as api:
        yield api


@pytest.fixture
async def b(two_servers: TwoServers) -> AsyncIterator[Api]:
    async with api_of(two_servers.b) as api:
        yield api


@pytest.fixture
async def owner(two_servers: TwoServers) -> SignedUp:
    seeded = await seed_merchant(two_servers.database_url, roles=(), stores=())
    return seeded.owner


async def log_in(api: Api, email: str, password: str) -> GraphQLResponse:
    return await api.gql(SESSION_CREATE, {"input": {"email": email, "password": password}})


# --- sessions -------------------------------------------------------------------------------


async def test_a_session_revoked_through_one_server_is_refused_by_the_other(
    a: Api, b: Api, owner: SignedUp
) -> None:
    # given: B has just served the session
    assert (await b.gql(VIEWER, token=owner.token)).data["viewer"] == {"role": "OWNER"}

    # when: the owner logs out through A
    revoked = await a.gql(SESSION_REVOKE, token=owner.token)

    # then: B refuses the token on its next request
    assert revoked.data["sessionRevoke"] == {"revoked": True, "userErrors": []}
    assert_refused(await b.gql(VIEWER, token=owner.token), "REVOKED", owner.token)
    assert_refused(await a.gql(VIEWER, token=owner.token), "REVOKED", owner.token)


# --- API secrets ----------------------------------------------------------------------------


async def test_a_secret_deleted_through_one_server_is_refused_by_the_other_that_cached_it(
    a: Api, b: Api, owner: SignedUp
) -> None:
    # given: a secret issued through A, used twice through B, which verified it with argon2
    # once and answered the second use from its memory of verified secrets
    issued = await a.gql(
        ISSUE,
        {"input": {"storeId": owner.representative_store_id, "name": "Partner"}},
        token=owner.token,
    )
    payload = issued.data["apiSecretIssue"]
    assert payload["userErrors"] == [], payload
    secret, secret_id = payload["secret"], payload["apiSecret"]["id"]
    verified_before = await verifications(b, "ok")
    for _ in range(2):
        used = await b.gql(WHO_AM_I, authorization=portone(secret))
        assert used.status == 200, used.body
        assert used.data["viewer"]["merchant"]["name"]
    assert await verifications(b, "ok") == verified_before + 1

    # when: the owner deletes it through A
    deleted = await a.gql(SECRET_DELETE, {"id": secret_id}, token=owner.token)

    # then: B refuses it on the next request, although it had it cached
    assert deleted.data["apiSecretDelete"] == {"deletedApiSecretId": secret_id, "userErrors": []}
    assert_refused(await b.gql(WHO_AM_I, authorization=portone(secret)), "REVOKED", secret)


# --- log-in throttling ----------------------------------------------------------------------


async def test_failed_log_ins_through_both_servers_count_towards_one_limit(
    a: Api, b: Api, owner: SignedUp
) -> None:
    # given: LOGIN_MAX_FAILURES wrong passwords for one email from one address, alternating
    # A and B (each server alone sees only half of them)
    for n in range(LOGIN_MAX_FAILURES):
        failed = await log_in((a, b)[n % 2], owner.email, WRONG_PASSWORD)
        codes = [error["code"] for error in failed.data["sessionCreate"]["userErrors"]]
        assert codes == ["INVALID_CREDENTIALS"]

    # when: one more attempt through each, the right password included
    through_a = await log_in(a, owner.email, WRONG_PASSWORD)
    through_b = await log_in(b, owner.email, PASSWORD)

    # then: both are refused
    for refused in (through_a, through_b):
        assert refused.error_codes == ["RATE_LIMITED"], refused.body
        assert refused.body.get("data") is None
        assert refused.body["errors"][0]["extensions"]["retryAfterSeconds"] >= 1


# --- webhook events -------------------------------------------------------------------------


@pytest.fixture
async def receiver_pool() -> AsyncIterator[Receivers]:
    async with receivers() as pool:
        yield pool


@pytest.fixture
async def worker(two_servers: TwoServers, tmp_path: Path) -> AsyncIterator[WorkerProcess]:
    """One `integration-api worker` process on the servers' database, running."""
    pool = Workers(two_servers.database_url, tmp_path, WEBHOOK_WORKER_POLL_SECONDS="0.2")
    try:
        yield await pool.start()
    finally:
        await pool.stop_all()


async def test_an_event_published_through_one_server_is_delivered_once_by_the_worker(
    a: Api, owner: SignedUp, receiver_pool: Receivers, worker: WorkerProcess
) -> None:
    # given: the store's V2 TEST webhooks go to a loopback receiver; neither server delivers
    # (WEBHOOK_WORKER=off), the worker process does
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await save_setting(a, owner.token, store_id, receiver.url)
    await issue_secret(a, owner.token, store_id)
    body = event_body(store_id)

    # when: the payment core publishes an event through A
    accepted = await publish(a.client, body)

    # then: the worker delivers it, once
    assert accepted.status_code == 202, accepted.text
    delivered = [{"eventId": body["id"], "status": "SUCCEEDED"}]

    async def events() -> list[dict[str, Any]]:
        result = await a.gql(EVENT_STATUS, {"storeId": store_id}, token=owner.token)
        nodes: list[dict[str, Any]] = result.data["store"]["webhookEvents"]["nodes"]
        return nodes

    assert await eventually(events, lambda nodes: nodes == delivered) == delivered
    assert len(receiver.requests) == 1
    assert body["data"]["paymentId"] in receiver.requests[0].text
    assert await worker.attempts() == 1
    assert worker.problems() == []
