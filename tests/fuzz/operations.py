"""Operations generated from the schema (hypothesis-graphql), sent by one of A's callers.

Random strings alone would almost never name a real store or node, so every string argument
is, now and then, replaced by an identifier of merchant A or B: the fuzz then reaches the
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

    def __repr__(self) -> str:
        # Hypothesis prints the falsifying example with this: the operation as it was sent.
        return f"Operation(\n{self.document}\n)"


def _datetimes() -> st.SearchStrategy[graphql.StringValueNode]:
    return st.datetimes(timezones=st.just(UTC)).map(lambda moment: nodes.String(moment.isoformat()))


def _documents(sdl: str) -> st.SearchStrategy[Any]:
    options: dict[str, Any] = {
        "custom_scalars": {"DateTime": _datetimes()},
        "print_ast": lambda document: document,
    }
    return st.one_of(
        hypothesis_graphql.queries(sdl, **options), hypothesis_graphql.mutations(sdl, **options)
    )


class _Strings(graphql.Visitor):
    """Visits the string values given to String and ID inputs (not to DateTime, also written
    as a string), replacing each by the next of `replacements` that is not None."""

    def __init__(self, type_info: graphql.TypeInfo, replacements: list[str | None]) -> None:
        super().__init__()
        self.type_info = type_info
        self.replacements = iter(replacements)
        self.count = 0

    def enter_string_value(self, node: graphql.StringValueNode, *_: object) -> Any:
        named = graphql.get_named_type(self.type_info.get_input_type())
        if named is None or named.name not in ("String", "ID"):
            return None
        self.count += 1
        replacement = next(self.replacements, None)
        return None if replacement is None else graphql.StringValueNode(value=replacement)


def _visit_strings(
    schema: graphql.GraphQLSchema, document: graphql.DocumentNode, replacements: list[str | None]
) -> tuple[graphql.DocumentNode, int]:
    type_info = graphql.TypeInfo(schema)
    visitor = _Strings(type_info, replacements)
    visited = graphql.visit(document, graphql.TypeInfoVisitor(type_info, visitor))
    return visited, visitor.count


def operations(sdl: str, pool: list[str]) -> st.SearchStrategy[Operation]:
    """An operation of the schema, some of its string arguments taken from `pool`."""
    documents = _documents(sdl)
    schema = graphql.build_schema(sdl)
    choice = st.one_of(st.none(), st.none(), st.sampled_from(pool)) if pool else st.none()

    @st.composite
    def draw_operation(draw: st.DrawFn) -> Operation:
        document = draw(documents)
        _, count = _visit_strings(schema, document, [])
        replacements = draw(st.lists(choice, min_size=count, max_size=count))
        document, _ = _visit_strings(schema, document, replacements)
        return Operation(graphql.print_ast(document))

    return draw_operation()
