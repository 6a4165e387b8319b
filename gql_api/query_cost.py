"""A cap on how many objects one query may ask for: the product of sizes along each path.

Depth, alias and token limits do not stop `channels(first: 100) { nodes { store { channels(
first: 100) ... } } }` from fanning out to millions of objects; this rule does. A connection
counts with the page size its field will use: the argument as the resolver gets it, a variable
with its coerced value (or the variable's declared default), the default page when none is
given. A page size the field refuses (out of range, `first` with `last`) counts 0: the field
answers BAD_REQUEST and nothing under it runs, so the client gets that clear error, not this
one. A plain list counts with the most items it can hold (`list_bound`) when something under
its items counts (`webhookSettings { deliveries(first: 50) }`: 4 × 50); a list of plain items
(a channel's credentials, a delivery's headers) comes with its parent's row and counts like a
single-object field: nothing of its own.

It runs once the document is valid, on every request, since it needs the request's variables
(validation is cached per document): in linear time, each fragment costed once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from functools import cache
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInt,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_composite_type,
    is_list_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from strawberry.extensions import SchemaExtension

from gql_api.api_secrets.network_rules import MAX_RULES
from gql_api.channel_groups.rules import MAX_ENTRIES
from gql_api.channels.rules import MAX_CREDENTIALS, IntegrationMode
from gql_api.context import Context
from gql_api.errors import ApiErrorCode
from gql_api.fairness import Lane
from gql_api.i18n import _
from gql_api.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from gql_api.pg_catalog.catalog import ModuleVersion, load_catalog
from gql_api.user_errors import MAX_USER_ERRORS
from gql_api.webhooks.service import MAX_LISTED_SECRETS

# Headers a delivery records: host and user-agent (gql_api.webhooks.sender), content-type,
# webhook-id, webhook-timestamp and webhook-signature (gql_api.webhooks.calls).
MAX_DELIVERY_HEADERS = 6


@cache
def list_bounds() -> Mapping[str, int]:
    """The most items each plain list field ("Type.field") can return, taken from what bounds
    it. Every list of objects outside a connection has a bound, here or in `ITEM_BOUNDS`
    (tests/unit/test_query_cost.py): unbounded, it would count as one object and hide its
    fan-out."""
    providers = load_catalog().providers
    modules = [module for provider in providers for module in provider.modules]
    return {
        "Store.webhookSettings": len(ModuleVersion) * len(IntegrationMode),
        "WebhookSetting.secrets": MAX_LISTED_SECRETS,
        "Channel.credentials": MAX_CREDENTIALS,
        "ApiSecret.networkRules": MAX_RULES,
        "ChannelGroupSession.entries": MAX_ENTRIES,
        "WebhookDelivery.requestHeaders": MAX_DELIVERY_HEADERS,
        "Query.pgProviders": len(providers),
        "PgProviderInfo.modules": max(len(provider.modules) for provider in providers),
        "PaymentModule.credentialFields": max(len(m.credential_fields) for m in modules),
        "PaymentModule.sharedTestMerchantIds": max(
            len(m.shared_test_merchant_ids) for m in modules
        ),
    }


# Lists bounded by their item type wherever they are: user_errors() makes at most
# MAX_USER_ERRORS and one saying how many more (every payload's `userErrors`).
ITEM_BOUNDS: Mapping[str, int] = {"UserError": MAX_USER_ERRORS + 1}


def list_bound(parent: str, name: str, field: GraphQLField) -> int | None:
    """The most items of the list field `parent.name`; None if it has no bound."""
    found = list_bounds().get(f"{parent}.{name}")
    return found if found is not None else ITEM_BOUNDS.get(get_named_type(field.type).name)


def is_connection(field: GraphQLField) -> bool:
    """A field that returns a page of objects (its size: `first`/`last`)."""
    return get_named_type(field.type).name.endswith("Connection")


def fields_of(schema: GraphQLSchema) -> Iterator[tuple[str, str, GraphQLField]]:
    """(type name, field name, field) of every output field of the schema."""
    for type_name, graphql_type in schema.type_map.items():
        if not type_name.startswith("__"):
            for name, field in (getattr(graphql_type, "fields", None) or {}).items():
                if isinstance(field, GraphQLField):
                    yield type_name, name, field


def plain_lists(schema: GraphQLSchema) -> set[str]:
    """ "Type.field" of every list of objects that is not a connection's page itself."""
    return {
        f"{type_name}.{name}"
        for type_name, name, field in fields_of(schema)
        if is_list_type(get_nullable_type(field.type))
        and is_composite_type(get_named_type(field.type))
        and not type_name.endswith("Connection")
    }


def query_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> int | None:
    """How many objects `operation` could return with these (raw) variables; None when a
    page size in them does not coerce: the operation is then refused before it runs."""
    page_sizes = _page_size_variables(operation)
    coerced = get_variable_values(schema, page_sizes, dict(variables))
    if isinstance(coerced, list):
        return None
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    return _Walk(schema, fragments, coerced).cost(operation.selection_set, root)


