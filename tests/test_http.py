"""The HTTP surface: health checks, GraphQL-over-HTTP errors, limits, GraphiQL."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from db.engine import create_engine
from gql_api.app import create_app
from tests.conftest import make_settings
from tests.support import PASSWORD, Api

TYPENAME = "{ __typename }"
TWO_MIB = 2 * 1024 * 1024

SIGN_UP = """
mutation {
  merchantSignUp(input: {
    merchantName: "Via GET", email: "get@example.com", password: "correct horse battery",
    name: "Getter"
  }) { merchant { id } userErrors { code } }
}
"""

SESSION_CREATE = """
mutation LogIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) { session { token } userErrors { code } }
}
"""


def nested_sub_stores(levels: int) -> str:
    """A query `levels` x 3 fields deep below merchant.representativeStore (small pages, so
    only the depth limit can refuse it)."""
    inner = "storeId"
    for _ in range(levels):
        inner = f"subStores(first: 5) {{ edges {{ node {{ {inner} }} }} }}"
    return f"{{ merchant {{ representativeStore {{ {inner} }} }} }}"


def first_error_code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    assert errors, body
    code: str | None = errors[0].get("extensions", {}).get("code")
    return code


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/graphql", json=body)


# --- health ---------------------------------------------------------------------------------


async def test_healthz_is_ok(client: httpx.AsyncClient) -> None:
    # when
    response = await client.get("/healthz")

    # then
    assert response.status_code == 200


async def test_readyz_checks_the_database(client: httpx.AsyncClient) -> None:
    # when
    response = await client.get("/readyz")

    # then
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    # given
    application = create_app(make_settings(f"sqlite:///{tmp_path}/missing/dir/x.db"))
    transport = httpx.ASGITransport(app=application)

    # when
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        ready = await http.get("/readyz")
        alive = await http.get("/healthz")
    await application.state.app_state.engine.dispose()

    # then
    assert ready.status_code == 503
    assert alive.status_code == 200


# --- request errors -------------------------------------------------------------------------


async def test_a_malformed_json_body_is_a_400_with_a_graphql_shaped_error(
    client: httpx.AsyncClient,
) -> None:
    # when
    response = await client.post(
        "/graphql",
        content=b'{"query": "{ __typename ',
        headers={"content-type": "application/json"},
    )

    # then
    assert response.status_code == 400
    body = response.json()
    assert len(body["errors"]) == 1
    assert first_error_code(body)


async def test_a_body_without_a_query_is_a_400(client: httpx.AsyncClient) -> None:
    # when
    response = await post(client, {"variables": {}})

    # then
    assert response.status_code == 400
    assert first_error_code(response.json())


async def test_a_syntax_error_is_graphql_parse_failed(client: httpx.AsyncClient) -> None:
    # when
    response = await post(client, {"query": "{ viewer { user "})

    # then
    # over application/json every GraphQL response is 200; a request error has no data
    assert response.status_code == 200
    assert "data" not in response.json()
    body = response.json()
    assert len(body["errors"]) == 1
    assert first_error_code(body) == "GRAPHQL_PARSE_FAILED"


async def test_an_unknown_field_is_graphql_validation_failed(client: httpx.AsyncClient) -> None:
    # when
    response = await post(client, {"query": "{ viewer { nope } }"})

    # then
    # over application/json every GraphQL response is 200; a request error has no data
    assert response.status_code == 200
    assert "data" not in response.json()
    body = response.json()
    assert len(body["errors"]) == 1
    assert first_error_code(body) == "GRAPHQL_VALIDATION_FAILED"


async def test_a_missing_required_variable_is_graphql_validation_failed(
    client: httpx.AsyncClient,
) -> None:
    # when
    response = await post(client, {"query": SESSION_CREATE, "variables": {}})

    # then
    # over application/json every GraphQL response is 200; a request error has no data
    assert response.status_code == 200
    assert "data" not in response.json()
    body = response.json()
    assert len(body["errors"]) == 1
    assert first_error_code(body) == "GRAPHQL_VALIDATION_FAILED"


async def test_a_too_deep_query_is_too_complex(client: httpx.AsyncClient) -> None:
    # when
    response = await post(client, {"query": nested_sub_stores(6)})

    # then
    # over application/json every GraphQL response is 200; a request error has no data
    assert response.status_code == 200
    assert "data" not in response.json()
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"]


async def test_a_deep_but_allowed_query_runs(api: Api) -> None:
    # given
    owner = await api.sign_up()

    # when
    result = await api.gql(nested_sub_stores(3), token=owner.token)

    # then
    assert result.status == 200
    assert result.data["merchant"]["representativeStore"]["subStores"]["edges"] == []


async def test_too_many_aliases_is_too_complex(client: httpx.AsyncClient) -> None:
    # given
    query = "{ " + " ".join(f"a{i}: __typename" for i in range(100)) + " }"

    # when
    response = await post(client, {"query": query})

    # then
    # over application/json every GraphQL response is 200; a request error has no data
    assert response.status_code == 200
    assert "data" not in response.json()
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["QUERY_TOO_COMPLEX"]


async def test_too_many_tokens_is_too_complex(client: httpx.AsyncClient) -> None:
    # given: valid GraphQL, but thousands of tokens
    query = "{ " + " ".join(["__typename"] * 5000) + " }"

    # when
    response = await post(client, {"query": query})

    # then
    # over application/json every GraphQL response is 200; a request error has no data
    assert response.status_code == 200
    assert "data" not in response.json()
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["QUERY_TOO_COMPLEX"]


async def _rename_table(database_url: str, old: str, new: str) -> None:
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
    await engine.dispose()


async def test_an_unexpected_failure_is_masked_as_internal(api: Api, database_url: str) -> None:
    # given: the database lost a table the log-in needs
    owner = await api.sign_up()
    await _rename_table(database_url, "login_failures", "login_failures_away")

    # when
    try:
        result = await api.gql(
            SESSION_CREATE, {"input": {"email": owner.email, "password": "wrong password 1"}}
        )
    finally:
        await _rename_table(database_url, "login_failures_away", "login_failures")

    # then
    assert result.status == 200
    assert len(result.body["errors"]) == 1
    error = result.body["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL"
    assert error["extensions"]["requestId"] == result.headers["x-request-id"]
    dump = json.dumps(result.body).lower()
    for leak in ("login_failures", "sqlite", "asyncpg", "traceback", "select", "wrong password"):
        assert leak not in dump


# --- request id -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/healthz", None),
        ("GET", "/readyz", None),
        ("POST", "/graphql", {"query": TYPENAME}),
        ("POST", "/graphql", {"query": "{ nope }"}),
        ("POST", "/graphql", {"query": "{"}),
        ("GET", "/no-such-page", None),
    ],
    ids=["healthz", "readyz", "graphql", "validation-error", "parse-error", "not-found"],
)
async def test_every_response_has_a_request_id(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    # when
    first = await client.request(method, path, json=body)
    second = await client.request(method, path, json=body)

    # then
    assert first.headers.get("x-request-id")
    assert second.headers.get("x-request-id")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_a_refused_credential_has_a_request_id(api: Api) -> None:
    # when
    result = await api.gql(TYPENAME, authorization="Bearer forged")

    # then
    assert result.status == 401
    assert result.headers.get("x-request-id")


async def test_a_too_large_request_has_a_request_id(client: httpx.AsyncClient) -> None:
    # when
    response = await post(client, {"query": TYPENAME, "variables": {"pad": "x" * TWO_MIB}})

    # then
    assert response.status_code == 413
    assert response.headers.get("x-request-id")


# --- size limit -----------------------------------------------------------------------------


async def test_a_request_over_1_mib_is_413(client: httpx.AsyncClient) -> None:
    # when
    response = await post(client, {"query": TYPENAME, "variables": {"pad": "x" * TWO_MIB}})

    # then
    assert response.status_code == 413
    assert first_error_code(response.json())


async def test_a_streamed_request_over_1_mib_is_413(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    # given: no Content-Length, the body arrives in chunks
    caplog.set_level(logging.INFO, logger="gql_api.access")
    payload = json.dumps({"query": TYPENAME, "variables": {"pad": "x" * TWO_MIB}}).encode()

    async def chunks() -> Any:
        for start in range(0, len(payload), 64 * 1024):
            yield payload[start : start + 64 * 1024]

    # when
    response = await client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )

    # then
    assert response.status_code == 413
    assert "content-length" not in response.request.headers
    assert first_error_code(response.json())
    assert response.headers.get("x-request-id")
    # logged and counted as the client's error, not a server error
    access = [r for r in caplog.records if r.name == "gql_api.access"]
    assert [(r.status, r.outcome) for r in access] == [(413, "client_error")]  # type: ignore[attr-defined]


async def test_a_request_just_under_1_mb_is_served(client: httpx.AsyncClient) -> None:
    # when
    response = await post(client, {"query": TYPENAME, "variables": {"pad": "x" * 900_000}})

    # then
    assert response.status_code == 200
    assert response.json()["data"] == {"__typename": "Query"}


# --- GraphiQL and GET -----------------------------------------------------------------------


async def test_graphiql_is_served_to_a_browser(client: httpx.AsyncClient) -> None:
    # when
    response = await client.get("/graphql", headers={"accept": "text/html"})

    # then
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_a_mutation_over_get_is_refused(api: Api, client: httpx.AsyncClient) -> None:
    # when
    response = await client.get(
        "/graphql", params={"query": SIGN_UP}, headers={"accept": "application/json"}
    )

    # then
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    logged_in = await api.gql(
        SESSION_CREATE, {"input": {"email": "get@example.com", "password": PASSWORD}}
    )
    assert logged_in.data["sessionCreate"]["session"] is None


async def test_a_post_answers_in_json(client: httpx.AsyncClient) -> None:
    # when
    response = await post(client, {"query": TYPENAME})

    # then
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_a_client_that_goes_away_mid_request_is_not_an_error(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # given: a client that announces a body, sends part of it and disconnects
    body = json.dumps({"query": TYPENAME}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    messages = [
        {"type": "http.request", "body": body[:5], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    # when
    await app(scope, receive, send)

    # then: nobody to answer, nothing logged as an error
    assert [m for m in sent if m["type"] == "http.response.start"] == []
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []
