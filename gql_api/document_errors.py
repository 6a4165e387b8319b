"""Codes for what is wrong with a document, set where each error is made, never read from text.

A document that cannot be parsed is GRAPHQL_PARSE_FAILED (graphql-core's GraphQLSyntaxError),
one over the token limit QUERY_TOO_COMPLEX (the syntax error the parser raises at the first
token past `max_tokens`); the limiters' validation rules report QUERY_TOO_COMPLEX (wrapped by
`reporting_code`); any other error of the validation phase is GRAPHQL_VALIDATION_FAILED
(gql_api.suggestions), and so are variables that do not fit the operation (found by
graphql-core's executor before any resolver runs: `RequestErrorsCoded`). What raises an
ApiError carries its code, what is unexpected is masked as INTERNAL (gql_api.schema), and the
rare error graphql-core makes while executing without a code stays what it always was:
GRAPHQL_VALIDATION_FAILED (`with_codes`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSyntaxError,
    Lexer,
    OperationDefinitionNode,
    Source,
    TokenKind,
    ValidationContext,
)
from strawberry.extensions import ParserCache
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gql_api.errors import GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, ApiErrorCode
from gql_api.i18n import _

QUERY_TOO_COMPLEX = ApiErrorCode.QUERY_TOO_COMPLEX.value


def with_code(error: GraphQLError, code: str) -> GraphQLError:
    """`error` again, with `extensions.code` (graphql-core's errors are made without one)."""
    return GraphQLError(
        error.message,
        error.nodes,
        error.source,
        error.positions,
        error.path,
        error.original_error,
        extensions={**(error.extensions or {}), "code": code},
    )


def with_codes(errors: list[GraphQLError]) -> list[GraphQLError]:
    """`errors`, each with a code: one made without (graphql-core, while executing) is
    GRAPHQL_VALIDATION_FAILED."""
    return [
        error
        if error.extensions and "code" in error.extensions
        else with_code(error, GRAPHQL_VALIDATION_FAILED)
        for error in errors
    ]


def operation_not_chosen(document: DocumentNode, operation_name: str | None) -> GraphQLError | None:
    """A request error when the document holds several operations and the request names none
    (GraphQL over HTTP): running the first would run what the client may not have meant (a
    `sessionRevoke` written below a query, say)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None or len(operations) < 2:
        return None
    message = _("The document has several operations: name the one to run with operationName.")
    return GraphQLError(
        message.render(),  # in the request's language: made for each request, never cached
        nodes=operations,
        extensions={"code": GRAPHQL_VALIDATION_FAILED},
    )


class _ReportingCode:
    """A ValidationContext whose report_error adds a code; everything else is the context's."""

    def __init__(self, context: ValidationContext, code: str) -> None:
        self._context = context
        self._code = code

    def report_error(self, error: GraphQLError) -> None:
        self._context.report_error(with_code(error, self._code))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def reporting_code(rule: type[ASTValidationRule], code: str) -> type[ASTValidationRule]:
    """`rule` (strawberry's limiters: they report plain GraphQLErrors, some from their
    constructor) with every error it reports carrying `code`."""

    def __init__(self: ASTValidationRule, context: ValidationContext) -> None:
        rule.__init__(self, cast(ValidationContext, _ReportingCode(context, code)))

    coded: type[ASTValidationRule] = type(f"{rule.__name__}Coded", (rule,), {"__init__": __init__})
    return coded


def exceeds_token_limit(query: str, error: GraphQLSyntaxError, max_tokens: int | None) -> bool:
    """Whether the parser stopped at its token limit: graphql-core raises that error at the
    start of the first token (comments count) past `max_tokens`, before reading what that
    token means; a genuine syntax error is found at or before the limit.

    Counts at most `max_tokens + 1` tokens, and only once a parse has failed.
    """
    if max_tokens is None or not error.positions:
        return False
    position = next(iter(error.positions))
    lexer = Lexer(Source(query))
    counted = 0
    previous = lexer.token
    try:
        while True:
            following = lexer.advance()  # skips comments, but links them between the two
            token = previous.next
            while token is not None:
                if token.kind is TokenKind.EOF or token.start > position:
                    return False
                counted += 1
                if counted > max_tokens:
                    return bool(token.start == position)
                if token is following:
                    break
                token = token.next
            previous = following
    except GraphQLSyntaxError:
        return False  # the lexer itself failed first: a genuine syntax error


class CodedParserCache(ParserCache):
    """strawberry's ParserCache, whose syntax errors carry a code (see exceeds_token_limit)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        try:
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options
            )
        except GraphQLSyntaxError as error:
            too_many = exceeds_token_limit(
                context.query or "", error, context.parse_options.get("max_tokens")
            )
            raise with_code(
                error, QUERY_TOO_COMPLEX if too_many else GRAPHQL_PARSE_FAILED
            ) from None
        yield


class RequestErrorsCoded(StrawberryGraphQLCoreExecutionContext):
    """The executor of strawberry; what it refuses before running anything (variables that do
    not fit the operation) is GRAPHQL_VALIDATION_FAILED."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        built = super().build(*args, **kwargs)
        if isinstance(built, list):
            return [with_code(error, GRAPHQL_VALIDATION_FAILED) for error in built]
        return built
