"""Every element of the served schema is described, and every mutation says who may call it.

The roles sentence of a mutation is generated from the permission matrix; these tests check it
against the matrix as the issue states it (tests/members/test_permission_matrix.py, which also
checks each mutation's behaviour as every role against that matrix), not against the code that
generated it.
"""

from __future__ import annotations

import re

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    specified_scalar_types,
)

from gql_api.permissions import Operation
from gql_api.schema import build_schema
from gql_api.schema_descriptions import MUTATION_CALLERS, Caller
from gql_api.settings import Settings
from tests.members.test_permission_matrix import CASES, COLUMNS, EXPECTED_MATRIX


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema(Settings(introspection_enabled=True))._schema


def undescribed(schema: GraphQLSchema) -> list[str]:
    """Every type, field, argument, enum value and input field without a description, but the
    introspection types and the standard scalars, which the specification describes."""
    missing: list[str] = []
    for name, graphql_type in sorted(schema.type_map.items()):
        if name.startswith("__") or name in specified_scalar_types:
            continue
        if not graphql_type.description:
            missing.append(f"type {name}")
        if isinstance(graphql_type, (GraphQLObjectType, GraphQLInterfaceType)):
            for field_name, field in graphql_type.fields.items():
                if not field.description:
                    missing.append(f"field {name}.{field_name}")
                missing.extend(
                    f"argument {name}.{field_name}({arg_name})"
                    for arg_name, arg in field.args.items()
                    if not arg.description
                )
        elif isinstance(graphql_type, GraphQLInputObjectType):
            missing.extend(
                f"input field {name}.{field_name}"
                for field_name, field in graphql_type.fields.items()
                if not field.description
            )
        elif isinstance(graphql_type, GraphQLEnumType):
            missing.extend(
                f"enum value {name}.{value_name}"
                for value_name, value in graphql_type.values.items()
                if not value.description
            )
    return missing


def test_every_schema_element_has_a_description(schema: GraphQLSchema) -> None:
    # given the schema a client introspects, when every element is walked
    missing = undescribed(schema)
    # then none lacks a description
    if missing:
        pytest.fail(f"{len(missing)} schema elements without a description:\n" + "\n".join(missing))


def _mutations(schema: GraphQLSchema) -> dict[str, str]:
    assert schema.mutation_type is not None
    return {name: field.description or "" for name, field in schema.mutation_type.fields.items()}


def test_every_mutation_is_mapped_to_who_may_call_it(schema: GraphQLSchema) -> None:
    assert set(_mutations(schema)) == set(MUTATION_CALLERS)


def test_the_mapping_is_the_operation_each_mutation_enforces() -> None:
    # the permission matrix test runs every mutation as every role: the operation it finds
    # each to follow is the one the description must name
    for name, caller in MUTATION_CALLERS.items():
        case = CASES[f"Mutation.{name}"]
        if caller is Caller.ANYONE:
            assert case.operation is None, name
        elif caller is Caller.AUTHENTICATED:
            assert case.operation is not None, name
            assert "no" not in EXPECTED_MATRIX[case.operation].split(), name
        else:
            assert case.operation == caller.value, name


_ROLES = re.compile(r"Roles: (?P<roles>[^.]*)\. API secrets: (?P<secrets>yes|no)")


def _allowed(description: str) -> dict[str, str]:
    """Each column named by a description's roles sentence: all, own (store) or no."""
    found = _ROLES.search(description)
    assert found is not None, description
    named = {}
    for item in found["roles"].split(", "):
        role, _, scope = item.partition(" ")
        named[role] = "own" if scope == "(own sub-store only)" else "all"
    secret_scope = "own" if "own sub-store only" in description[found.end() :] else "all"
    named["API_SECRET"] = secret_scope if found["secrets"] == "yes" else "no"
    return {column: named.get(column, "no") for column in COLUMNS}


def test_each_mutation_description_names_the_roles_the_matrix_allows(
    schema: GraphQLSchema,
) -> None:
    for name, description in _mutations(schema).items():
        caller = MUTATION_CALLERS[name]
        if caller is Caller.ANYONE:
            assert description.endswith("Roles: anyone; no authentication needed."), name
        elif caller is Caller.AUTHENTICATED:
            assert "Roles: any authenticated caller" in description, name
        else:
            expected = dict(zip(COLUMNS, EXPECTED_MATRIX[caller.value].split(), strict=True))
            assert _allowed(description) == expected, (name, description)


def test_member_management_names_the_roles_each_role_may_grant(schema: GraphQLSchema) -> None:
    description = _mutations(schema)["memberInvite"]
    assert MUTATION_CALLERS["memberInvite"] is Operation.MEMBER_MANAGE
    # a MANAGER invites READ_ONLY and STORE_READ_ONLY members only (tests/members)
    assert "MANAGER: READ_ONLY, STORE_READ_ONLY;" in description
    assert "STORE_MANAGER: STORE_MANAGER, STORE_READ_ONLY." in description
