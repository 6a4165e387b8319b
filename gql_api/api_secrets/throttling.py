"""Throttling API-secret verification, decided in the database so every process agrees.

- A secret this process has verified needs no argon2 and is never throttled (see auth.py).
- A presented secret whose verification tag (api_keys.verify_tag) differs from the stored one
  never runs argon2. It counts as a failure of its (key id, client address: an IPv6 address
  counts as its /64, see gql_api.client_address.throttling_key); once that pair has
  MAX_FAILURES failures in FAILURE_WINDOW, it is refused with RATE_LIMITED instead.
- Before argon2 runs, the attempt is written first (claimed) under a per-key lock. It is refused
  when the key already has MAX_VERIFICATIONS argon2 runs started and not succeeded in the window,
  from any address: concurrent requests included, no more runs than that are ever started.
  A success deletes its row, so it never uses up budget.
- Only a secret whose tag matches (the genuine one; a guess matches once in 2**32) reaches
  argon2, so guesses cannot use up that budget, and a matching secret is not held to its
  address's failures: guessing from the integration's own address (a shared NAT) cannot lock it
  out either. A secret issued before tags existed has none until its first successful verify;
  until then every attempt reaches the claim and is held to both limits.

Windows and pruning are times of the database's clock (PostgreSQL's statement_timestamp(),
read with the per-key lock, in the same statement), so processes on hosts whose clocks
disagree count the same attempts and prune none still in another's window (SQLite: the one
machine's clock). See db.clock.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import ColumnElement, Delete, delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col

from db.engine import independent_write
from db.models import ApiSecretFailure, AuditEvent
from db.types import utcnow
from gql_api.audit import service as audit
from gql_api.client_address import throttling_key
from gql_api.errors import RateLimited
from gql_api.i18n import _
from gql_api.ids import global_id
from gql_api.logs import current_request_id

logger = logging.getLogger("gql_api.api_secrets")

FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES = 10  # per (key id, client address) and window, then RATE_LIMITED
MAX_VERIFICATIONS = 10  # argon2 runs started and not succeeded, per key id and window
PRUNE_BATCH = 100
PRUNE_AFTER = FAILURE_WINDOW * 4

_FAILURES = ApiSecretFailure.__table__  # type: ignore[attr-defined]


class Secret(Protocol):
    """What throttling needs of an API secret (its row, or what authentication read of it)."""

    @property
    def id(self) -> int | None: ...
    @property
    def key_id(self) -> str: ...
    @property
    def merchant_id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def hint(self) -> str: ...


async def claim_verification(
    engine: AsyncEngine, secret: Secret, *, client_address: str, tag_matched: bool
) -> int:
    """Write the attempt before argon2 runs; its row id (deleted on success, see `succeeded`).

    `tag_matched`: the stored tag matched (False when the secret has no tag yet).
    RateLimited, with nothing written, when the key or the address is over its limit.
    """
    # Committed on its own, before argon2 runs: the attempt counts although the request fails.
    async with independent_write(engine) as conn:
        now = await _lock(conn, secret.key_id)
        if not tag_matched:
            await _refuse_if_over(conn, now, MAX_FAILURES, *_of(secret.key_id, client_address))
        started = (
            col(ApiSecretFailure.key_id) == secret.key_id,
            col(ApiSecretFailure.ran_argon2).is_(True),
        )
        await _refuse_if_over(conn, now, MAX_VERIFICATIONS, *started)
        inserted = await conn.execute(
            insert(_FAILURES).values(
                key_id=secret.key_id,
                client_address=throttling_key(client_address),
                ran_argon2=True,
                attempted_at=now,
            )
        )
        attempt_id = inserted.inserted_primary_key
    assert attempt_id is not None
    return int(attempt_id[0])


def forget_attempt(attempt_id: int) -> Delete:
    """The statement that deletes a successful attempt's row (run in the caller's transaction)."""
    return delete(_FAILURES).where(_FAILURES.c.id == attempt_id)


async def refuse_by_tag(engine: AsyncEngine, secret: Secret, *, client_address: str) -> None:
    """Record a failure refused by its tag (no argon2); RateLimited when its address is over
    the limit already (nothing is written then). The caller refuses it as INVALID."""
    # Committed on its own: the failure counts although the request then fails.
    async with independent_write(engine) as conn:
        now = await _lock(conn, secret.key_id)
        await _refuse_if_over(conn, now, MAX_FAILURES, *_of(secret.key_id, client_address))
        await conn.execute(
            insert(_FAILURES).values(
                key_id=secret.key_id,
                client_address=throttling_key(client_address),
                ran_argon2=False,
                attempted_at=now,
            )
        )
        await _after_failure(conn, secret, now)
    _log_failure(secret, client_address, "verification tag differs")


async def record_failed_verification(
    engine: AsyncEngine, secret: Secret, *, client_address: str
) -> None:
    """argon2 said no: the claimed row stays, as a failure."""
    # Committed on its own: the failure's audit event stays although the request then fails.
    async with independent_write(engine) as conn:
        now = await _lock(conn, secret.key_id)
        await _after_failure(conn, secret, now)
    _log_failure(secret, client_address, "argon2 verify failed")


async def _lock(conn: AsyncConnection, key_id: str) -> datetime:
    """Take the key's lock; now, by the database's clock (no extra round trip on PostgreSQL).

    Concurrent claims for one key decide one at a time; SQLite writes one at a time anyway."""
    if conn.dialect.name != "postgresql":
        return utcnow()
    locked = await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key)), statement_timestamp()"),
        {"key": f"apisecret:{key_id}"},
    )
    now = locked.one()[1]
    assert isinstance(now, datetime)
    return now.astimezone(UTC)


def _of(key_id: str, client_address: str) -> tuple[ColumnElement[bool], ...]:
    return (
        col(ApiSecretFailure.key_id) == key_id,
        col(ApiSecretFailure.client_address) == throttling_key(client_address),
    )


async def _refuse_if_over(
    conn: AsyncConnection, now: datetime, limit: int, *where: ColumnElement[bool]
) -> None:
    """RateLimited when `limit` rows matching `where` are in the window."""
    count, oldest = (
        await conn.execute(
            select(func.count(), func.min(col(ApiSecretFailure.attempted_at))).where(
                *where, col(ApiSecretFailure.attempted_at) > now - FAILURE_WINDOW
            )
        )
    ).one()
    if count >= limit:
        retry_after = FAILURE_WINDOW - (now - oldest) if oldest is not None else FAILURE_WINDOW
        raise RateLimited(
            _("Too many failed attempts with this API secret; try again later."),
            retryAfterSeconds=max(1, int(retry_after.total_seconds())),
        )


async def _after_failure(conn: AsyncConnection, secret: Secret, now: datetime) -> None:
    """Prune old rows (of every key), and audit the key's failures at 5, 10, 20, 40 …"""
    # Ids grow with time: the oldest rows are among the lowest ids, a few index entries away,
    # where a search by age alone would scan the whole table on every failure.
    oldest = select(_FAILURES.c.id).order_by(_FAILURES.c.id).limit(PRUNE_BATCH)
    await conn.execute(
        delete(_FAILURES).where(
            _FAILURES.c.id.in_(oldest), _FAILURES.c.attempted_at < now - PRUNE_AFTER
        )
    )
    count = (
        await conn.execute(
            select(func.count()).where(
                col(ApiSecretFailure.key_id) == secret.key_id,
                col(ApiSecretFailure.attempted_at) > now - FAILURE_WINDOW,
            )
        )
    ).scalar_one()
    if audit.failures_worth_an_event(count):
        assert secret.id is not None
        await conn.execute(
            insert(AuditEvent.__table__).values(  # type: ignore[attr-defined]
                merchant_id=secret.merchant_id,
                actor="unknown caller",
                action="api_secret.failed_use",
                target_id=global_id("ApiSecret", secret.id),
                summary=f"{count} failed attempts to use API secret “{secret.name}” "
                f"({secret.hint}) within {int(FAILURE_WINDOW.total_seconds() // 60)} minutes",
                request_id=current_request_id(),
                occurred_at=now,
            )
        )


def _log_failure(secret: Secret, client_address: str, why: str) -> None:
    logger.warning(
        "failed API secret use",
        extra={"key_id": secret.key_id, "client_address": client_address, "reason": why},
    )
