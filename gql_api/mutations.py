"""The transaction runner: a request's writes begin, commit and roll back here, and only here.

A mutation's action runs as one unit of work: committed when it returns, rolled back on any
error (a DomainError becomes `userErrors`), so nothing it wrote is ever kept in part. Most
actions write from the start (`mutate`); one with slow work between its reads and its write
(argon2, a wait) takes a `db.engine.Tx` and says where each step happens (`mutate_in_steps`):

    async def action(tx: Tx) -> Accepted:
        invitation = await read_invitation(tx.db)  # autocommit reads: no lock held
        await tx.release()  # no transaction, no connection during argon2
        password_hash = await hashing.hash(password)
        async with tx.write() as db:  # the one write transaction, committed by the runner
            ...

The few writes that must stay although the request fails (failed attempts counted) use
db.engine.independent_write instead, each saying why.

A request's context learns when one of its units sends COMMIT (Context.commit_begins): a
failure after that point, a COMMIT whose reply was lost included, may leave the unit applied,
so the client is not told to send the request again (gql_api.errors.masked_extensions).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import Tx
from gql_api.context import Info
from gql_api.errors import DomainError
from gql_api.user_errors import UserError, user_errors

T = TypeVar("T")


async def mutate(
    info: Info, action: Callable[[AsyncSession], Awaitable[T]]
) -> tuple[T | None, list[UserError]]:
    """Run `action` in one write transaction, begun before it reads anything."""

    async def in_one_write(tx: Tx) -> T:
        async with tx.write() as db:
            return await action(db)

    return await mutate_in_steps(info, in_one_write)


async def mutate_in_steps(
    info: Info, action: Callable[[Tx], Awaitable[T]]
) -> tuple[T | None, list[UserError]]:
    """Run `action` as one unit of work that begins its write itself (Tx.write)."""
    async with info.context.db() as session:
        try:
            engine = info.context.app.engine
            unit = await run_unit(session, engine, action, before_commit=info.context.commit_begins)
            return unit, []
        except DomainError as error:
            return None, user_errors(error)


async def run_unit(
    session: AsyncSession,
    engine: AsyncEngine,
    action: Callable[[Tx], Awaitable[T]],
    *,
    before_commit: Callable[[], None] | None = None,
) -> T:
    """Commit what `action` wrote when it returns; roll back and re-raise on any error.

    `before_commit` is called once `action` has returned, just before COMMIT is sent: from
    then on the unit may be applied even if the commit raises (the connection lost before the
    server's answer came back), so an error no longer proves that nothing was written."""
    try:
        result = await action(Tx(session, engine))
        if before_commit is not None:
            before_commit()
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    return result
