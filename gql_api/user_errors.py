"""The `userErrors` contract and the one way mutations run: validate, write, commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import begin_write
from gql_api.context import Info
from gql_api.enums import UserErrorCode
from gql_api.errors import DomainError

T = TypeVar("T")


@strawberry.type(description="A problem with the input of a mutation; nothing was changed.")
class UserError:
    field: list[str] | None = strawberry.field(
        description='Path to the input field at fault, e.g. ["input", "name"].'
    )
    code: UserErrorCode
    message: str = strawberry.field(description="A sentence to show to a person.")


MAX_USER_ERRORS = 50


def user_errors(error: DomainError) -> list[UserError]:
    """The problems of `error`, at most MAX_USER_ERRORS of them and one saying how many more."""
    shown = [
        UserError(field=list(e.field) if e.field else None, code=e.code, message=e.message)
        for e in error.errors[:MAX_USER_ERRORS]
    ]
    hidden = len(error.errors) - MAX_USER_ERRORS
    if hidden > 0:
        more = UserError(
            field=None,
            code=UserErrorCode.INVALID_INPUT,
            message=f"{hidden} more problems not shown; fix these and send the input again.",
        )
        shown.append(more)
    return shown


async def mutate(
    info: Info, action: Callable[[AsyncSession], Awaitable[T]], *, writes_early: bool = True
) -> tuple[T | None, list[UserError]]:
    """Run one mutation in one transaction: commit on success, roll back on any error.

    `writes_early=False` is for actions that do slow work (argon2) before writing: they call
    db.engine.begin_write_after_reads themselves, so no write lock is held meanwhile.
    """
    async with info.context.db() as db:
        try:
            if writes_early:
                await begin_write(db)
            result = await action(db)
            await db.commit()
        except DomainError as error:
            await db.rollback()
            return None, user_errors(error)
        except BaseException:
            await db.rollback()
            raise
    return result, []
