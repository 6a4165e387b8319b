"""The database's clock: the one time every process agrees on.

Leases, due times and publish times are compared across processes and hosts, whose own clocks
may disagree by more than a lease is long; PostgreSQL's clock decides. SQLite lives on one
machine, whose clock every process of it shares.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from db.types import utcnow


async def database_now(db: AsyncSession) -> datetime:
    """Now, by the database (PostgreSQL's statement_timestamp(); SQLite: this machine's)."""
    bind = db.get_bind()
    if bind.dialect.name == "sqlite":
        return utcnow()
    value = (await db.exec(text("SELECT statement_timestamp()"))).scalar_one()  # type: ignore[call-overload]
    assert isinstance(value, datetime)
    return value.astimezone(UTC)
