"""A cap on how many objects one query may ask for: the product of page sizes along each path.

Depth, alias and token limits do not stop `channels(first: 100) { nodes { store { channels(
first: 100) ... } } }` from fanning out to millions of objects; this rule does. Page sizes given
as variables count as the maximum (validation runs before variables are known, and is cached).
"""

from __future__ import annotations

from collections.abc import Collection

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)

from gql_api.errors import ApiErrorCode
from gql_api.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE


def _page_size(field: FieldNode) -> int:
    for argument in field.arguments or ():
        if argument.name.value in {"first", "last"}:
            if isinstance(argument.value, IntValueNode):
                return max(int(argument.value.value), 0)
            return MAX_PAGE_SIZE
    return DEFAULT_PAGE_SIZE


def query_cost_rule(connection_fields: Collection[str], max_objects: int) -> type[ValidationRule]:
    connections = frozenset(connection_fields)

    class QueryCost(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
            cost = self._cost(node.selection_set, 1, frozenset())
            if cost > max_objects:
                self.report_error(
                    GraphQLError(
                        f"This query could return up to {cost} objects; at most {max_objects} "
                        "are allowed: ask for smaller pages or fewer nested connections.",
                        node,
                        extensions={"code": ApiErrorCode.QUERY_TOO_COMPLEX.value},
                    )
                )

        def _cost(
            self, selections: SelectionSetNode | None, scale: int, seen: frozenset[str]
        ) -> int:
            if selections is None:
                return 0
            total = 0
            for selection in selections.selections:
                if isinstance(selection, FieldNode):
                    inner = scale
                    if selection.name.value in connections:
                        inner = scale * _page_size(selection)
                        total += inner
                    total += self._cost(selection.selection_set, inner, seen)
                elif isinstance(selection, InlineFragmentNode):
                    total += self._cost(selection.selection_set, scale, seen)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.context.get_fragment(name)
                    if fragment is not None and name not in seen:
                        total += self._cost(fragment.selection_set, scale, seen | {name})
            return total

    return QueryCost
