"""The database away for a moment: a PostgreSQL restart, every pooled connection busy, and
PostgreSQL behind a pooler (DB_STATEMENT_CACHE=false).

A request that meets the database unavailable fails masked (INTERNAL, the request id) with
`retryable: true`, as HTTP 503 with `Retry-After` when nothing of it could be answered; the
requests after it succeed. A restart costs one failed request, not one per pooled connection.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db import sqlite_reads
from db.engine import create_engine
from db.migrate import upgrade
from gql_api.app import create_app
from gql_api.settings import Settings
from tests.api_secrets.helpers import issue, portone
from tests.channels.helpers import CHANNEL_CREATE, STORE_CHANNELS, kcp_shared_test_input
from tests.conftest import IN_CI, make_settings
from tests.pg_server import PostgresServer
from tests.support import PASSWORD, STORE_CREATE, Api, GraphQLResponse, SignedUp

POOL_SIZE = 3

# What the console's dashboard reads first: the merchant's stores and a store's channels.
DASHBOARD = """
query Dashboard($storeId: String!) {
  merchant {
    name
    stores(first: 10) { edges { node { storeId name isRepresentative } } }
  }
  store(storeId: $storeId) {
    channels(first: 10) { edges { node { name mode pgProvider } } }
  }
}
"""

LOG_IN = """
mutation LogIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) { session { token } userErrors { code } }
}
"""

WHO_AM_I = "{ viewer { merchant { name } } }"

# Named statements the server holds for the asking connection (not counting this one).
NAMED_STATEMENTS = """
SELECT count(*) FROM pg_prepared_statements WHERE statement NOT LIKE '%pg_prepared_statements%'
"""


@pytest.fixture
def own_postgresql() -> Iterator[PostgresServer]:
    """A migrated PostgreSQL server of the test's own, to restart: restarting the session's
    server would break the other tests' connections."""
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


STRICT = {"accept": "application/graphql-response+json"}


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Api, AsyncEngine]]:
    """The real ASGI app and its engine; an exception escaping the app is answered as a
    server answers it (a plain 500), not raised into the test."""
    application = create_app(settings)
    state = application.state.app_state
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    try:
        # The status codes under test (503, 500) are application/graphql-response+json's;
        # over application/json every GraphQL response is 200 (gql_api.http_conventions).
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=STRICT
        ) as http:
            yield Api(http), state.engine
    finally:
        state.hashing.close()
        sqlite_reads.close(state.engine)
        await state.engine.dispose()


async def dashboard(api: Api, owner: SignedUp, **auth: str) -> GraphQLResponse:
    credentials = auth or {"token": owner.token}
    return await api.gql(DASHBOARD, {"storeId": owner.representative_store_id}, **credentials)


async def log_in(api: Api, owner: SignedUp) -> GraphQLResponse:
    return await api.gql(LOG_IN, {"input": {"email": owner.email, "password": PASSWORD}})


def assert_dashboard(answer: GraphQLResponse) -> None:
    assert answer.status == 200, answer.body
    assert answer.data["merchant"]["stores"]["edges"], answer.body


def assert_retryable(answer: GraphQLResponse, *, status: int, secrets: tuple[str, ...]) -> None:
    """Masked errors only, each retryable with the request's id, and nothing of the failure
    itself (no SQL, no address, no DSN, no stack trace)."""
    assert answer.status == status, answer.body
    assert answer.body["errors"], answer.body
    for error in answer.body["errors"]:
        assert error["message"] == "Internal server error."
        assert error["extensions"] == {
            "code": "INTERNAL",
            "retryable": True,
            "requestId": answer.headers["x-request-id"],
        }
    if status == 503:
        assert answer.headers["retry-after"] == "1"
    # All but the request id (random hex: it could hold a port number's digits by chance).
    shown = json.dumps(answer.body).replace(answer.headers["x-request-id"], "").lower()
    for secret in ("postgresql", "select", "traceback", "127.0.0.1", *secrets):
        assert secret.lower() not in shown, answer.body


async def open_every_connection(engine: AsyncEngine, count: int) -> None:
    """`count` connections opened at once and back in the pool, each used once."""
    async with AsyncExitStack() as stack:
        for _ in range(count):
            connection = await stack.enter_async_context(engine.connect())
            await connection.execute(text("SELECT 1"))


# --- a PostgreSQL restart -------------------------------------------------------------------