def _page_size_variables(operation: OperationDefinitionNode) -> list[Any]:
    """The definitions of the operation's Int variables: a page size can only be one of
    them (validation), and they coerce in constant time, unlike an input list."""
    definitions = []
    for definition in operation.variable_definitions or ():
        type_node = definition.type
        if isinstance(type_node, NonNullTypeNode):
            type_node = type_node.type
        if isinstance(type_node, NamedTypeNode) and type_node.name.value == GraphQLInt.name:
            definitions.append(definition)
    return definitions


def _page_size(first: int | None, last: int | None) -> int:
    """The rows a connection reads for `first`/`last` (gql_api.pagination.PageRequest), 0 for
    what it refuses with BAD_REQUEST before reading: nothing under it runs."""
    if first is not None and last is not None:
        return 0
    size = first if last is None else last
    if size is None:
        return DEFAULT_PAGE_SIZE
    return size if 0 <= size <= MAX_PAGE_SIZE else 0


class _Walk:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: VariableValues,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.fragment_costs: dict[str, int] = {}

    def cost(self, selections: SelectionSetNode | None, parent: GraphQLNamedType) -> int:
        """Objects under one `parent` object: the cost is linear in the number of parents."""
        if selections is None:
            return 0
        total = 0
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                fields = getattr(parent, "fields", None) or {}
                field = fields.get(selection.name.value)
                if field is None:  # __typename, introspection: no objects of ours
                    continue
                named = get_named_type(field.type)
                inner = self.cost(selection.selection_set, named)
                size = self._size(parent.name, selection, field)
                if size is not None and inner == 0 and not is_connection(field):
                    size = None  # a list of plain items comes with its parent (see above)
                total += size * (1 + inner) if size is not None else inner
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                on = self.schema.get_type(condition.name.value) if condition else parent
                total += self.cost(selection.selection_set, on or parent)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment_cost(selection.name.value, parent)
        return total

    def _fragment_cost(self, name: str, parent: GraphQLNamedType) -> int:
        if name not in self.fragment_costs:
            self.fragment_costs[name] = 0  # a cycle (never valid) counts nothing
            fragment = self.fragments.get(name)
            if fragment is not None:
                on = self.schema.get_type(fragment.type_condition.name.value)
                self.fragment_costs[name] = self.cost(fragment.selection_set, on or parent)
        return self.fragment_costs[name]

    def _size(self, parent: str, node: FieldNode, field: GraphQLField) -> int | None:
        """How many objects the field returns per parent; None for one object."""
        if is_connection(field):
            try:
                arguments = get_argument_values(field, node, self.variables)
            except GraphQLError:  # not so for a valid document and coerced variables
                return 0
            return _page_size(arguments.get("first"), arguments.get("last"))
        if is_list_type(get_nullable_type(field.type)) and not parent.endswith("Connection"):
            return list_bound(parent, node.name.value, field)
        return None  # one object, or a connection's page (counted by the connection)


class QueryCost(SchemaExtension):
    """Refuses, before it runs, an operation that could return more than `max_objects`
    objects (QUERY_TOO_COMPLEX). Listed after the validation extension: it judges only
    documents valid otherwise.

    The cost of an operation it lets through also tells the request's lane whether it is
    heavy, and a heavy one executes when gql_api.fairness gives it a turn."""

    def __init__(self, *, max_objects: int) -> None:
        self.max_objects = max_objects

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and not context.pre_execution_errors:
            operation = get_operation_ast(document, context.operation_name)
            if operation is not None:
                fragments = {
                    d.name.value: d
                    for d in document.definitions
                    if isinstance(d, FragmentDefinitionNode)
                }
                cost = query_cost(
                    context.schema._schema,
                    operation,
                    fragments,
                    context.variables if isinstance(context.variables, dict) else {},
                )
                if cost is not None and cost > self.max_objects:
                    context.pre_execution_errors = [self._refusal(operation, cost)]
                elif cost is not None and (lane := self._lane()) is not None:
                    lane.classify(cost)
        yield

    async def on_execute(self) -> AsyncIterator[None]:
        lane = self._lane()
        if lane is None:
            yield
            return
        async with lane.executing():
            yield

    def _lane(self) -> Lane | None:
        """The request's lane; None when the schema runs without the HTTP app."""
        context = self.execution_context.context
        return context.lane if isinstance(context, Context) else None

    def _refusal(self, operation: OperationDefinitionNode, cost: int) -> GraphQLError:
        message = _(
            "This query could return up to {cost} objects; at most {max_objects} are allowed: "
            "ask for smaller pages or fewer nested connections.",
            cost=cost,
            max_objects=self.max_objects,
        )
        return GraphQLError(
            message.render(),  # in the request's language; this result is not cached
            operation,
            extensions={"code": ApiErrorCode.QUERY_TOO_COMPLEX.value},
        )
