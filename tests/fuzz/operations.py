"""Operations generated from the schema (hypothesis-graphql), sent by each of A's callers.

Random strings would almost never name a real store or node, so most identifiers and some
other strings are replaced by identifiers of merchant A or B: the fuzz then reaches the
resolvers behind the look-ups, and tries B's rows from A's side of the tenant boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

import graphql
import hypothesis_graphql
from hypothesis import strategies as st
from hypothesis_graphql import nodes


@dataclass(frozen=True)
class Operation:
    """A GraphQL document generated from the schema; every caller sends it."""

    document: str


def _datetimes() -> st.SearchStrategy[graphql.StringValueNode]:
    return st.datetimes(timezones=st.just(UTC)).map(lambda moment: nodes.String(moment.isoformat()))


def _documents(sdl: str) -> st.SearchStrategy[Any]:
    """Documents of one root field each, the field drawn uniformly among all queries and
    mutations (left to itself the generator picks `node` twenty times as often as some
    mutations), and documents of several root fields.

    No NUL characters: the API refuses a document holding one before reading it
    (gql_api.nul_guard), so such documents would only test that refusal."""
    schema = graphql.build_schema(sdl)
    options: dict[str, Any] = {
        "custom_scalars": {"DateTime": _datetimes()},
        "print_ast": lambda document: document,
        "allow_x00": False,
    }
    assert schema.query_type is not None and schema.mutation_type is not None
    return st.one_of(
        *(
            hypothesis_graphql.queries(sdl, fields=[name], **options)
            for name in schema.query_type.fields
        ),
        *(
            hypothesis_graphql.mutations(sdl, fields=[name], **options)
            for name in schema.mutation_type.fields
        ),
        hypothesis_graphql.queries(sdl, **options),
        hypothesis_graphql.mutations(sdl, **options),
    )


class _Strings(graphql.Visitor):
    """Visits the string values given to String and ID inputs (not to DateTime, also written
    as a string): records whether each names something (an ID, or an argument or input field
    called `...Id`) in `identifiers`, and replaces each by the next of `replacements` that is
    not None."""

    def __init__(self, type_info: graphql.TypeInfo, replacements: list[str | None]) -> None:
        super().__init__()
        self.type_info = type_info
        self.replacements = iter(replacements)
        self.identifiers: list[bool] = []
        self.names: list[str] = []

    def enter_argument(self, node: graphql.ArgumentNode, *_: object) -> None:
        self.names.append(node.name.value)

    def leave_argument(self, *_: object) -> None:
        self.names.pop()

    def enter_object_field(self, node: graphql.ObjectFieldNode, *_: object) -> None:
        self.names.append(node.name.value)

    def leave_object_field(self, *_: object) -> None:
        self.names.pop()

    def enter_string_value(self, node: graphql.StringValueNode, *_: object) -> Any:
        named = graphql.get_named_type(self.type_info.get_input_type())
        if named is None or named.name not in ("String", "ID"):
            return None
        name = self.names[-1] if self.names else ""
        self.identifiers.append(named.name == "ID" or name.endswith("Id"))
        replacement = next(self.replacements, None)
        return None if replacement is None else graphql.StringValueNode(value=replacement)


def _visit_strings(
    schema: graphql.GraphQLSchema, document: graphql.DocumentNode, replacements: list[str | None]
) -> tuple[graphql.DocumentNode, list[bool]]:
    type_info = graphql.TypeInfo(schema)
    visitor = _Strings(type_info, replacements)
    visited = graphql.visit(document, graphql.TypeInfoVisitor(type_info, visitor))
    return visited, visitor.identifiers


def operations(sdl: str, pool: list[str]) -> st.SearchStrategy[Operation]:
    """An operation of the schema whose identifiers are mostly (3 in 4) taken from `pool`, and
    its other strings now and then (1 in 4): a random string names nothing."""
    documents = _documents(sdl)
    schema = graphql.build_schema(sdl)
    known = st.sampled_from(pool)
    # one_of shrinks towards its first strategy: the generated string, unchanged (None).
    identifier = st.one_of(st.none(), known, known, known)
    text = st.one_of(st.none(), st.none(), st.none(), known)

    @st.composite
    def draw_operation(draw: st.DrawFn) -> Operation:
        document = draw(documents)
        _, identifiers = _visit_strings(schema, document, [])
        replacements = [draw(identifier if kind else text) for kind in identifiers]
        document, _ = _visit_strings(schema, document, replacements)
        return Operation(graphql.print_ast(document))

    return draw_operation()
