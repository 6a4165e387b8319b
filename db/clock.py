"""The database's clock: the one time every process agrees on.

Leases, due times, publish times, log-in throttling windows and turns, and webhook rate windows
are compared across processes and hosts, whose own clocks may disagree by more than they are
long; PostgreSQL's clock decides. SQLite lives on one machine, whose clock every process of it
shares.

Expiries measured in hours or days (sessions, invitations, API secrets) are decided by the
host's clock: a host whose clock is off by a few seconds moves them by that much. So each
process measures how far its clock is from the database's (host_clock_skew), at start-up and
on every /readyz, which refuses traffic when it is beyond CLOCK_SKEW_TOLERANCE_SECONDS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ClockSkew:
    """How far this host's clock is ahead of the database's (negative: behind), give or take
    `uncertainty` (half the round trip of the reading: the database's time was read somewhere
    between the two readings of the host's clock)."""

    seconds: float
    uncertainty: float

    def beyond(self, tolerance: float) -> bool:
        """Whether the clocks differ by more than `tolerance` whatever the reading's
        uncertainty: a slow round trip (a busy event loop, a loaded database) widens the
        uncertainty, never makes a right clock look wrong."""
        return abs(self.seconds) - self.uncertainty > tolerance


SKEW_SAMPLES = 3


async def host_clock_skew(
    connection: AsyncConnection, *, host_clock: Callable[[], datetime] = utcnow
) -> ClockSkew:
    """This host's clock against the database's: of SKEW_SAMPLES readings, the one with the
    shortest round trip, each comparing the database's time with the midpoint of two readings
    of the host's clock. SQLite shares this host's clock: 0 (after a query that shows the
    database answers)."""
    if connection.dialect.name == "sqlite":
        await connection.execute(text("SELECT 1"))
        return ClockSkew(seconds=0.0, uncertainty=0.0)
    best: ClockSkew | None = None
    for _ in range(SKEW_SAMPLES):
        before = host_clock()
        value = (await connection.execute(text("SELECT clock_timestamp()"))).scalar_one()
        after = host_clock()
        assert isinstance(value, datetime)
        reading = ClockSkew(
            seconds=(before + (after - before) / 2 - value).total_seconds(),
            uncertainty=(after - before).total_seconds() / 2,
        )
        if best is None or reading.uncertainty < best.uncertainty:
            best = reading
    assert best is not None
    return best
