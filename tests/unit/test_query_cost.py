"""The query-cost rule on parsed documents against the real schema: no database, no app.

A query's cost is the number of objects its connections could return: each connection's page
size times the page sizes of the connections above it, summed over every connection in the
document. The rule refuses a document whose cost is over the limit.
"""

from __future__ import annotations

import pytest
import strawberry
from graphql import (
    DocumentNode,
    GraphQLSchema,
    get_named_type,
    parse,
    specified_rules,
    validate,
)

from gql_api.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from gql_api.query_cost import query_cost_rule
from gql_api.schema import build_schema
from gql_api.settings import Settings

# Every field of the schema that returns a page of objects (schema.graphql).
CONNECTIONS = {
    "stores",
    "subStores",
    "members",
    "auditEvents",
    "channels",
    "apiSecrets",
    "deliveries",
    "webhookEvents",
    "attempts",
}
LIMIT = 20_000  # Settings.max_query_objects by default


@pytest.fixture(scope="module")
def schema() -> strawberry.Schema:
    return build_schema(Settings(introspection_enabled=True))


@pytest.fixture(scope="module")
def graphql_schema(schema: strawberry.Schema) -> GraphQLSchema:
    return schema._schema


def _connections_of(graphql_schema: GraphQLSchema) -> set[str]:
    return {
        name
        for graphql_type in graphql_schema.type_map.values()
        if not graphql_type.name.startswith("__")
        for name, field in (getattr(graphql_type, "fields", None) or {}).items()
        if get_named_type(field.type).name.endswith("Connection")
    }


def test_connections_are_the_schemas(graphql_schema: GraphQLSchema) -> None:
    assert _connections_of(graphql_schema) == CONNECTIONS


def _valid(graphql_schema: GraphQLSchema, query: str) -> DocumentNode:
    """The parsed document, checked valid against the schema: only the cost rule may refuse."""
    document = parse(query)
    assert validate(graphql_schema, document, specified_rules) == []
    return document


def _refused_at(graphql_schema: GraphQLSchema, document: DocumentNode, limit: int) -> bool:
    return bool(validate(graphql_schema, document, [query_cost_rule(CONNECTIONS, limit)]))


def _refused(graphql_schema: GraphQLSchema, query: str, limit: int = LIMIT) -> bool:
    return _refused_at(graphql_schema, _valid(graphql_schema, query), limit)


def cost(graphql_schema: GraphQLSchema, query: str) -> int:
    """The smallest limit that lets `query` through: its cost, whatever the error says."""
    document = _valid(graphql_schema, query)
    low, high = 0, 10**8
    assert not _refused_at(graphql_schema, document, high)
    while low < high:
        middle = (low + high) // 2
        if _refused_at(graphql_schema, document, middle):
            low = middle + 1
        else:
            high = middle
    return low


STORE = 'store(storeId: "store-00000000-0000-0000-0000-000000000000")'


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ viewer { role } }", 0),
        (f"{{ {STORE} {{ name webhookSetting(moduleVersion: V2, mode: TEST) {{ url }} }} }}", 0),
        (f"{{ {STORE} {{ channels(first: 7) {{ nodes {{ id }} }} }} }}", 7),
        (f"{{ {STORE} {{ channels(last: 9) {{ nodes {{ id }} }} }} }}", 9),
        (f"{{ {STORE} {{ channels(first: 0) {{ nodes {{ id }} }} }} }}", 0),
        (f"{{ {STORE} {{ channels(first: -5) {{ nodes {{ id }} }} }} }}", 0),
        # no page size: the default page
        (f"{{ {STORE} {{ channels {{ nodes {{ id }} }} }} }}", DEFAULT_PAGE_SIZE),
        ("{ merchant { members { nodes { role } } } }", DEFAULT_PAGE_SIZE),
    ],
)
def test_cost_of_one_connection(graphql_schema: GraphQLSchema, query: str, expected: int) -> None:
    assert cost(graphql_schema, query) == expected


def test_a_page_size_in_a_variable_counts_as_the_largest_page(
    graphql_schema: GraphQLSchema,
) -> None:
    query = f"query($n: Int) {{ {STORE} {{ channels(first: $n) {{ nodes {{ id }} }} }} }}"
    assert cost(graphql_schema, query) == MAX_PAGE_SIZE


