"""The query cost on parsed documents against the real schema: no database, no app.

A query's cost is the number of objects it could return: each connection's page size (as the
field will use it: literal, variable or default) and each plain list's bound, times the sizes
above it, summed over the operation. The schema refuses an operation whose cost is over the
limit, before it runs, with the request's variables.
"""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLSchema,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)

from gql_api.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from gql_api.query_cost import (
    fields_of,
    is_connection,
    list_bound,
    list_bounds,
    plain_lists,
    query_cost,
)
from gql_api.schema import build_schema
from gql_api.settings import Settings

# Every field of the schema that returns a page of objects (schema.graphql).
CONNECTIONS = {
    "stores",
    "subStores",
    "members",
    "invitations",
    "auditEvents",
    "channels",
    "apiSecrets",
    "deliveries",
    "webhookEvents",
    "attempts",
    "channelGroups",
    "sessions",
}
LIMIT = 20_000  # Settings.max_query_objects by default


@pytest.fixture(scope="module")
def schema() -> strawberry.Schema:
    return build_schema(Settings(introspection_enabled=True))


@pytest.fixture(scope="module")
def graphql_schema(schema: strawberry.Schema) -> GraphQLSchema:
    return schema._schema


def test_connections_are_the_schemas(graphql_schema: GraphQLSchema) -> None:
    found = {name for _, name, field in fields_of(graphql_schema) if is_connection(field)}
    assert found == CONNECTIONS


def test_every_plain_list_of_objects_has_a_bound(graphql_schema: GraphQLSchema) -> None:
    # A list field added without a bound would count as one object whatever it holds.
    unbounded = {
        name
        for type_name, field_name, field in fields_of(graphql_schema)
        if (name := f"{type_name}.{field_name}") in plain_lists(graphql_schema)
        and list_bound(type_name, field_name, field) is None
    }
    assert unbounded == set()


def test_every_bound_names_a_list_of_the_schema(graphql_schema: GraphQLSchema) -> None:
    assert set(list_bounds()) <= plain_lists(graphql_schema)


def _valid(graphql_schema: GraphQLSchema, query: str) -> DocumentNode:
    """The parsed document, checked valid against the schema: only the cost may refuse."""
    document = parse(query)
    assert validate(graphql_schema, document, specified_rules) == []
    return document


def cost(
    graphql_schema: GraphQLSchema,
    query: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
) -> int | None:
    document = _valid(graphql_schema, query)
    operation = get_operation_ast(document, operation_name)
    assert operation is not None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return query_cost(graphql_schema, operation, fragments, variables or {})


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
        # refused by the field itself (BAD_REQUEST): nothing under it runs
        (f"{{ {STORE} {{ channels(first: 101) {{ nodes {{ id }} }} }} }}", 0),
        (f"{{ {STORE} {{ channels(first: 5, last: 5) {{ nodes {{ id }} }} }} }}", 0),
        # no `first`/`last` of its own: the page size comes from the connection above
        (
            f"{{ {STORE} {{ channels(first: 7) {{ edges {{ node {{ id }} }} nodes {{ id }} }}"
            " } }",
            7,
        ),
    ],
)
def test_cost_of_one_connection(graphql_schema: GraphQLSchema, query: str, expected: int) -> None:
    assert cost(graphql_schema, query) == expected


