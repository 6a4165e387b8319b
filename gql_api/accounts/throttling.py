"""Throttling of log-in attempts, so that guessing can never lock an account's owner out.

Refusals are keyed by the client address (gql_api.client_address): one email from one address
(LOGIN_MAX_FAILURES), and one address over any emails (LOGIN_MAX_FAILURES_PER_ADDRESS). Across
all addresses an email's failures only slow its attempts down, by a bounded delay past
LOGIN_EMAIL_SLOWDOWN_AFTER; they never refuse them. Every attempt is recorded as a failure
before the password is checked (concurrent guesses count too), and a success deletes the
failures of its (email, address).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from sqlalchemy import ColumnElement, delete, func, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import begin_write
from db.models import LoginFailure
from db.types import utcnow
from gql_api.errors import RateLimited
from gql_api.settings import Settings

PRUNE_BATCH = 100
FIRST_DELAY_SECONDS = 0.25
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
    delay_seconds: float  # to wait, with no connection held, before checking the password


async def claim_attempt(
    db: AsyncSession, *, settings: Settings, email: str, client_address: str
) -> Claim:
    """Record this attempt as a failure up front, or refuse it (RateLimited) when its address,
    or its email from this address, has too many failures within the window."""
    now = utcnow()
    window = timedelta(minutes=settings.login_failure_window_minutes)
    since = now - window
    await begin_write(db)
    if db.bind is not None and db.bind.dialect.name == "postgresql":
        # One attempt per address and per email at a time decides; SQLite writes one at a time.
        connection = await db.connection()
        await connection.execute(
            text(
                "SELECT pg_advisory_xact_lock(:address_lock, hashtext(:address)), "
                "pg_advisory_xact_lock(:email_lock, hashtext(:email))"
            ),
            {
                "address_lock": _ADDRESS_LOCK,
                "address": client_address,
                "email_lock": _EMAIL_LOCK,
                "email": email,
            },
        )
    await _prune(db, before=since)

    from_address = col(LoginFailure.client_address) == client_address
    for_email = col(LoginFailure.email) == email
    address_failures = await _count(db, since, from_address)
    if address_failures >= settings.login_max_failures_per_address:
        await _refuse(
            db,
            since,
            from_address,
            count=address_failures,
            limit=settings.login_max_failures_per_address,
            window=window,
            now=now,
            message="Too many failed log-in attempts from this address; try again later.",
        )
    pair_failures = await _count(db, since, for_email, from_address)
    if pair_failures >= settings.login_max_failures:
        await _refuse(
            db,
            since,
            for_email,
            from_address,
            count=pair_failures,
            limit=settings.login_max_failures,
            window=window,
            now=now,
            message="Too many failed log-in attempts for this email from this address; "
            "try again later.",
        )
    email_failures = await _count(db, since, for_email) + 1
    db.add(LoginFailure(email=email, client_address=client_address, attempted_at=now))
    await db.commit()
    return Claim(email_failures=email_failures, delay_seconds=delay(settings, email_failures))


def delay(settings: Settings, email_failures: int) -> float:
    """0 up to the per-email ceiling, then 0.25 s doubling per failure, at most the setting."""
    excess = email_failures - settings.login_email_slowdown_after
    if excess <= 0:
        return 0.0
    return min(
        settings.login_email_max_delay_seconds, FIRST_DELAY_SECONDS * 2.0 ** min(excess - 1, 20)
    )


async def forget_failures(db: AsyncSession, *, email: str, client_address: str) -> None:
    """After a success: the failures of this (email, address), not those from elsewhere."""
    await db.exec(
        delete(LoginFailure).where(
            col(LoginFailure.email) == email, col(LoginFailure.client_address) == client_address
        )
    )


def email_for_logs(email: str) -> dict[str, str]:
    """The email as log fields: its domain, and a keyed hash that names no one outside this
    process. The email itself is personal data and stays out of the logs."""
    digest = hmac.new(_EMAIL_REF_KEY, email.encode(), hashlib.sha256).hexdigest()
    return {"email_domain": email.rpartition("@")[2][:100], "email_ref": digest[:16]}


async def _prune(db: AsyncSession, *, before: datetime) -> None:
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
    await db.exec(
        delete(LoginFailure).where(
            col(LoginFailure.id).in_(oldest), col(LoginFailure.attempted_at) < before
        )
    )


async def _count(db: AsyncSession, since: datetime, *where: ColumnElement[bool]) -> int:
    statement = select(func.count()).where(*where, col(LoginFailure.attempted_at) >= since)
    return int((await db.exec(statement)).one())


async def _refuse(
    db: AsyncSession,
    since: datetime,
    *where: ColumnElement[bool],
    count: int,
    limit: int,
    window: timedelta,
    now: datetime,
    message: str,
) -> NoReturn:
    """Raise RateLimited, with the seconds until enough failures have left the window."""
    freed_by = (
        await db.exec(
            select(LoginFailure.attempted_at)
            .where(*where, col(LoginFailure.attempted_at) >= since)
            .order_by(col(LoginFailure.attempted_at))
            .offset(count - limit)
            .limit(1)
        )
    ).one()
    await db.commit()
    retry_after = max(1, math.ceil((freed_by + window - now).total_seconds()))
    raise RateLimited(message, retryAfterSeconds=retry_after)