def test_nested_connections_multiply(graphql_schema: GraphQLSchema) -> None:
    query = """{ merchant { stores(first: 10) { nodes {
        channels(first: 20) { nodes { store { apiSecrets(first: 3) { nodes { id } } } } } } } } }"""
    assert cost(graphql_schema, query) == 10 + 10 * 20 + 10 * 20 * 3


def test_sibling_connections_add(graphql_schema: GraphQLSchema) -> None:
    query = f"""{{ {STORE} {{
        subStores(first: 10) {{ nodes {{ storeId channels(first: 20) {{ nodes {{ id }} }} }} }}
        channels(first: 100) {{ nodes {{ id }} }} }} }}"""
    assert cost(graphql_schema, query) == 10 + 10 * 20 + 100


def test_deliveries_under_a_setting_count(graphql_schema: GraphQLSchema) -> None:
    query = f"""{{ {STORE} {{ webhookSetting(moduleVersion: V2, mode: TEST) {{
        deliveries(first: 30) {{ nodes {{ id }} }} }} }} }}"""
    assert cost(graphql_schema, query) == 30


def test_fragments_count_where_they_are_spread(graphql_schema: GraphQLSchema) -> None:
    query = f"""{{ merchant {{ stores(first: 4) {{ nodes {{ ...Pages }} }} }}
        {STORE} {{ ...Pages ... on Store {{ apiSecrets(first: 2) {{ nodes {{ id }} }} }} }} }}
    fragment Pages on Store {{ channels(first: 5) {{ nodes {{ id }} }} }}"""
    assert cost(graphql_schema, query) == (4 + 4 * 5) + 5 + 2


def test_each_operation_is_judged_alone(graphql_schema: GraphQLSchema) -> None:
    query = f"""query Small {{ {STORE} {{ channels(first: 10) {{ nodes {{ id }} }} }} }}
    query Big {{ {STORE} {{ channels(first: 100) {{ nodes {{ store {{
        channels(first: 100) {{ nodes {{ store {{ channels(first: 2) {{ nodes {{ id }} }} }}
        }} }} }} }} }} }} }}"""
    # Big costs 100 + 10,000 + 20,000; Small alone would pass
    assert _refused(graphql_schema, query)
    assert not _refused(graphql_schema, query.split("query Big")[0])


AT_THE_LIMIT = """{ merchant {
    a: stores(first: 100) { nodes { channels(first: 100) { nodes { id } } } }
    b: stores(first: 99) { nodes { channels(first: 99) { nodes { id } } } } } }"""
JUST_OVER = AT_THE_LIMIT.replace("channels(first: 99)", "channels(first: 100)")


def test_the_limit_is_inclusive(graphql_schema: GraphQLSchema) -> None:
    assert cost(graphql_schema, AT_THE_LIMIT) == LIMIT
    assert not _refused(graphql_schema, AT_THE_LIMIT)
    assert cost(graphql_schema, JUST_OVER) == LIMIT + 99
    assert _refused(graphql_schema, JUST_OVER)


def test_the_default_limit_is_the_documented_one() -> None:
    assert Settings().max_query_objects == LIMIT


def test_a_refusal_carries_the_query_too_complex_code(graphql_schema: GraphQLSchema) -> None:
    document = _valid(graphql_schema, JUST_OVER)
    errors = validate(graphql_schema, document, [query_cost_rule(CONNECTIONS, LIMIT)])
    assert [(error.extensions or {}).get("code") for error in errors] == ["QUERY_TOO_COMPLEX"]


# The rule as the schema wires it in (build_schema): refused documents never run.

FAN_OUT = f"""{{ {STORE} {{ channels(first: 100) {{ nodes {{ store {{ channels(first: 100) {{
    nodes {{ store {{ channels(first: 100) {{ nodes {{ id }} }} }} }} }} }} }} }} }} }}"""


@pytest.mark.parametrize("query", [FAN_OUT, JUST_OVER])
async def test_the_schema_refuses_an_expensive_query_before_it_runs(
    schema: strawberry.Schema, query: str
) -> None:
    result = await schema.execute(query)
    assert result.data is None
    assert result.errors is not None
    assert len(result.errors) == 1
    assert result.errors[0].path is None  # a validation error: nothing was resolved
    assert (result.errors[0].extensions or {}).get("code") == "QUERY_TOO_COMPLEX"


async def test_the_schema_lets_a_query_at_the_limit_run(schema: strawberry.Schema) -> None:
    # without a request context the resolvers fail, which shows that execution started
    result = await schema.execute(AT_THE_LIMIT)
    assert result.errors is not None
    assert all(error.path is not None for error in result.errors)