ONE_PAGE = f"query($n: Int) {{ {STORE} {{ channels(first: $n) {{ nodes {{ id }} }} }} }}"
DECLARED_DEFAULT = ONE_PAGE.replace("$n: Int", "$n: Int = 10")


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [
        (ONE_PAGE, {"n": 7}, 7),
        (ONE_PAGE, {"n": 7.0}, 7),  # coerced as graphql-core coerces it for the field
        (ONE_PAGE, {"n": MAX_PAGE_SIZE}, MAX_PAGE_SIZE),
        # absent or null: the field's default page
        (ONE_PAGE, {}, DEFAULT_PAGE_SIZE),
        (ONE_PAGE, {"n": None}, DEFAULT_PAGE_SIZE),
        # the operation's own default, unless a value is given
        (DECLARED_DEFAULT, {}, 10),
        (DECLARED_DEFAULT, {"n": 3}, 3),
        (DECLARED_DEFAULT, {"n": None}, DEFAULT_PAGE_SIZE),
        (ONE_PAGE.replace("$n: Int", "$n: Int!"), {"n": 12}, 12),
        (ONE_PAGE.replace("first: $n", "last: $n"), {"n": 4}, 4),
        # refused by the field itself (BAD_REQUEST), not counted
        (ONE_PAGE, {"n": MAX_PAGE_SIZE + 1}, 0),
        (ONE_PAGE, {"n": -1}, 0),
    ],
)
def test_a_page_size_in_a_variable_counts_with_its_value(
    graphql_schema: GraphQLSchema, query: str, variables: dict[str, Any], expected: int
) -> None:
    assert cost(graphql_schema, query, variables) == expected


@pytest.mark.parametrize("value", ["10", True, 2**40, [10]])
def test_a_page_size_that_does_not_coerce_is_left_to_the_variables_error(
    graphql_schema: GraphQLSchema, value: object
) -> None:
    # graphql-core refuses the variables before anything runs: there is nothing to count
    assert cost(graphql_schema, ONE_PAGE, {"n": value}) is None


def test_variables_in_fragments_count_with_their_value(graphql_schema: GraphQLSchema) -> None:
    query = f"""query($a: Int, $b: Int = 3) {{
        merchant {{ stores(first: $a) {{ nodes {{ ...P }} }} }}
        {STORE} {{ ... on Store {{ apiSecrets(first: $b) {{ nodes {{ id }} }} }} }} }}
    fragment P on Store {{ channels(first: $b) {{ nodes {{ id }} }} }}"""
    assert cost(graphql_schema, query, {"a": 4}) == (4 + 4 * 3) + 3


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


def test_webhook_settings_count_as_four(graphql_schema: GraphQLSchema) -> None:
    query = f"""{{ {STORE} {{ webhookSettings {{ url deliveries(first: 30) {{ nodes {{ id }} }}
        secrets {{ id }} }} }} }}"""
    # four settings (V1/V2 × LIVE/TEST), each with its page of deliveries; the secrets, plain
    # items, come with their setting
    assert cost(graphql_schema, query) == 4 + 4 * 30


def test_plain_lists_nest(graphql_schema: GraphQLSchema) -> None:
    # Lists count when something under them does; here the deliveries' page is at the bottom.
    query = "{ pgProviders { provider modules { code credentialFields { key } } } }"
    assert cost(graphql_schema, query) == 0  # plain items all the way down: the catalog
    providers, _modules, fields = (
        list_bounds()[name]
        for name in (
            "Query.pgProviders",
            "PgProviderInfo.modules",
            "PaymentModule.credentialFields",
        )
    )
    assert (providers, fields) == (22, 5)  # the shipped catalog
    nested = f"""{{ {STORE} {{ subStores(first: 2) {{ nodes {{ webhookSettings {{
        deliveries(first: 3) {{ nodes {{ id }} }} }} }} }} }} }}"""
    assert cost(graphql_schema, nested) == 2 * (1 + 4 * (1 + 3))


def test_a_list_under_a_page_multiplies(graphql_schema: GraphQLSchema) -> None:
    query = f"""{{ {STORE} {{ subStores(first: 10) {{ nodes {{
        webhookSettings {{ deliveries(first: 5) {{ nodes {{ requestHeaders {{ name }} }} }} }}
        }} }} }} }}"""
    # a delivery's headers are plain items: they come with it
    assert cost(graphql_schema, query) == 10 + 10 * 4 + 10 * 4 * 5


def test_plain_items_do_not_multiply_a_dashboard(graphql_schema: GraphQLSchema) -> None:
    query = """{ merchant { stores(first: 100) { nodes { channels(first: 100) {
        nodes { id credentials { key maskedValue } } } } } } }"""
    assert cost(graphql_schema, query) == 100 + 100 * 100


