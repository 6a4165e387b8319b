"""The service driven by an off-the-shelf client, Python's `gql`: it fetches the schema by
introspection and checks every document against it before sending, as typed dashboard
clients do; its answers come through its own parsing of status codes and bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from graphql import GraphQLError
from starlette.applications import Starlette

from tests.support import STORE_CREATE, Api

DASHBOARD = gql(
    """
    query Dashboard($storeId: String!, $n: Int) {
      store(storeId: $storeId) {
        storeId
        name
        subStores(first: $n) {
          totalCount
          pageInfo { hasNextPage endCursor }
          nodes {
            storeId
            channels(first: $n) { totalCount nodes { id name pgProvider } }
            apiSecrets(first: $n) { totalCount nodes { id name } }
          }
        }
        webhookSettings { id moduleVersion mode url }
      }
    }
    """
)


@asynccontextmanager
async def client_of(app: Starlette, *, token: str | None = None) -> AsyncIterator[Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = HTTPXAsyncTransport(
        url="http://testserver/graphql",
        transport=httpx.ASGITransport(app=app),
        headers=headers,
    )
    async with Client(transport=transport, fetch_schema_from_transport=True) as session:
        yield session


async def test_a_dashboard_with_variable_page_sizes_runs(app: Starlette, api: Api) -> None:
    owner = await api.sign_up()
    created = set()
    for name in ("Gangnam", "Jamsil"):
        answer = await api.gql(STORE_CREATE, {"name": name}, token=owner.token)
        created.add(answer.data["storeCreate"]["store"]["storeId"])

    async with client_of(app, token=owner.token) as session:
        result = await session.execute(
            GraphQLRequest(
                DASHBOARD, variable_values={"storeId": owner.representative_store_id, "n": 10}
            )
        )

    store = result["store"]
    assert store["storeId"] == owner.representative_store_id
    assert store["subStores"]["totalCount"] == 2
    assert {sub["storeId"] for sub in store["subStores"]["nodes"]} == created
    assert len(store["webhookSettings"]) == 4
    assert len({setting["id"] for setting in store["webhookSettings"]}) == 4


async def test_a_mutation_reports_user_errors_as_data(app: Starlette, api: Api) -> None:
    owner = await api.sign_up()

    async with client_of(app, token=owner.token) as session:
        result = await session.execute(
            GraphQLRequest(STORE_CREATE, variable_values={"name": "   "})
        )

    payload = result["storeCreate"]
    assert payload["store"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["input", "name"], "REQUIRED")
    ]


async def test_errors_reach_the_client_as_graphql_errors(app: Starlette) -> None:
    async with client_of(app) as session:
        # A field error (not signed in): the client sees the error and its code.
        with pytest.raises(TransportQueryError) as refused:
            await session.execute(gql("query { merchant { name } }"))
        assert refused.value.errors is not None
        assert refused.value.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"

        # A document the schema does not have: the client refuses it before sending.
        with pytest.raises(GraphQLError):
            await session.execute(gql("query { merchant { nope } }"))

        # Public fields work anonymously.
        catalog = await session.execute(gql("query { pgProviders { provider } }"))
        assert len(catalog["pgProviders"]) == 22
