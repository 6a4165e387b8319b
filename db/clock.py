"""The database's clock: the one time every process agrees on.

Leases, due times, publish times, log-in throttling windows and turns, and webhook rate windows
are compared across processes and hosts, whose own clocks may disagree by more than they are
long; PostgreSQL's clock decides. SQLite lives on one machine, whose clock every process of it
shares.

Expiries measured in hours or days (sessions, invitations, API secrets) are decided by the
host's clock: a host whose clock is off by a few seconds moves them by that much. So each
process measures how far its clock is from the database's (host_clock_skew), and /readyz
refuses traffic past CLOCK_SKEW_TOLERANCE_SECONDS.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
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


async def host_clock_skew(
    connection: AsyncConnection, *, host_clock: Callable[[], datetime] = utcnow
) -> float:
    """Seconds this host's clock is ahead of the database's (negative: behind), to within half
    a round trip: the database's time is read between two readings of the host's clock and
    compared with their midpoint. SQLite shares this host's clock: 0 (after a query that shows
    the database answers)."""
    if connection.dialect.name == "sqlite":
        await connection.execute(text("SELECT 1"))
        return 0.0
    before = host_clock()
    value = (await connection.execute(text("SELECT clock_timestamp()"))).scalar_one()
    after = host_clock()
    assert isinstance(value, datetime)
    midpoint = before + (after - before) / 2
    return (midpoint - value).total_seconds()
