"""A name unique among the live rows of a scope (stores of a merchant, channels of a store and
mode): looked up before the write, and enforced by a partial unique index at the flush, so a
concurrent request that took the name first is refused the same way."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from gql_api.errors import DomainError, UserErrorCode
from gql_api.i18n import Message


@dataclass(frozen=True)
class UniqueName:
    """How a taken name is refused: its code, message and field path."""

    code: UserErrorCode
    message: Message
    path: Sequence[str] = ("input", "name")

    def taken(self) -> DomainError:
        return DomainError.single(self.code, self.path, self.message)

    async def ensure_free(self, db: AsyncSession, clash: SelectOfScalar[Any]) -> None:
        """Refused if `clash` (the live rows of the scope with this name) finds one."""
        if (await db.exec(clash)).first() is not None:
            raise self.taken()

    async def flush(self, db: AsyncSession) -> None:
        """Flush; a unique-index violation (a concurrent request took the name between the
        check and the write) is refused as taken."""
        try:
            await db.flush()
        except IntegrityError:
            raise self.taken() from None
