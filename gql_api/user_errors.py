"""The `userErrors` contract: every problem with a mutation's input, with a code and a path."""

from __future__ import annotations

import strawberry

from gql_api.enums import UserErrorCode
from gql_api.errors import DomainError
from gql_api.i18n import _n


@strawberry.type(description="A problem with the input of a mutation; nothing was changed.")
class UserError:
    field: list[str] | None = strawberry.field(
        description='Path to the input field at fault, e.g. ["input", "name"].'
    )
    code: UserErrorCode = strawberry.field(description="Machine-readable reason; branch on it.")
    message: str = strawberry.field(description="A sentence to show to a person.")


MAX_USER_ERRORS = 50


def user_errors(error: DomainError) -> list[UserError]:
    """The problems of `error`, at most MAX_USER_ERRORS of them and one saying how many more,
    in the language of the request being answered."""
    shown = [
        UserError(field=list(e.field) if e.field else None, code=e.code, message=e.message.render())
        for e in error.errors[:MAX_USER_ERRORS]
    ]
    hidden = len(error.errors) - MAX_USER_ERRORS
    if hidden > 0:
        more = UserError(
            field=None,
            code=UserErrorCode.INVALID_INPUT,
            message=_n(
                "{count} more problem not shown; fix these and send the input again.",
                "{count} more problems not shown; fix these and send the input again.",
                hidden,
            ).render(),
        )
        shown.append(more)
    return shown
