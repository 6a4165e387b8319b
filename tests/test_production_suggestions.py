"""With introspection off (APP_ENV=production), no error message suggests a schema name: no
"Did you mean …" for fields, arguments, types, enum values or input fields, whether the mistake
is in the document or in the variables."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from db import sqlite_reads
from gql_api.app import create_app
from gql_api.settings import Settings
from tests.conftest import make_settings

CHANNELS_OF = 'store(storeId: "store-x") {{ channels(filter: {filter}) {{ nodes {{ id }} }} }}'

# kind: (document, variables, the schema name the development answer suggests)
MISTAKES: dict[str, tuple[str, dict[str, Any], str]] = {
    "field": ("{ merchan { id } }", {}, "'merchant'"),
    "nested field": ("{ viewer { rol } }", {}, "'role'"),
    "argument": ("{ merchant { stores(frist: 1) { nodes { id } } } }", {}, "'first'"),
    "enum value in the document": (
        "{ " + CHANNELS_OF.format(filter="{mode: LIV}") + " }",
        {},
        "'LIVE'",
    ),
    "enum value in a variable": (
        "query($m: IntegrationMode) { " + CHANNELS_OF.format(filter="{mode: $m}") + " }",
        {"m": "LIV"},
        "'LIVE'",
    ),
    "variable type": (
        "query($m: IntegrationMod) { " + CHANNELS_OF.format(filter="{mode: $m}") + " }",
        {},
        "'IntegrationMode'",
    ),
    "fragment type": ('{ node(id: "x") { ... on Chanel { id } } }', {}, "'Channel'"),
    "input field in the document": (
        "{ " + CHANNELS_OF.format(filter="{mod: LIVE}") + " }",
        {},
        "'mode'",
    ),
    "input field in a variable": (
        "query($f: ChannelFilter) { " + CHANNELS_OF.format(filter="$f") + " }",
        {"f": {"mod": "LIVE"}},
        "'mode'",
    ),
}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url,
        app_env="production",
        argon2_memory_kib=19456,
        argon2_time_cost=2,
        metrics_token="metrics-token-for-the-tests-0123456789",
    )


@pytest.fixture
async def development_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(make_settings(database_url, app_env="development"))
    try:
        async with _client(application) as http:
            yield http
    finally:
        application.state.app_state.hashing.close()
        sqlite_reads.close(application.state.app_state.engine)
        await application.state.app_state.engine.dispose()


def _client(application: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=application)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _messages(client: httpx.AsyncClient, kind: str) -> list[str]:
    document, variables, _ = MISTAKES[kind]
    response = await client.post(
        "/graphql",
        json={"query": document, "variables": variables},
        headers={"accept": "application/graphql-response+json"},  # request errors: 400
    )
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["GRAPHQL_VALIDATION_FAILED"]
    return [e["message"] for e in errors]


@pytest.mark.parametrize("kind", list(MISTAKES))
async def test_production_suggests_no_schema_name(client: httpx.AsyncClient, kind: str) -> None:
    # given a production app (introspection off) and a document with a near miss

    # when
    messages = await _messages(client, kind)

    # then the mistake is reported, and nothing hints at what the right name would be
    _, _, suggested = MISTAKES[kind]
    for message in messages:
        assert "did you mean" not in message.lower()
        assert suggested not in message


@pytest.mark.parametrize("kind", ["argument", "enum value in a variable", "variable type"])
async def test_development_still_suggests(development_client: httpx.AsyncClient, kind: str) -> None:
    # given introspection on, the same near misses are answered with a hint (which is what
    # the production test above would otherwise see)

    # when
    messages = await _messages(development_client, kind)

    # then
    _, _, suggested = MISTAKES[kind]
    assert any("Did you mean" in m and suggested in m for m in messages), messages
