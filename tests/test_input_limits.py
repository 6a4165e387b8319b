"""Input floods: lists over their maximum, too many problems, bodies over MAX_REQUEST_BYTES."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from db import sqlite_reads
from gql_api.app import create_app
from gql_api.channels.rules import MAX_CREDENTIALS
from gql_api.errors import DomainError, FieldError, UserErrorCode
from gql_api.i18n import Message
from gql_api.input_limits import ListLimits, largest_max_items, list_inputs, max_items
from gql_api.pg_catalog.catalog import load_catalog
from gql_api.schema import build_schema
from gql_api.settings import Settings
from gql_api.user_errors import MAX_USER_ERRORS, user_errors
from tests.channels.helpers import (
    CHANNEL_CREATE,
    CHANNEL_UPDATE,
    count_rows,
    create_channel,
    errors,
    inicis_live_input,
)
from tests.conftest import make_settings
from tests.support import Api, SignedUp

ROOMY_BODY_BYTES = 8 * 1024 * 1024  # room for 100,000 credentials: the list limit must answer
FLOOD = 100_000
SMALL_ANSWER_BYTES = 2_000

CREDENTIALS_AS_A_VARIABLE = """
mutation ChannelCreate($input: ChannelCreateInput!, $credentials: [CredentialInput!]!) {
  channelCreate(input: {
    storeId: "unused", mode: LIVE, pgProvider: INICIS_V2, moduleCode: "INICIS_V2_PAYMENT",
    name: "Flood", pgMerchantId: "MOIportone", credentials: $credentials
  }) { channel { id } userErrors { field code message } }
  other: channelCreate(input: $input) { channel { id } userErrors { field code message } }
}
"""


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, max_request_bytes=ROOMY_BODY_BYTES)


@pytest.fixture
async def owner(api: Api) -> SignedUp:
    return await api.sign_up()


def flood(count: int = FLOOD) -> list[dict[str, str]]:
    return [{"key": f"key{i}", "value": "v"} for i in range(count)]


async def post_bytes(
    client: httpx.AsyncClient, body: dict[str, Any], token: str | None = None
) -> httpx.Response:
    content = orjson.dumps(body)
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return await client.post("/graphql", content=content, headers=headers)


# --- lists over their maximum ----------------------------------------------------------------


async def test_a_hundred_thousand_credentials_from_an_owner_get_one_user_error(
    client: httpx.AsyncClient, owner: SignedUp, app: Starlette
) -> None:
    # given
    channel_input = inicis_live_input(owner.representative_store_id, credentials=flood())

    # when
    response = await post_bytes(
        client, {"query": CHANNEL_CREATE, "variables": {"input": channel_input}}, owner.token
    )

    # then
    assert response.status_code == 200
    assert len(response.content) < SMALL_ANSWER_BYTES
    payload = response.json()["data"]["channelCreate"]
    assert errors(payload) == [("INVALID_INPUT", ["input", "credentials"])]
    assert str(MAX_CREDENTIALS) in payload["userErrors"][0]["message"]
    assert await count_rows(app, "channels") == 0


async def test_a_hundred_thousand_credentials_from_anyone_get_a_small_answer(
    client: httpx.AsyncClient, owner: SignedUp, app: Starlette
) -> None:
    # given: no Authorization header
    channel_input = inicis_live_input(owner.representative_store_id, credentials=flood())

    # when
    response = await post_bytes(
        client, {"query": CHANNEL_CREATE, "variables": {"input": channel_input}}
    )

    # then
    assert len(response.content) < SMALL_ANSWER_BYTES
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["UNAUTHENTICATED"]
    assert await count_rows(app, "channels") == 0


async def test_a_flood_in_a_list_variable_is_cut_as_well(
    client: httpx.AsyncClient, owner: SignedUp, app: Starlette
) -> None:
    # given: the list is a variable of its own, used inside a literal input object
    variables = {
        "credentials": flood(),
        "input": inicis_live_input(owner.representative_store_id, credentials=flood()),
    }

    # when
    response = await post_bytes(
        client, {"query": CREDENTIALS_AS_A_VARIABLE, "variables": variables}, owner.token
    )

    # then
    assert len(response.content) < SMALL_ANSWER_BYTES
    data = response.json()["data"]
    assert errors(data["channelCreate"]) == [("INVALID_INPUT", ["input", "credentials"])]
    assert errors(data["other"]) == [("INVALID_INPUT", ["input", "credentials"])]
    assert await count_rows(app, "channels") == 0


async def test_two_hundred_bad_credentials_get_one_user_error(
    api: Api, owner: SignedUp, app: Starlette
) -> None:
    # given
    channel_input = inicis_live_input(owner.representative_store_id, credentials=flood(200))

    # when
    result = await api.gql(CHANNEL_CREATE, {"input": channel_input}, token=owner.token)

    # then
    payload = result.data["channelCreate"]
    assert errors(payload) == [("INVALID_INPUT", ["input", "credentials"])]
    assert await count_rows(app, "channels") == 0


async def test_the_maximum_itself_is_checked_item_by_item(api: Api, owner: SignedUp) -> None:
    # given: exactly the maximum, every one unknown to the module
    channel_input = inicis_live_input(
        owner.representative_store_id, credentials=flood(MAX_CREDENTIALS)
    )

    # when
    result = await api.gql(CHANNEL_CREATE, {"input": channel_input}, token=owner.token)

    # then
    codes = [code for code, _ in errors(result.data["channelCreate"])]
    assert codes.count("CREDENTIAL_UNKNOWN") == MAX_CREDENTIALS


async def test_a_channel_update_with_too_many_credentials_changes_nothing(
    client: httpx.AsyncClient, api: Api, owner: SignedUp
) -> None:
    # given
    channel = await create_channel(
        api, owner.token, inicis_live_input(owner.representative_store_id)
    )
    update = {"id": channel["id"], "version": channel["version"], "credentials": flood()}

    # when
    response = await post_bytes(
        client, {"query": CHANNEL_UPDATE, "variables": {"input": update}}, owner.token
    )

    # then
    assert len(response.content) < SMALL_ANSWER_BYTES
    payload = response.json()["data"]["channelUpdate"]
    assert errors(payload) == [("INVALID_INPUT", ["input", "credentials"])]
    again = await api.gql(
        CHANNEL_UPDATE,
        {"input": {"id": channel["id"], "version": channel["version"]}},
        token=owner.token,
    )
    assert again.data["channelUpdate"]["channel"]["version"] == channel["version"]


def test_the_credential_maximum_exceeds_every_module_of_the_catalog() -> None:
    # given
    catalog = load_catalog()

    # when
    largest = max(len(m.credential_fields) for p in catalog.providers for m in p.modules)

    # then
    assert largest < MAX_CREDENTIALS


def test_every_list_of_an_input_has_a_documented_maximum(tmp_path: Path) -> None:
    # given
    schema = build_schema(make_settings(f"sqlite:///{tmp_path}/unused.db"))

    # when
    lists = dict(list_inputs(schema._schema))

    # then: new list inputs must be declared with gql_api.input_limits.limited_list
    assert "ChannelCreateInput.credentials" in lists
    for name, definition in lists.items():
        maximum = max_items(definition)
        assert maximum is not None, f"{name} is a list without a maximum"
        documented = re.search(r"At most (\d+) items\.", definition.description or "")
        assert documented, f"{name} does not document its maximum"
        assert int(documented.group(1)) == maximum, name


# --- user errors -----------------------------------------------------------------------------


def test_user_errors_are_the_first_fifty_and_one_saying_how_many_more() -> None:
    # given: a mutation that found 200 problems
    problems = [
        FieldError(
            UserErrorCode.INVALID_INPUT,
            ("input", "items", str(i)),
            Message("Item {i} is bad.", {"i": i}),
        )
        for i in range(200)
    ]

    # when
    shown = user_errors(DomainError(problems))

    # then
    assert len(shown) == MAX_USER_ERRORS + 1 == 51
    assert [e.message for e in shown[:50]] == [f"Item {i} is bad." for i in range(50)]
    last = shown[-1]
    assert last.field is None
    assert last.code is UserErrorCode.INVALID_INPUT
    assert "150 more" in last.message


def test_fifty_user_errors_are_all_shown() -> None:
    # given
    problems = [
        FieldError(UserErrorCode.REQUIRED, ("input", str(i)), Message("x")) for i in range(50)
    ]

    # when
    shown = user_errors(DomainError(problems))

    # then
    assert len(shown) == 50
    assert all(e.code is UserErrorCode.REQUIRED for e in shown)


# --- the body limit --------------------------------------------------------------------------


@pytest.fixture
async def default_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with the default MAX_REQUEST_BYTES."""
    application = create_app(make_settings(database_url))
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    application.state.app_state.hashing.close()
    sqlite_reads.close(application.state.app_state.engine)
    await application.state.app_state.engine.dispose()


