"""Every error a client can get from its document has the code of its kind, through HTTP.

The code says where the error was found (the parser, the limits, validation, the variables),
whatever its message says: messages below quote the wording of other kinds on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gql_api.settings import Settings

TYPENAME_QUERY = "{ __typename }"
PROVIDERS = "query P($purpose: ChannelPurpose) { pgProviders(purpose: $purpose) { provider } }"


def _many(count: int, text: str) -> str:
    return " ".join([text] * count)


def _deep(levels: int) -> str:
    inner = "storeId"
    for _ in range(levels):
        inner = f"subStores(first: 1) {{ nodes {{ {inner} }} }}"
    return f"{{ merchant {{ representativeStore {{ {inner} }} }} }}"


FAN_OUT = """{ merchant { representativeStore {
  channels(first: 100) { nodes { store { channels(first: 100) { nodes {
    store { channels(first: 100) { nodes { id } } } } } } } } } } }"""


Body = Callable[[Settings], dict[str, Any]]


def _query(text: str) -> Body:
    return lambda _: {"query": text}


# name: (the request body, given the limits; the code)
CASES: dict[str, tuple[Body, str]] = {
    "syntax": (_query("{ viewer { user "), "GRAPHQL_PARSE_FAILED"),
    "unterminated string": (_query('{ __typename "open'), "GRAPHQL_PARSE_FAILED"),
    # A syntax error before the token limit, in a document longer than the limit.
    "syntax, long document": (
        lambda s: {"query": "{ { " + _many(s.max_tokens, "__typename") + " }"},
        "GRAPHQL_PARSE_FAILED",
    ),
    "unknown field": (_query("{ viewer { nope } }"), "GRAPHQL_VALIDATION_FAILED"),
    # Its message quotes the aliases limit's wording.
    "wrong literal": (
        _query('{ pgProviders(purpose: "aliases found") { provider } }'),
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "NUL in a string literal": (
        _query('{ store(storeId: "\\u0000") { storeId } }'),
        "GRAPHQL_VALIDATION_FAILED",
    ),
    # Its message quotes the cost rule's and the token limit's wording.
    "variable of the wrong type": (
        lambda _: {
            "query": PROVIDERS,
            "variables": {"purpose": "objects; at most Document contains more than"},
        },
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "depth": (lambda s: {"query": _deep(s.max_query_depth)}, "QUERY_TOO_COMPLEX"),
    "aliases": (
        lambda s: {"query": "{ " + _many(s.max_aliases + 1, "a: __typename") + " }"},
        "QUERY_TOO_COMPLEX",
    ),
    "tokens": (
        lambda s: {"query": "{ " + _many(s.max_tokens, "__typename") + " }"},
        "QUERY_TOO_COMPLEX",
    ),
    # Comments count as tokens (the lexer stops while skipping them).
    "tokens, as comments": (
        lambda s: {"query": _many(s.max_tokens + 1, "#\n") + TYPENAME_QUERY},
        "QUERY_TOO_COMPLEX",
    ),
    # Past the limit before the syntax error: the limit is what the parser reports.
    "tokens, then a syntax error": (
        lambda s: {"query": "{ " + _many(s.max_tokens, "__typename") + " { {"},
        "QUERY_TOO_COMPLEX",
    ),
    "cost": (_query(FAN_OUT), "QUERY_TOO_COMPLEX"),
}


@pytest.mark.parametrize("case", CASES)
async def test_each_kind_of_document_error_has_its_code(
    client: httpx.AsyncClient, settings: Settings, case: str
) -> None:
    # given
    body, code = CASES[case]

    # when
    response = await client.post(
        "/graphql",
        json=body(settings),
        headers={"accept": "application/graphql-response+json"},  # request errors: 400
    )

    # then
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload.get("data") is None
    assert [error["extensions"]["code"] for error in payload["errors"]] == [code]


async def test_a_document_within_every_limit_runs(client: httpx.AsyncClient) -> None:
    # when
    response = await client.post("/graphql", json={"query": TYPENAME_QUERY})

    # then
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}