AT_THE_LIMIT = """{ merchant {
    a: stores(first: 100) { nodes { channels(first: 100) { nodes { id } } } }
    b: stores(first: 99) { nodes { channels(first: 99) { nodes { id } } } } } }"""
JUST_OVER = AT_THE_LIMIT.replace("channels(first: 99)", "channels(first: 100)")


def test_the_default_limit_is_the_documented_one() -> None:
    assert Settings().max_query_objects == LIMIT


def test_the_costs_either_side_of_the_limit(graphql_schema: GraphQLSchema) -> None:
    # the limit is inclusive: AT_THE_LIMIT runs (below), JUST_OVER is refused
    assert cost(graphql_schema, AT_THE_LIMIT) == LIMIT
    assert cost(graphql_schema, JUST_OVER) == LIMIT + 99


# The check as the schema wires it in (build_schema): refused documents never run.

FAN_OUT = f"""{{ {STORE} {{ channels(first: 100) {{ nodes {{ store {{ channels(first: 100) {{
    nodes {{ store {{ channels(first: 100) {{ nodes {{ id }} }} }} }} }} }} }} }} }} }}"""
VARIABLES = FAN_OUT.replace("{ store(", "query($n: Int) { store(", 1).replace(
    "first: 100", "first: $n"
)


async def _refused(
    schema: strawberry.Schema,
    query: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
    limit: int = LIMIT,
) -> bool:
    result = await schema.execute(query, variables, operation_name=operation_name)
    assert result.errors is not None  # without a request context the resolvers fail
    codes = [(error.extensions or {}).get("code") for error in result.errors]
    if "QUERY_TOO_COMPLEX" not in codes:
        # execution started: every error comes from a resolver
        assert all(error.path is not None for error in result.errors)
        return False
    assert result.data is None
    assert len(result.errors) == 1
    assert result.errors[0].path is None  # refused before anything was resolved
    assert result.errors[0].locations is not None  # at the operation
    assert f"at most {limit} are allowed" in result.errors[0].message
    return True


@pytest.mark.parametrize(
    ("query", "variables"),
    [(FAN_OUT, None), (JUST_OVER, None), (VARIABLES, {"n": 100}), (VARIABLES, {})],
)
async def test_the_schema_refuses_an_expensive_query_before_it_runs(
    schema: strawberry.Schema, query: str, variables: dict[str, Any] | None
) -> None:
    assert await _refused(schema, query, variables)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (AT_THE_LIMIT, None),
        (VARIABLES, {"n": 10}),
        (VARIABLES.replace("$n: Int", "$n: Int = 10"), {}),
        # refused by the connection itself, with its own error
        (VARIABLES, {"n": 1000}),
    ],
)
async def test_the_schema_lets_a_query_within_the_limit_run(
    schema: strawberry.Schema, query: str, variables: dict[str, Any] | None
) -> None:
    assert not await _refused(schema, query, variables)


async def test_only_the_operation_asked_for_is_judged(schema: strawberry.Schema) -> None:
    query = f"""query Small {{ {STORE} {{ channels(first: 10) {{ nodes {{ id }} }} }} }}
    query Big {{ {STORE} {{ channels(first: 100) {{ nodes {{ store {{
        channels(first: 100) {{ nodes {{ store {{ channels(first: 2) {{ nodes {{ id }} }} }}
        }} }} }} }} }} }} }}"""
    # Big costs 100 + 10,000 + 20,000; Small 10
    assert await _refused(schema, query, operation_name="Big")
    assert not await _refused(schema, query, operation_name="Small")


async def test_the_limit_is_a_setting() -> None:
    small = build_schema(Settings(introspection_enabled=True, max_query_objects=100))
    query = f"{{ {STORE} {{ channels(first: 100) {{ nodes {{ id }} }} }} }}"
    assert not await _refused(small, query, limit=100)
    more = query.replace("channels", "apiSecrets(first: 1) { nodes { id } } channels")
    assert await _refused(small, more, limit=100)