def test_the_body_limit_is_one_mib_by_default() -> None:
    assert Settings.model_fields["max_request_bytes"].default == 1024 * 1024


async def test_a_two_mib_body_is_413_in_a_graphql_shaped_body(
    default_client: httpx.AsyncClient,
) -> None:
    # given
    body = {"query": "{ __typename }", "variables": {"pad": "x" * 2 * 1024 * 1024}}

    # when
    response = await default_client.post("/graphql", json=body)

    # then
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_REQUEST"]
    assert body["errors"][0]["message"]


async def test_a_hundred_thousand_credentials_are_413_with_the_default_limit(
    default_client: httpx.AsyncClient,
) -> None:
    # given: 3.4 MB, as the attacker sent it
    channel_input = inicis_live_input("store-unused", credentials=flood())

    # when
    response = await post_bytes(
        default_client, {"query": CHANNEL_CREATE, "variables": {"input": channel_input}}
    )

    # then
    assert response.status_code == 413
    assert len(response.content) < SMALL_ANSWER_BYTES
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["BAD_REQUEST"]


def test_list_limits_cut_a_flood_before_it_is_converted_item_by_item() -> None:
    """What keeps a flood cheap: the variables reach graphql-core's coercion (and the service)
    with at most maximum + 1 items, whatever was sent; valid lists are never changed."""
    # given
    schema = build_schema(Settings(introspection_enabled=True))._schema
    input_type = schema.type_map["ChannelCreateInput"]
    flooded = {"credentials": flood(), "name": "Flood"}
    valid = {"credentials": flood(MAX_CREDENTIALS), "name": "Fine"}

    # when
    limits = ListLimits(fallback=largest_max_items(schema))
    limits._cut(flooded, input_type)  # type: ignore[arg-type]
    limits._cut(valid, input_type)  # type: ignore[arg-type]

    # then
    assert len(flooded["credentials"]) == MAX_CREDENTIALS + 1
    assert valid["credentials"] == flood(MAX_CREDENTIALS)
