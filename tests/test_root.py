"""`GET /` points at the API: to GraphiQL when it is on, else a small JSON index of the paths."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gql_api.app import create_app
from tests.conftest import make_settings

HTML = {"Accept": "text/html"}
PRODUCTION = {
    "app_env": "production",
    "argon2_memory_kib": 19456,
    "argon2_time_cost": 2,
    "metrics_token": "metrics-token-for-the-tests-0123456789",
}


@pytest.fixture
def backend() -> str:
    return "sqlite"  # `/` reads no database


@pytest.fixture
async def production_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url, **PRODUCTION)
    assert not settings.graphiql_on
    app = create_app(settings)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http
    finally:
        await app.state.app_state.engine.dispose()


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_root_redirects_to_graphiql_when_it_is_on(
    client: httpx.AsyncClient, method: str
) -> None:
    # when
    response = await client.request(method, "/", headers=HTML)
    # then
    assert response.status_code == 307
    assert response.headers["location"] == "/graphql"


async def test_following_the_redirect_opens_graphiql(client: httpx.AsyncClient) -> None:
    # when
    response = await client.get("/", headers=HTML, follow_redirects=True)
    # then
    assert response.status_code == 200
    assert str(response.url) == "http://testserver/graphql"
    assert "<title>Integration API · GraphiQL</title>" in response.text


async def test_root_lists_the_paths_when_graphiql_is_off(
    production_client: httpx.AsyncClient,
) -> None:
    # when
    response = await production_client.get("/", headers=HTML)
    # then
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    index = response.json()
    assert index == {"graphql": "/graphql", "health": "/healthz", "ready": "/readyz"}
    # Each path it names answers.
    api = await production_client.post(index["graphql"], json={"query": "{ __typename }"})
    assert api.json() == {"data": {"__typename": "Query"}}
    assert (await production_client.get(index["health"])).status_code == 200
    assert (await production_client.get(index["ready"])).status_code == 200


async def test_head_of_the_index_has_no_body(production_client: httpx.AsyncClient) -> None:
    # when
    response = await production_client.head("/")
    # then
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == b""


async def test_root_takes_no_other_method(client: httpx.AsyncClient) -> None:
    # when
    response = await client.post("/", json={"query": "{ __typename }"})
    # then
    assert response.status_code == 405
    assert {method.strip() for method in response.headers["allow"].split(",")} == {"GET", "HEAD"}
