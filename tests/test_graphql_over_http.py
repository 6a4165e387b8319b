"""GraphQL over HTTP as off-the-shelf clients speak it (gql_api.http_conventions): queries over
GET, media types and their status codes, WWW-Authenticate, caching of GET answers, and a
document of several operations."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support import Api

GRAPHQL_RESPONSE = "application/graphql-response+json"
CATALOG = "query Catalog { pgProviders { provider displayName } }"
VIEWER = "query Me { viewer { role user { email } } }"
SIGN_UP = """
mutation SignUp {
  merchantSignUp(input: {
    merchantName: "Over GET", email: "get-http@example.com", password: "correct horse battery",
    name: "Getter"
  }) { merchant { id } userErrors { code } }
}
"""
LOG_IN = """
mutation LogIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) { session { token } userErrors { code } }
}
"""


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body["errors"]]


# --- GET --------------------------------------------------------------------------------------


async def test_an_anonymous_query_over_get_runs_and_may_be_cached(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/graphql", params={"query": CATALOG})

    assert response.status_code == 200, response.text
    assert len(response.json()["data"]["pgProviders"]) == 22
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "public, max-age=300"
    # The catalog's labels are in the language asked for (gql_api.i18n): caches key on it too.
    assert set(response.headers["vary"].replace(" ", "").split(",")) == {
        "Accept",
        "Authorization",
        "Accept-Language",
    }


async def test_a_query_over_get_with_variables_and_a_session_is_private(
    api: Api, client: httpx.AsyncClient
) -> None:
    owner = await api.sign_up()
    query = (
        "query Me($first: Int) "
        "{ viewer { role } merchant { stores(first: $first) { edges { node { storeId } } } } }"
    )

    response = await client.get(
        "/graphql",
        params={"query": query, "variables": json.dumps({"first": 1}), "operationName": "Me"},
        headers={"Authorization": f"Bearer {owner.token}"},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"]["viewer"]["role"] == "OWNER"
    assert len(body["data"]["merchant"]["stores"]["edges"]) == 1
    assert response.headers["cache-control"] == "private, no-store"


async def test_a_mutation_over_get_is_405_and_changes_nothing(
    api: Api, client: httpx.AsyncClient
) -> None:
    response = await client.get("/graphql", params={"query": SIGN_UP})

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert codes(response.json()) == ["BAD_REQUEST"]
    assert "data" not in response.json()
    logged_in = await api.gql(
        LOG_IN, {"input": {"email": "get-http@example.com", "password": "correct horse battery"}}
    )
    assert logged_in.data["sessionCreate"]["session"] is None


async def test_an_anonymous_answer_with_errors_is_not_cached(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": "{ merchant { name } }"})

    assert response.status_code == 200
    assert codes(response.json()) == ["UNAUTHENTICATED"]
    assert response.headers["cache-control"] == "no-store"


# --- media types and status codes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "media", "request_error_status"),
    [
        (None, "application/json", 200),
        ("*/*", "application/json", 200),
        ("application/json", "application/json", 200),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE, 400),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE, 400),
        (f"application/json, {GRAPHQL_RESPONSE};q=0.5", "application/json", 200),
    ],
    ids=["none", "any", "json", "graphql-response", "graphql-response-first", "json-first"],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_media_type_and_status_follow_accept(
    client: httpx.AsyncClient,
    accept: str | None,
    media: str,
    request_error_status: int,
    method: str,
) -> None:
    headers = {} if accept is None else {"accept": accept}

    async def send(query: str) -> httpx.Response:
        if method == "GET":
            return await client.get("/graphql", params={"query": query}, headers=headers)
        return await client.post("/graphql", json={"query": query}, headers=headers)

    ran = await send(CATALOG)
    invalid = await send("{ pgProviders { nope } }")
    unparsable = await send("{ pgProviders { ")
    field_error = await send("{ merchant { name } }")

    for response in (ran, invalid, unparsable, field_error):
        assert response.headers["content-type"] == f"{media}; charset=utf-8"
    assert ran.status_code == 200 and ran.json()["data"]["pgProviders"]
    # A request error: the document never ran, so there is no data, not even null.
    assert invalid.status_code == request_error_status
    assert codes(invalid.json()) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "data" not in invalid.json()
    assert unparsable.status_code == request_error_status
    assert codes(unparsable.json()) == ["GRAPHQL_PARSE_FAILED"]
    assert "data" not in unparsable.json()
    # A field error is a GraphQL response with data: 200 whatever the media type.
    assert field_error.status_code == 200
    assert field_error.json()["data"] == {"merchant": None}


async def test_a_client_accepting_neither_media_type_gets_406(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": CATALOG}, headers={"accept": "application/xml"}
    )

    assert response.status_code == 406
    assert response.headers["content-type"].startswith("application/json")
    assert GRAPHQL_RESPONSE in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("accept", ["application/json", GRAPHQL_RESPONSE])
async def test_bad_credentials_are_401_naming_both_schemes(
    client: httpx.AsyncClient, method: str, accept: str
) -> None:
    headers = {"Authorization": "Bearer not-a-session", "accept": accept}
    if method == "GET":
        response = await client.get("/graphql", params={"query": VIEWER}, headers=headers)
    else:
        response = await client.post("/graphql", json={"query": VIEWER}, headers=headers)

    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and "PortOne " in challenge
    assert codes(response.json()) == ["UNAUTHENTICATED"]
    assert "data" not in response.json()
    assert response.headers["content-type"] == f"{accept}; charset=utf-8"


# --- several operations -----------------------------------------------------------------------


async def test_several_operations_without_an_operation_name_run_none(
    api: Api, client: httpx.AsyncClient
) -> None:
    owner = await api.sign_up()
    document = f"{VIEWER}\nmutation LogOut {{ sessionRevoke {{ userErrors {{ code }} }} }}"
    headers = {"Authorization": f"Bearer {owner.token}"}

    unnamed = await client.post("/graphql", json={"query": document}, headers=headers)
    named = await client.post(
        "/graphql", json={"query": document, "operationName": "Me"}, headers=headers
    )

    assert unnamed.status_code == 200
    assert codes(unnamed.json()) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "operationName" in unnamed.json()["errors"][0]["message"]
    assert "data" not in unnamed.json()
    # Nothing ran: the session still works, and the named operation runs alone.
    assert named.status_code == 200
    assert named.json()["data"]["viewer"]["role"] == "OWNER"


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (["application/json;q=0, */*"], GRAPHQL_RESPONSE),  # JSON refused, the rest welcome
        (["application/json;q=abc"], "application/json"),  # a malformed weight is ignored
        (["text/html", GRAPHQL_RESPONSE], GRAPHQL_RESPONSE),  # several Accept headers
        (["application/json, " + GRAPHQL_RESPONSE], GRAPHQL_RESPONSE),  # a tie, named
    ],
    ids=["json-refused", "malformed-q", "two-headers", "tie"],
)
async def test_accept_edge_cases(client: httpx.AsyncClient, accept: list[str], media: str) -> None:
    headers = [("accept", value) for value in accept]

    response = await client.post("/graphql", json={"query": CATALOG}, headers=headers)

    assert response.status_code == 200
    assert response.headers["content-type"] == f"{media}; charset=utf-8"


@pytest.mark.parametrize("method", ["HEAD", "PUT", "OPTIONS", "DELETE"])
async def test_other_methods_are_405_allowing_get_and_post(
    client: httpx.AsyncClient, method: str
) -> None:
    response = await client.request(method, "/graphql", params={"query": CATALOG})

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    if method != "HEAD":
        assert codes(response.json()) == ["BAD_REQUEST"]


@pytest.mark.parametrize(("accept", "status"), [("application/json", 200), (GRAPHQL_RESPONSE, 400)])
async def test_an_unknown_operation_name_is_a_request_error(
    client: httpx.AsyncClient, accept: str, status: int
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": CATALOG, "operationName": "Nope"},
        headers={"accept": accept},
    )

    assert response.status_code == status
    assert codes(response.json()) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "Nope" in response.json()["errors"][0]["message"]
    assert "data" not in response.json()


async def test_an_operation_name_that_is_not_a_string_is_refused(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/graphql", json={"query": CATALOG, "operationName": 5})

    assert response.status_code == 400
    assert "operationName" in response.json()["errors"][0]["message"]


async def test_get_query_strings_read_empty_parameters_as_absent(
    client: httpx.AsyncClient,
) -> None:
    empty = await client.get(
        "/graphql", params={"query": CATALOG, "variables": "", "extensions": ""}
    )
    garbled = await client.get("/graphql", params={"query": CATALOG, "variables": "{nope"})

    assert empty.status_code == 200
    assert empty.json()["data"]["pgProviders"]
    assert garbled.status_code == 400
    assert "`variables` in the query string is not JSON" in garbled.json()["errors"][0]["message"]


async def test_a_body_too_large_is_answered_in_the_accepted_media_type(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/graphql",
        content=b"x" * (2 * 1024 * 1024),
        headers={"content-type": "application/json", "accept": GRAPHQL_RESPONSE},
    )

    assert response.status_code == 413
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert "data" not in response.json()
