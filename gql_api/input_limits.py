"""Every list a client may send has a maximum: in its description, and cheap to enforce.

A list field of an input type (or a list argument) is declared with `limited_list`, which puts
the maximum in its GraphQL description and its metadata. The service refuses a longer list with
one userError before any other work; `ListLimits` makes sure that work stays small whatever was
sent, by cutting each list of the variables to its maximum + 1 items before graphql-core and
strawberry convert them item by item (100,000 items cost 3 s there). A list in the document
itself is already bounded by the token limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import (
    GraphQLInputType,
    GraphQLSchema,
    get_nullable_type,
    get_operation_ast,
    is_input_object_type,
    is_list_type,
    is_wrapping_type,
    type_from_ast,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema_converter import GraphQLCoreConverter

MAX_ITEMS = "max_items"


def limited_list(*, max_items: int, description: str, **field: Any) -> Any:
    """`strawberry.field` of a list input field with at most `max_items` items."""
    return strawberry.field(
        description=f"{description} At most {max_items} items.",
        metadata={MAX_ITEMS: max_items},
        **field,
    )


def max_items(definition: object) -> int | None:
    """The maximum of a graphql-core input field or argument made by strawberry, if any."""
    extensions = getattr(definition, "extensions", None) or {}
    strawberry_definition = extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    metadata = getattr(strawberry_definition, "metadata", None) or {}
    found = metadata.get(MAX_ITEMS)
    return found if isinstance(found, int) else None


def list_inputs(schema: GraphQLSchema) -> Iterator[tuple[str, Any]]:
    """("Type.field" or "Type.field(argument)", definition) of every list-typed input."""
    for type_name, graphql_type in schema.type_map.items():
        if type_name.startswith("__"):
            continue
        fields = getattr(graphql_type, "fields", None) or {}
        for field_name, field in fields.items():
            if is_input_object_type(graphql_type) and _has_list(field.type):
                yield f"{type_name}.{field_name}", field
            for argument_name, argument in (getattr(field, "args", None) or {}).items():
                if _has_list(argument.type):
                    yield f"{type_name}.{field_name}({argument_name})", argument


def largest_max_items(schema: GraphQLSchema) -> int:
    return max((max_items(d) or 0 for _, d in list_inputs(schema)), default=0)


def _has_list(type_: Any) -> bool:
    while is_wrapping_type(type_):
        if is_list_type(type_):
            return True
        type_ = type_.of_type
    return False


class ListLimits(SchemaExtension):
    """Cuts the lists of the variables to their maximum + 1 items before they are coerced.

    A list with no maximum of its own (a variable declared as a list, or a list in a list) is
    cut at `fallback` + 1, the largest maximum of the schema: no valid input is ever changed.
    """

    def __init__(self, *, fallback: int) -> None:
        self.fallback = fallback

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document, variables = context.graphql_document, context.variables
        if document is not None and variables:
            operation = get_operation_ast(document, context.operation_name)
            schema = context.schema._schema
            for definition in (operation.variable_definitions or ()) if operation else ():
                name = definition.variable.name.value
                type_ = type_from_ast(schema, definition.type)
                if name in variables and type_ is not None:
                    self._cut(variables[name], type_)  # type: ignore[arg-type]
        yield

    def _cut(self, value: object, type_: GraphQLInputType) -> None:
        stack: list[tuple[object, Any, int]] = [(value, type_, self.fallback)]
        while stack:
            item, item_type, limit = stack.pop()
            item_type = get_nullable_type(item_type)
            if is_list_type(item_type):
                if isinstance(item, list):
                    del item[limit + 1 :]
                    stack.extend((child, item_type.of_type, self.fallback) for child in item)
                else:  # one value where a list is expected: coerced as a list of one
                    stack.append((item, item_type.of_type, self.fallback))
            elif is_input_object_type(item_type) and isinstance(item, dict):
                for name, field in item_type.fields.items():
                    if name in item:
                        stack.append((item[name], field.type, max_items(field) or self.fallback))
