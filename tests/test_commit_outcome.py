"""A mutation whose COMMIT may have been applied is never reported as safe to send again.

The database is real (PostgreSQL); only the connection's fate is played, with SQLAlchemy
events on the app's engine: the reply to COMMIT lost after the server applied it, or the
connection lost at the INSERT, before anything was committed. Only the latter is `retryable`
(HTTP 503 + Retry-After); the former is INTERNAL with `retryable: false`, HTTP 500, and the
row is there: a client that sent it again would have created the store twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import event, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from starlette.applications import Starlette

from db.models import Store
from tests.support import STORE_CREATE, Api, GraphQLResponse


@pytest.fixture(autouse=True)
def strict_media_type(api: Api) -> None:
    """The status codes under test (503, 500) are application/graphql-response+json's; over
    application/json every GraphQL response is 200 (gql_api.http_conventions)."""
    api.client.headers["accept"] = "application/graphql-response+json"


pytestmark = pytest.mark.parametrize("backend", ["postgresql"])

TWO_STORES = """
mutation TwoStores($first: String!, $second: String!) {
  first: storeCreate(input: { name: $first }) { store { name } userErrors { code } }
  second: storeCreate(input: { name: $second }) { store { name } userErrors { code } }
}
"""

_INSERTED_A_STORE = "test_commit_outcome.inserted_a_store"


def connection_lost() -> sa_exc.DBAPIError:
    """What SQLAlchemy raises when asyncpg finds the connection gone mid-operation."""
    driver_error = asyncpg.ConnectionDoesNotExistError(
        "connection was closed in the middle of operation"
    )
    error = sa_exc.InterfaceError("COMMIT", None, driver_error, connection_invalidated=True)
    error.__cause__ = driver_error
    return error


@dataclass
class Network:
    """How the app's connection fails next: the reply to the next COMMIT of a unit that
    inserted a store lost (the server applied it), or the connection lost at the INSERT of
    the store so named (nothing of that unit committed)."""

    lose_commit_reply: bool = False
    lose_connection_at_insert: str | None = None


def _is_store_insert(statement: str) -> bool:
    return statement.lstrip().upper().startswith("INSERT INTO STORES")


def play(engine: AsyncEngine, network: Network) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "before_cursor_execute")
    def before_execute(
        conn: Connection, _cursor: Any, statement: str, parameters: Any, *_: Any
    ) -> None:
        if not _is_store_insert(statement):
            return
        name = network.lose_connection_at_insert
        if name is not None and name in repr(parameters):
            network.lose_connection_at_insert = None
            raise connection_lost()
        conn.info[_INSERTED_A_STORE] = True

    @event.listens_for(sync_engine, "commit")
    def before_commit(conn: Connection) -> None:
        inserted = conn.info.pop(_INSERTED_A_STORE, False)
        if not (inserted and network.lose_commit_reply):
            return
        network.lose_commit_reply = False
        # The server applies the COMMIT; its reply never arrives.
        dbapi_connection = conn.connection.dbapi_connection
        assert dbapi_connection is not None
        dbapi_connection.commit()
        raise connection_lost()

    @event.listens_for(sync_engine, "rollback")
    def on_rollback(conn: Connection) -> None:
        conn.info.pop(_INSERTED_A_STORE, None)


@asynccontextmanager
async def network_of(app: Starlette) -> AsyncIterator[Network]:
    network = Network()
    play(app.state.app_state.engine, network)
    yield network


async def stores_named(engine: AsyncEngine, name: str) -> int:
    async with engine.connect() as conn:
        counted = await conn.execute(
            select(func.count()).select_from(Store).where(col(Store.name) == name)
        )
        return int(counted.scalar_one())


def assert_masked(answer: GraphQLResponse, error: dict[str, Any], *, retryable: bool) -> None:
    assert error["message"] == "Internal server error."
    assert error["extensions"] == {
        "code": "INTERNAL",
        "retryable": retryable,
        "requestId": answer.headers["x-request-id"],
    }


async def test_a_commit_whose_reply_was_lost_is_not_retryable(
    app: Starlette, api: Api, db_engine: AsyncEngine
) -> None:
    # given: a merchant, and a connection whose next store COMMIT reaches the server but
    # whose reply is lost
    owner = await api.sign_up()
    async with network_of(app) as network:
        network.lose_commit_reply = True

        # when
        answer = await api.gql(STORE_CREATE, {"name": "Gangnam"}, token=owner.token)

    # then: the store was created
    assert await stores_named(db_engine, "Gangnam") == 1
    # and: the client is not told to send the request again: no retryable, no 503
    assert answer.body.get("data") is None, answer.body
    [error] = answer.body["errors"]
    assert_masked(answer, error, retryable=False)
    assert answer.status == 500, answer.body
    assert "retry-after" not in answer.headers


async def test_a_connection_lost_before_the_write_is_retryable_and_the_retry_applies_once(
    app: Starlette, api: Api, db_engine: AsyncEngine
) -> None:
    # given: a connection lost at the store's INSERT (nothing committed)
    owner = await api.sign_up()
    async with network_of(app) as network:
        network.lose_connection_at_insert = "Gangnam"

        # when
        answer = await api.gql(STORE_CREATE, {"name": "Gangnam"}, token=owner.token)

        # then: retryable, as 503 with Retry-After, and no store
        [error] = answer.body["errors"]
        assert_masked(answer, error, retryable=True)
        assert answer.status == 503, answer.body
        assert answer.headers["retry-after"] == "1"
        assert await stores_named(db_engine, "Gangnam") == 0

        # and: sent again, it creates the store once
        again = await api.gql(STORE_CREATE, {"name": "Gangnam"}, token=owner.token)
    assert again.data["storeCreate"]["store"]["name"] == "Gangnam"
    assert await stores_named(db_engine, "Gangnam") == 1


async def test_a_failure_after_an_earlier_field_committed_is_not_retryable(
    app: Starlette, api: Api, db_engine: AsyncEngine
) -> None:
    # given: two storeCreates in one request; the connection is lost at the second's INSERT
    owner = await api.sign_up()
    async with network_of(app) as network:
        network.lose_connection_at_insert = "Seocho"

        # when
        answer = await api.gql(
            TWO_STORES, {"first": "Gangnam", "second": "Seocho"}, token=owner.token
        )

    # then: the first store was created, the second not; the payloads are non-null, so the
    # second's failure leaves no field answered
    assert await stores_named(db_engine, "Gangnam") == 1
    assert await stores_named(db_engine, "Seocho") == 0
    assert answer.body.get("data") is None, answer.body
    # and: sending the request again would create Gangnam twice: not retryable, no 503
    [error] = answer.body["errors"]
    assert error["path"] == ["second"]
    assert_masked(answer, error, retryable=False)
    assert answer.status == 500, answer.body
    assert "retry-after" not in answer.headers