# Authentication reads the session first (db.driver_query); logging in reads and writes in
# its own transaction (a non-null payload: nothing of the request is answered either).
@pytest.mark.parametrize("first", ["dashboard", "log-in"])
async def test_after_a_postgresql_restart_only_the_first_request_fails(
    own_postgresql: PostgresServer, first: str
) -> None:
    # given: a merchant, and every connection of the pool open
    settings = make_settings(
        own_postgresql.url, db_pool_size=POOL_SIZE, db_max_overflow=0, webhook_worker="off"
    )
    async with serving(settings) as (api, engine):
        owner = await api.sign_up()
        assert_dashboard(await dashboard(api, owner))
        await open_every_connection(engine, POOL_SIZE)

        # when: PostgreSQL restarts, breaking every pooled connection
        own_postgresql.restart()
        answer = await (log_in(api, owner) if first == "log-in" else dashboard(api, owner))

        # then: the first request succeeds, or (as without a pre-ping) fails masked and
        # retryable; nothing of it is answered, so as 503
        if answer.status != 200 or "errors" in answer.body:
            assert_retryable(answer, status=503, secrets=(str(own_postgresql.port),))

        # and: the requests after it succeed: the pool replaced every broken connection
        for _ in range(2 * POOL_SIZE):
            assert_dashboard(await dashboard(api, owner))
        logged_in = await log_in(api, owner)
        assert logged_in.data["sessionCreate"]["session"]["token"]


# --- every pooled connection busy -----------------------------------------------------------


async def test_a_request_finding_no_free_connection_in_time_fails_retryable(
    database_url: str,
) -> None:
    # given: a pool of one connection, held by someone else
    settings = make_settings(
        database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout_seconds=0.2
    )
    async with serving(settings) as (api, engine):
        owner = await api.sign_up()
        async with engine.connect() as held:
            await held.execute(text("SELECT 1"))

            # when
            answer = await dashboard(api, owner)

        # then: it failed as retryable, nothing of it answered
        assert_retryable(answer, status=503, secrets=())

        # and: once the connection is back, the same request succeeds
        assert_dashboard(await dashboard(api, owner))


# --- PostgreSQL behind PgBouncer (transaction mode) -----------------------------------------


async def named_statements(connection: AsyncConnection) -> int:
    count = (await connection.execute(text(NAMED_STATEMENTS))).scalar_one()
    assert isinstance(count, int)
    return count


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_with_the_statement_cache_off_no_connection_keeps_a_prepared_statement(
    database_url: str,
) -> None:
    # given: the service as configured behind PgBouncer in transaction mode
    settings = make_settings(database_url, db_statement_cache=False)
    async with serving(settings) as (api, engine):
        # when: the console's usual flow: sign up, log in, read, change
        owner = await api.sign_up()
        logged_in = await log_in(api, owner)
        token = logged_in.data["sessionCreate"]["session"]["token"]
        created = await api.gql(
            CHANNEL_CREATE,
            {"input": kcp_shared_test_input(owner.representative_store_id)},
            token=token,
        )
        assert created.data["channelCreate"]["userErrors"] == []
        store = await api.gql(STORE_CREATE, {"name": "Gangnam"}, token=token)
        assert store.data["storeCreate"]["userErrors"] == []
        read = await dashboard(api, owner, token=token)
        assert_dashboard(read)
        channels = read.data["store"]["channels"]["edges"]
        assert [edge["node"]["name"] for edge in channels] == ["KCP test"]
        listed = await api.gql(
            STORE_CHANNELS, {"storeId": owner.representative_store_id}, token=token
        )
        assert len(listed.data["store"]["channels"]["edges"]) == 1

        # and: a partner integration with an API secret
        issued = await issue(api, token, owner.representative_store_id)
        partner = await api.gql(WHO_AM_I, authorization=portone(issued.secret))
        assert partner.data["viewer"]["merchant"]["name"]
        by_partner = await dashboard(api, owner, authorization=portone(issued.secret))
        assert by_partner.status == 200, by_partner.body
        assert by_partner.data["store"]["channels"]["edges"] == channels

        # then: none of the app's connections holds a named prepared statement
        opened = engine.pool.checkedin()  # type: ignore[attr-defined]
        assert opened >= 1
        async with AsyncExitStack() as stack:
            for _ in range(opened):
                connection = await stack.enter_async_context(engine.connect())
                assert await named_statements(connection) == 0

    # and: with the cache on, as by default, the same check does see them
    cached = create_engine(database_url)
    try:
        async with cached.connect() as connection:
            await connection.execute(text("SELECT 1"))
            assert await named_statements(connection) > 0
    finally:
        await cached.dispose()
