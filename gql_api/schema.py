"""The schema: every area's Query and Mutation merged, with limits, caches and masking."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

import strawberry
from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from gql_api.accounts import schema as accounts
from gql_api.accounts.types import User
from gql_api.api_secrets import schema as api_secrets
from gql_api.api_secrets.types import ApiSecret
from gql_api.audit import schema as audit
from gql_api.audit.types import AuditEvent
from gql_api.channel_groups import schema as channel_groups
from gql_api.channel_groups.types import ChannelGroup
from gql_api.channels import schema as channels
from gql_api.channels.types import Channel
from gql_api.context import Context, Info
from gql_api.document_errors import (
    CodedParserCache,
    RequestErrorsCoded,
    reporting_code,
    with_codes,
)
from gql_api.errors import (
    INTERNAL_MESSAGE,
    ApiError,
    ApiErrorCode,
    Forbidden,
    masked_extensions,
)
from gql_api.ids import parse_global_id
from gql_api.input_limits import ListLimits, largest_max_items
from gql_api.logs import current_request_id
from gql_api.members import schema as members
from gql_api.members.types import Invitation, Member
from gql_api.metrics import OperationMetrics
from gql_api.node import Node
from gql_api.nul_guard import NoNulInStrings
from gql_api.pg_catalog import schema as pg_catalog
from gql_api.query_cost import QueryCost
from gql_api.schema_descriptions import describe
from gql_api.settings import Settings
from gql_api.stores import schema as stores
from gql_api.stores.merchant import Merchant
from gql_api.stores.types import Store
from gql_api.suggestions import CachedValidation
from gql_api.webhooks import event_schema as webhook_events
from gql_api.webhooks import schema as webhooks
from gql_api.webhooks.event_types import WebhookEvent
from gql_api.webhooks.types import WebhookDelivery, WebhookSecret

logger = logging.getLogger("gql_api.errors")

NodeResolver = Callable[[Info, int], Awaitable[Any]]
NODE_RESOLVERS: dict[str, NodeResolver] = {
    **accounts.NODE_RESOLVERS,
    **members.NODE_RESOLVERS,
    **stores.NODE_RESOLVERS,
    **audit.NODE_RESOLVERS,
    **channels.NODE_RESOLVERS,
    **api_secrets.NODE_RESOLVERS,
    **webhooks.NODE_RESOLVERS,
    **webhook_events.NODE_RESOLVERS,
    **channel_groups.NODE_RESOLVERS,
}


@strawberry.type
class NodeQuery:
    @strawberry.field(
        description="Refetch any object by its global ID; null if it does not exist or the "
        "caller may not see it."
    )
    async def node(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="A global ID returned by this API.")
        ],
    ) -> Node | None:
        info.context.require_principal()
        decoded = parse_global_id(str(id))
        if decoded is None:
            return None
        resolver = NODE_RESOLVERS.get(decoded[0])
        if resolver is None:
            return None
        try:
            return await resolver(info, decoded[1])  # type: ignore[no-any-return]
        except Forbidden:  # what the caller may not see does not exist for it
            return None


Query = merge_types(
    "Query",
    (NodeQuery, accounts.Query, stores.Query, pg_catalog.Query, channel_groups.Query),
)
Mutation = merge_types(
    "Mutation",
    (
        accounts.Mutation,
        stores.Mutation,
        members.Mutation,
        channels.Mutation,
        api_secrets.Mutation,
        webhooks.Mutation,
        webhook_events.Mutation,
        channel_groups.Mutation,
    ),
)


class LoggedMaskErrors(MaskErrors):
    """Masks unexpected errors as INTERNAL (retryable when the database was unavailable and
    nothing of the request can have been committed: gql_api.errors.masked_extensions) and logs
    them with the request id; every error it lets through has a code
    (gql_api.document_errors)."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_should_mask, error_message=INTERNAL_MESSAGE.msgid)

    def on_operation(self) -> Iterator[None]:
        yield from super().on_operation()
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = with_codes(errors)  # type: ignore[union-attr]

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        request_id = current_request_id()
        # Masking runs once the operation is over: every unit of work of it is done by now.
        context: Context | None = self.execution_context.context  # None: run without HTTP
        extensions = masked_extensions(
            error.original_error,
            request_id,
            commit_begun=context is not None and context.commit_begun,
        )
        unavailable = "retryable" in extensions  # of the moment, not a bug
        logger.log(
            # An outcome unknown (not retryable) is for an operator to look into.
            logging.WARNING if extensions.get("retryable") else logging.ERROR,
            "%s in %s",
            _unavailable_message(extensions) if unavailable else "unexpected error",
            ".".join(str(p) for p in error.path or ()),
            exc_info=error.original_error,
            extra={"request_id": request_id},
        )
        masked = super().anonymise_error(error)
        masked.message = INTERNAL_MESSAGE.render()  # in the request's language
        masked.extensions = extensions
        return masked


