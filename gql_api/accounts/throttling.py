"""Throttling of log-in attempts, so that guessing can never lock an account's owner out.

Refusals are keyed by the client address's throttling key (gql_api.client_address: an IPv6
address counts as its /64): one email from one address (LOGIN_MAX_FAILURES), and one address
over any emails (LOGIN_MAX_FAILURES_PER_ADDRESS). Every attempt is recorded as a failure before
the password is checked (concurrent guesses count too), and a success deletes the failures of
its (email, address).

Past LOGIN_EMAIL_SLOWDOWN_AFTER failures for one email (all addresses), its password checks
take turns: each attempt, under the email's lock, is given the turn
`max(now, the email's latest turn) + interval` (0.25 s doubling with each further failure, at
most LOGIN_EMAIL_MAX_DELAY_SECONDS) and waits for it, so however many arrive at once, checks
for the email run at most one per interval, in every process sharing the database. A turn
further than LOGIN_EMAIL_MAX_QUEUE_SECONDS ahead is refused (RATE_LIMITED) instead.

An (email, address) that has logged in within KNOWN_FOR takes no turn: the owner, from an
address they have used, is neither delayed nor refused by someone else's guessing. From a new
address (a new device, a new network) during a sustained attack, the owner waits for a turn
like any guess, and may be refused while the queue is full.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import independent_write
from db.models import LoginFailure, LoginKnownAddress
from db.types import utcnow
from gql_api.client_address import throttling_key
from gql_api.errors import RateLimited
from gql_api.i18n import Message, _
from gql_api.settings import Settings

PRUNE_BATCH = 100
FIRST_DELAY_SECONDS = 0.25
KNOWN_FOR = timedelta(days=30)  # since an (email, address)'s last success
# PostgreSQL advisory-lock classes, always taken in this order, so two claims cannot deadlock.
# The (email, address) pair needs no lock of its own: its address's lock covers it.
_ADDRESS_LOCK = 1
_EMAIL_LOCK = 2
# Per process, so logs can tell repeated failures for one email apart without naming it, and a
# list of known emails cannot be hashed to find them.
_EMAIL_REF_KEY = secrets.token_bytes(32)


@dataclass(frozen=True)
class Claim:
    """An attempt that may go ahead, recorded as a failure until it succeeds."""

    email_failures: int  # for the email within the window, from all addresses, this one included
    delay_seconds: float  # until its turn: to wait, with no connection held, before the check


async def claim_attempt(
    engine: AsyncEngine, *, settings: Settings, email: str, client_address: str
) -> Claim:
    """Record this attempt as a failure up front, with its turn when the email is past its
    ceiling; or refuse it (RateLimited) when its address, or its email from this address, has
    too many failures within the window, or when its turn would be too far ahead."""
    # Committed on its own, before the password is checked: concurrent guesses count too, and
    # the count stays although the request then fails.
    # Short: index lookups, a pruned batch of at most PRUNE_BATCH rows and one insert.
    async with independent_write(engine, short=True) as conn:
        decided = await _decide(conn, settings=settings, email=email, client_address=client_address)
    if isinstance(decided, RateLimited):
        raise decided  # after the commit: the pruning done meanwhile stays
    return decided


async def _decide(
    conn: AsyncConnection, *, settings: Settings, email: str, client_address: str
) -> Claim | RateLimited:
    key = throttling_key(client_address)
    if conn.dialect.name == "postgresql":
        # One attempt per address and per email at a time decides; SQLite writes one at a time.
        # Windows and turns are times of the database's clock, read with the locks: processes
        # on hosts whose clocks disagree still count the same failures and space the same
        # turns (SQLite: the one machine's clock).
        locked = await conn.execute(
            text(
                "SELECT pg_advisory_xact_lock(:address_lock, hashtext(:address)), "
                "pg_advisory_xact_lock(:email_lock, hashtext(:email)), statement_timestamp()"
            ),
            {
                "address_lock": _ADDRESS_LOCK,
                "address": key,
                "email_lock": _EMAIL_LOCK,
                "email": email,
            },
        )
        now = locked.one()[2].astimezone(UTC)
    else:
        now = utcnow()
    window = timedelta(minutes=settings.login_failure_window_minutes)
    since = now - window
    await _prune(conn, before=since)

    from_address = col(LoginFailure.client_address) == key
    for_email = col(LoginFailure.email) == email
    address_failures, pair_failures, email_failures = await _counts(
        conn, since, from_address=from_address, for_email=for_email
    )
    if address_failures >= settings.login_max_failures_per_address:
        return await _refusal(
            conn,
            since,
            from_address,
            count=address_failures,
            limit=settings.login_max_failures_per_address,
            window=window,
            now=now,
            message=_("Too many failed log-in attempts from this address; try again later."),
        )
    if pair_failures >= settings.login_max_failures:
        return await _refusal(
            conn,
            since,
            for_email,
            from_address,
            count=pair_failures,
            limit=settings.login_max_failures,
            window=window,
            now=now,
            message=_(
                "Too many failed log-in attempts for this email from this address; try again later."
            ),
        )
    email_failures += 1  # this attempt
    turn: datetime | None = None
    if email_failures > settings.login_email_slowdown_after and not await _known(
        conn, email=email, client_key=key, now=now
    ):
        taken = await _take_turn(
            conn,
            settings=settings,
            email=email,
            interval=turn_interval(settings, email_failures),
            now=now,
        )
        if isinstance(taken, RateLimited):
            return taken
        turn = taken
    await conn.execute(
        insert(LoginFailure).values(
            email=email, client_address=key, attempted_at=now, not_before=turn
        )
    )
    delay_seconds = (turn - now).total_seconds() if turn is not None else 0.0
    return Claim(email_failures=email_failures, delay_seconds=delay_seconds)


def turn_interval(settings: Settings, email_failures: int) -> timedelta:
    """Between turns: none up to the per-email ceiling, then 0.25 s doubling per failure, at
    most LOGIN_EMAIL_MAX_DELAY_SECONDS."""
    excess = email_failures - settings.login_email_slowdown_after
    if excess <= 0:
        return timedelta(0)
    seconds = FIRST_DELAY_SECONDS * 2.0 ** min(excess - 1, 20)
    return timedelta(seconds=min(settings.login_email_max_delay_seconds, seconds))


async def _take_turn(
    conn: AsyncConnection,
    *,
    settings: Settings,
    email: str,
    interval: timedelta,
    now: datetime,
) -> datetime | RateLimited:
    """The next turn of the email, an interval after its latest (the caller holds its lock);
    a refusal when that is further ahead than LOGIN_EMAIL_MAX_QUEUE_SECONDS."""
    latest = (
        await conn.execute(
            select(func.max(col(LoginFailure.not_before))).where(
                col(LoginFailure.email) == email, col(LoginFailure.not_before) > now
            )
        )
    ).scalar_one()
    turn = max(now, latest or now) + interval
    too_far = (turn - now).total_seconds() - settings.login_email_max_queue_seconds
    if too_far > 0:
        return RateLimited(
            _("Too many log-in attempts for this email; try again later."),
            retryAfterSeconds=max(1, math.ceil(too_far)),
        )
    return turn


async def _known(conn: AsyncConnection, *, email: str, client_key: str, now: datetime) -> bool:
    statement = select(LoginKnownAddress.id).where(
        col(LoginKnownAddress.email) == email,
        col(LoginKnownAddress.client_key) == client_key,
        col(LoginKnownAddress.last_success_at) >= now - KNOWN_FOR,
    )
    return (await conn.execute(statement)).first() is not None


async def succeeded(db: AsyncSession, *, email: str, client_address: str) -> None:
    """After a success, in its transaction: forget the failures of this (email, address), not
    those from elsewhere, and remember the pair as known (it will take no turns).

    The success is timed by the database's clock, as _known compares it with: a host whose
    clock is behind would otherwise remember the pair as known for less than KNOWN_FOR."""
    key = throttling_key(client_address)
    await db.exec(
        delete(LoginFailure).where(
            col(LoginFailure.email) == email, col(LoginFailure.client_address) == key
        )
    )
    dialect = db.bind.dialect.name if db.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stamp = func.statement_timestamp() if dialect == "postgresql" else utcnow()
    upsert = insert(LoginKnownAddress).values(email=email, client_key=key, last_success_at=stamp)
    # The time stored comes back with the same statement: no extra round trip to read it.
    stored = await db.exec(
        upsert.on_conflict_do_update(
            index_elements=["email", "client_key"],
            set_={"last_success_at": upsert.excluded.last_success_at},
        ).returning(col(LoginKnownAddress.last_success_at))
    )
    now = stored.scalar_one()
    # A small batch per success, oldest first, skipping rows another success is pruning.
    stale = (
        select(LoginKnownAddress.id)
        .where(col(LoginKnownAddress.last_success_at) < now - KNOWN_FOR)
        .order_by(col(LoginKnownAddress.last_success_at))
        .limit(PRUNE_BATCH)
        .with_for_update(skip_locked=True)
    )
    await db.exec(delete(LoginKnownAddress).where(col(LoginKnownAddress.id).in_(stale)))


def email_for_logs(email: str) -> dict[str, str]:
    """The email as log fields: its domain, and a keyed hash that names no one outside this
    process. The email itself is personal data and stays out of the logs."""
    digest = hmac.new(_EMAIL_REF_KEY, email.encode(), hashlib.sha256).hexdigest()
    return {"email_domain": email.rpartition("@")[2][:100], "email_ref": digest[:16]}


async def _prune(conn: AsyncConnection, *, before: datetime) -> None:
    """Delete old failures of every email, unknown ones included, a small batch per claim.

    Ids grow with time, so the oldest rows are among the lowest ids: looking at a batch of
    those costs a few index entries, while a search by age alone would scan the whole table.
    Rows another claim is pruning are skipped, not waited for.
    """
    oldest = (
        select(LoginFailure.id)
        .order_by(col(LoginFailure.id))
        .limit(PRUNE_BATCH)
        .with_for_update(skip_locked=True)
    )
    await conn.execute(
        delete(LoginFailure).where(
            col(LoginFailure.id).in_(oldest), col(LoginFailure.attempted_at) < before
        )
    )


async def _counts(
    conn: AsyncConnection,
    since: datetime,
    *,
    from_address: ColumnElement[bool],
    for_email: ColumnElement[bool],
) -> tuple[int, int, int]:
    """Failures within the window from the address, for the email from the address, and for
    the email from anywhere: one statement, as a claim holds SQLite's write lock meanwhile
    (each statement is a round trip through the event loop, tens of ms on a busy process)."""
    statement = select(
        func.count().filter(from_address),
        func.count().filter(for_email & from_address),
        func.count().filter(for_email),
    ).where(from_address | for_email, col(LoginFailure.attempted_at) >= since)
    address, pair, email = (await conn.execute(statement)).one()
    return int(address), int(pair), int(email)


async def _refusal(
    conn: AsyncConnection,
    since: datetime,
    *where: ColumnElement[bool],
    count: int,
    limit: int,
    window: timedelta,
    now: datetime,
    message: Message,
) -> RateLimited:
    """RateLimited, with the seconds until enough failures have left the window."""
    freed_by = (
        await conn.execute(
            select(LoginFailure.attempted_at)
            .where(*where, col(LoginFailure.attempted_at) >= since)
            .order_by(col(LoginFailure.attempted_at))
            .offset(count - limit)
            .limit(1)
        )
    ).scalar_one()
    retry_after = max(1, math.ceil((freed_by + window - now).total_seconds()))
    return RateLimited(message, retryAfterSeconds=retry_after)
