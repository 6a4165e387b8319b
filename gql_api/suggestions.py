"""Document validation (cached) that can leave schema names out of its error messages.

graphql-core ends errors about an unknown field, argument, type, enum value or input field with
"Did you mean 'merchant'?"; with introspection off those hints would hand the schema out name by
name. graphql-core has one switch for all of them, `hide_suggestions`: the validation here
passes it on, and gql_api.schema.Schema passes it to the coercion of variables.

The phase also refuses a document of several operations when the request names none
(gql_api.document_errors.operation_not_chosen). Every error of this phase carries a code: the
rules that set their own keep it (the limits: QUERY_TOO_COMPLEX), the others are
GRAPHQL_VALIDATION_FAILED.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, validate
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from gql_api.document_errors import operation_not_chosen, with_codes
from gql_api.i18n import Locale, current_locale

# What strawberry's own validation (strawberry.schema.schema.validate_document) adds.
_STRAWBERRY_RULES = (MaybeNullValidationRule, OneOfInputValidationRule)


@lru_cache(maxsize=512)
def _validate(
    schema: GraphQLSchema,
    document: DocumentNode,
    rules: tuple[type[ASTValidationRule], ...],
    hide_suggestions: bool,
    locale: Locale,
) -> list[GraphQLError]:
    """The errors of `document`, cached per language: our rules' messages are rendered in the
    language of the request they were made for (gql_api.nul_guard), and a Korean answer must
    not be served to the next English request of the same document. `locale` is only a key."""
    return with_codes(
        validate(schema, document, (*rules, *_STRAWBERRY_RULES), hide_suggestions=hide_suggestions)
    )


class CachedValidation(SchemaExtension):
    """strawberry's ValidationCache, with graphql-core's `hide_suggestions` switch."""

    def __init__(self, *, hide_suggestions: bool) -> None:
        self.hide_suggestions = hide_suggestions

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        assert context.graphql_document is not None
        errors = _validate(
            context.schema._schema,
            context.graphql_document,
            context.validation_rules,
            self.hide_suggestions,
            current_locale.get(),
        )
        # The name the request gave: strawberry's `operation_name` falls back to the first
        # operation's, which is what must not happen silently.
        named = context._provided_operation_name
        unchosen = operation_not_chosen(context.graphql_document, named)
        context.pre_execution_errors = errors if unchosen is None else [*errors, unchosen]
        yield