def _unavailable_message(extensions: dict[str, str | bool]) -> str:
    if extensions["retryable"]:
        return "database unavailable"
    return "database unavailable after a COMMIT was sent (outcome unknown, not retryable)"


def _should_mask(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, (ApiError, GraphQLError))


class Schema(strawberry.Schema):
    def __init__(self, *args: Any, hide_suggestions: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hide_suggestions = hide_suggestions

    def _get_custom_context_kwargs(
        self, operation_extensions: dict[str, Any] | None = None, *, sync: bool = False
    ) -> dict[str, Any]:
        # What strawberry hands to graphql-core's execute(), which coerces the variables with
        # it: no "Did you mean" for an enum value or input field in a variable either.
        kwargs = super()._get_custom_context_kwargs(operation_extensions, sync=sync)
        return {**kwargs, "hide_suggestions": self.hide_suggestions}

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # strawberry logs every error with the query text, which may hold secrets; unexpected
        # errors are logged (without the query) by LoggedMaskErrors instead.
        return


@dataclass(frozen=True)
class SchemaLimits:
    """What of the settings shapes the schema: two apps with the same limits can share one."""

    max_query_depth: int
    max_aliases: int
    max_tokens: int
    max_query_objects: int
    introspection: bool

    @classmethod
    def of(cls, settings: Settings) -> SchemaLimits:
        return cls(
            max_query_depth=settings.max_query_depth,
            max_aliases=settings.max_aliases,
            max_tokens=settings.max_tokens,
            max_query_objects=settings.max_query_objects,
            introspection=settings.introspection_on,
        )


def build_schema(settings: Settings) -> strawberry.Schema:
    """The schema for these settings, built once per set of limits: building takes about 0.1 s
    (strawberry converts every type), a process serves one set, and the test suite makes
    thousands of apps from a handful of sets. A built schema holds no request state (its
    extensions are made per request)."""
    return _schema_of(SchemaLimits.of(settings))


@cache
def _schema_of(settings: SchemaLimits) -> strawberry.Schema:  # the limits, named as before
    # Validation rule classes are built once: strawberry's validation cache is keyed by them,
    # and the limiter extensions used as per-request factories would make new classes each
    # time (every request validated again). The cost check (QueryCost) follows validation.
    # The limiters' rules report plain errors: wrapped, they carry their code.
    too_complex = ApiErrorCode.QUERY_TOO_COMPLEX.value
    limits = [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ]
    rules: list[type[ASTValidationRule]] = [
        *(reporting_code(rule, too_complex) for rule in limits),
        NoNulInStrings,
    ]
    largest_list = 0  # the schema's largest list maximum, set once the schema exists
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        OperationMetrics,  # outermost: it sees the final (masked) errors
        LoggedMaskErrors,
        # The token limit is enforced by the parser: CodedParserCache gives its error the code.
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: CodedParserCache(maxsize=512),
        lambda: CachedValidation(hide_suggestions=not settings.introspection),
        lambda: QueryCost(max_objects=settings.max_query_objects),  # needs the variables
        lambda: AddValidationRules(rules),
        lambda: ListLimits(fallback=largest_list),
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    schema = Schema(
        query=Query,
        mutation=Mutation,
        types=[
            Store,
            Merchant,
            User,
            Member,
            Invitation,
            AuditEvent,
            Channel,
            ApiSecret,
            WebhookSecret,
            WebhookDelivery,
            WebhookEvent,
            ChannelGroup,
        ],
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=not settings.introspection),
        execution_context_class=RequestErrorsCoded,
        hide_suggestions=not settings.introspection,
    )
    describe(schema._schema)
    largest_list = largest_max_items(schema._schema)
    return schema
