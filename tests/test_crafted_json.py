"""Crafted JSON: deep nesting and strings that are not Unicode are refused, masked, logged small."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gql_api.logs import MAX_FIELD_CHARS, JsonFormatter
from gql_api.request_json import MAX_JSON_DEPTH, MAX_OBJECT_KEYS
from tests.support import Api

LOG_LINE_MAX_BYTES = 3 * MAX_FIELD_CHARS  # "a few KB"

PROVIDERS = """
query Providers($purpose: ChannelPurpose) { pgProviders(purpose: $purpose) { provider } }
"""
LOG_IN = """
mutation LogIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) { session { token } userErrors { field code } }
}
"""
CHANNEL_SEARCH = """
query Search($storeId: String!, $filter: ChannelFilter) {
  store(storeId: $storeId) { channels(first: 5, filter: $filter) { edges { cursor } } }
}
"""


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO)
    yield caplog


def raw_body(query: str, variables: str = "{}", **fields: str) -> str:
    """A JSON body written by hand: every argument is JSON text, put in as it is."""
    parts = [f'"query": {query}', f'"variables": {variables}']
    parts += [f'"{name}": {text}' for name, text in fields.items()]
    return "{" + ", ".join(parts) + "}"


TYPENAME = json.dumps("{ __typename }")


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


# Request errors are 400 over application/graphql-response+json (gql_api.http_conventions).
STRICT = {"accept": "application/graphql-response+json"}


async def post_raw(client: httpx.AsyncClient, body: str | bytes) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    headers = {"content-type": "application/json", **STRICT}
    return await client.post("/graphql", content=content, headers=headers)


def assert_refused(response: httpx.Response, code: str = "BAD_REQUEST") -> dict[str, Any]:
    assert response.status_code == 400, response.text[:500]
    assert response.headers["content-type"].startswith("application/graphql-response+json")
    body: dict[str, Any] = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == [code]
    assert "Traceback" not in response.text
    assert len(response.content) < 2_000
    return body


def assert_small_logs(logs: pytest.LogCaptureFixture) -> None:
    formatter = JsonFormatter()
    for record in logs.records:
        assert record.levelno < logging.ERROR, record.getMessage()[:500]
        assert len(formatter.format(record).encode()) < LOG_LINE_MAX_BYTES


# --- depth -----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [900, 10_000])
async def test_variables_nested_deep_are_a_400(
    client: httpx.AsyncClient, logs: pytest.LogCaptureFixture, depth: int
) -> None:
    # given: 2 KB (or 20 KB) of brackets in a variable
    body = raw_body(json.dumps(PROVIDERS), f'{{"purpose": {nested(depth)}}}')

    # when
    response = await post_raw(client, body)

    # then
    body_json = assert_refused(response)
    assert "nested" in body_json["errors"][0]["message"]
    assert response.headers.get("x-request-id")
    assert_small_logs(logs)


@pytest.mark.parametrize("depth", [900, 10_000])
async def test_a_document_literal_nested_deep_is_a_400(
    client: httpx.AsyncClient, logs: pytest.LogCaptureFixture, depth: int
) -> None:
    # given
    query = f"query {{ pgProviders(purpose: {nested(depth, 'PAYMENT')}) {{ provider }} }}"

    # when
    response = await client.post("/graphql", json={"query": query}, headers=STRICT)

    # then
    assert_refused(response, code="GRAPHQL_PARSE_FAILED")
    assert_small_logs(logs)


async def test_json_as_deep_as_the_limit_is_served(client: httpx.AsyncClient) -> None:
    # given: the body is level 1, "variables" 2, the padding the rest
    body = raw_body(TYPENAME, f'{{"pad": {nested(MAX_JSON_DEPTH - 2)}}}')

    # when
    response = await post_raw(client, body)

    # then
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_one_level_more_is_refused(client: httpx.AsyncClient) -> None:
    # given
    body = raw_body(TYPENAME, f'{{"pad": {nested(MAX_JSON_DEPTH - 1)}}}')

    # when
    response = await post_raw(client, body)

    # then
    assert_refused(response)


# --- strings that are not Unicode ------------------------------------------------------------

LONE = "\\ud800"  # as written in JSON: half of a surrogate pair


@pytest.mark.parametrize(
    "body",
    [
        raw_body(json.dumps(LOG_IN), f'{{"input": {{"email": "a{LONE}@x.com", "password": "x"}}}}'),
        raw_body(json.dumps(PROVIDERS), f'{{"purpose": "{LONE}"}}'),
        raw_body(f'"{{ __typename {LONE} }}"'),
        raw_body(json.dumps("query A { __typename }"), operationName=f'"A{LONE}"'),
        raw_body(TYPENAME, f'{{"{LONE}": 1}}'),
        raw_body(TYPENAME, '{"pad": "\\udc00\\ud800"}'),
    ],
    ids=["string-variable", "enum-variable", "query", "operation-name", "key", "reversed-pair"],
)
async def test_a_lone_surrogate_is_a_400_that_names_the_problem(
    client: httpx.AsyncClient, logs: pytest.LogCaptureFixture, body: str
) -> None:
    # when
    response = await post_raw(client, body)

    # then
    refused = assert_refused(response)
    assert "Unicode" in refused["errors"][0]["message"]
    assert "surrogate" in refused["errors"][0]["message"]
    assert_small_logs(logs)


async def test_bytes_that_are_not_utf8_are_a_400(client: httpx.AsyncClient) -> None:
    # when
    response = await post_raw(client, b'{"query": "{ __typename \xff }"}')

    # then
    assert "Unicode" in assert_refused(response)["errors"][0]["message"]


async def test_a_surrogate_escape_in_a_graphql_string_is_a_parse_error(
    client: httpx.AsyncClient, logs: pytest.LogCaptureFixture
) -> None:
    # given: the escape is GraphQL's, inside the document
    query = 'query { pgProviders(purpose: "\\uD800") { provider } }'

    # when
    response = await client.post("/graphql", json={"query": query}, headers=STRICT)

    # then
    assert_refused(response, code="GRAPHQL_PARSE_FAILED")
    assert_small_logs(logs)


async def test_a_surrogate_pair_is_a_character_like_any_other(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when: 😀 written as its JSON surrogate pair
    response = await api.client.post(
        "/graphql",
        content=raw_body(
            json.dumps(CHANNEL_SEARCH),
            json.dumps({"storeId": owner.representative_store_id, "filter": {"search": "X"}}),
        )
        .replace('"X"', '"\\ud83d\\ude00"')
        .encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {owner.token}"},
    )

    # then
    assert response.status_code == 200
    assert response.json() == {"data": {"store": {"channels": {"edges": []}}}}


async def test_an_escaped_backslash_before_u0000_is_not_a_nul(client: httpx.AsyncClient) -> None:
    # given: the six characters \u0000, not a NUL
    body = raw_body(TYPENAME, '{"pad": "\\\\u0000"}')

    # when
    response = await post_raw(client, body)

    # then
    assert response.status_code == 200


async def test_a_nul_escape_is_still_refused(client: httpx.AsyncClient) -> None:
    # given
    body = raw_body(TYPENAME, '{"pad": "a\\\\\\u0000"}')

    # when
    response = await post_raw(client, body)

    # then
    assert "NUL" in assert_refused(response)["errors"][0]["message"]


# --- nothing unmasked, nothing large in the logs ---------------------------------------------


async def test_an_unexpected_failure_outside_execution_is_a_masked_500(
    client: httpx.AsyncClient, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: encoding the answer fails the way deep recursion does
    def overflow(_: object) -> bytes:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("gql_api.app.orjson.dumps", overflow)

    # when
    response = await client.post("/graphql", json={"query": "{ __typename }"})

    # then
    assert response.status_code == 500
    monkeypatch.undo()
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    assert "Recursion" not in response.text
    formatter = JsonFormatter()
    assert any(r.levelno == logging.ERROR for r in logs.records)
    assert all(len(formatter.format(r).encode()) < LOG_LINE_MAX_BYTES for r in logs.records)


def _deep_recursion(depth: int) -> int:
    return _deep_recursion(depth + 1) + 1


def test_a_log_line_keeps_a_few_kb_of_a_long_message_and_traceback() -> None:
    # given
    try:
        _deep_recursion(0)
    except RecursionError:
        exc_info = sys.exc_info()
    record = logging.makeLogRecord(
        {
            "msg": "x" * 1_000_000,
            "levelname": "ERROR",
            "exc_info": exc_info,
            "extra_field": "y" * 50_000,
        }
    )

    # when
    line = JsonFormatter().format(record)

    # then
    assert len(line.encode()) < LOG_LINE_MAX_BYTES
    entry = json.loads(line)
    assert "characters cut" in entry["message"]
    assert entry["exception"].startswith("Traceback")
    assert entry["exception"].rstrip().endswith("maximum recursion depth exceeded")
    assert "characters cut" in entry["extra_field"]


def test_a_log_line_with_a_lone_surrogate_is_still_utf8() -> None:
    # given
    record = logging.makeLogRecord({"msg": "bad \ud800 value", "levelname": "WARNING"})

    # when
    line = JsonFormatter().format(record)

    # then
    line.encode("utf-8")  # no UnicodeEncodeError in the handler
    assert json.loads(line)["message"].startswith("bad ")


# --- shape ----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["null", "12", '"abc"', "true"])
async def test_a_body_that_is_not_an_object_is_a_bad_request(
    client: httpx.AsyncClient, logs: pytest.LogCaptureFixture, body: str
) -> None:
    # when
    response = await post_raw(client, body)

    # then: 400, not a masked 500 with a traceback in the log
    assert_refused(response)
    assert_small_logs(logs)


@pytest.mark.parametrize("where", ["input", "credential"])
async def test_an_object_with_a_flood_of_members_is_a_bad_request(
    client: httpx.AsyncClient, logs: pytest.LogCaptureFixture, where: str
) -> None:
    """graphql-core describes a wrong input object in full for each of up to 50 errors: 80,000
    unknown members cost it seconds. Such an object never reaches it."""
    # given
    flood = {f"k{i}": 1 for i in range(MAX_OBJECT_KEYS + 1)}
    channel: dict[str, Any] = {"storeId": "store-x", "credentials": []}
    if where == "input":
        channel.update(flood)
    else:
        channel["credentials"] = [flood]
    body = json.dumps(
        {
            "query": "mutation($i: ChannelCreateInput!) { channelCreate(input: $i) "
            "{ userErrors { code } } }",
            "variables": {"i": channel},
        }
    )

    # when
    response = await post_raw(client, body)

    # then
    assert str(MAX_OBJECT_KEYS) in assert_refused(response)["errors"][0]["message"]
    assert_small_logs(logs)
