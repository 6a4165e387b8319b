"""Writing and reading audit events; writes join the caller's transaction."""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from db.models import AuditEvent
from db.types import utcnow
from gql_api.logs import current_request_id
from gql_api.permissions import Operation, Principal, require

SUMMARY_MAX_LENGTH = 2000
FAILURES_FIRST_AUDITED = 5  # failed log-ins or API-secret uses of one account or key


def failures_worth_an_event(count: int) -> bool:
    """Whether the count-th failure within a window writes an audit event: at 5, 10, 20, 40 …

    Doubling keeps the log readable under a flood (a million guesses write 18 events, each
    saying how many there were by then) where "every 5th" would bury the merchant's audit log.
    """
    if count < FAILURES_FIRST_AUDITED or count % FAILURES_FIRST_AUDITED:
        return False
    multiple = count // FAILURES_FIRST_AUDITED
    return multiple & (multiple - 1) == 0


async def record(
    db: AsyncSession,
    *,
    merchant_pk: int,
    actor: str,
    action: str,
    summary: str,
    store_id: str | None = None,
    target_id: str | None = None,
) -> None:
    """Add an event to the current transaction: it commits or rolls back with the change."""
    db.add(
        AuditEvent(
            merchant_id=merchant_pk,
            actor=actor[:300],
            action=action,
            store_id=store_id,
            target_id=target_id,
            summary=summary[:SUMMARY_MAX_LENGTH],
            request_id=current_request_id(),
        )
    )
    await db.flush()


async def record_on(
    conn: AsyncConnection,
    *,
    merchant_pk: int,
    actor: str,
    action: str,
    summary: str,
    target_id: str | None = None,
) -> None:
    """Add an event to the transaction of `conn` (db.engine.independent_write): for an event
    that must stay although the request fails, such as failed attempts."""
    await conn.execute(
        insert(AuditEvent).values(
            merchant_id=merchant_pk,
            actor=actor[:300],
            action=action,
            target_id=target_id,
            summary=summary[:SUMMARY_MAX_LENGTH],
            request_id=current_request_id(),
            occurred_at=utcnow(),
        )
    )


async def record_by(
    db: AsyncSession,
    principal: Principal,
    action: str,
    summary: str,
    *,
    store_id: str | None = None,
    target_id: str | None = None,
) -> None:
    await record(
        db,
        merchant_pk=principal.merchant_pk,
        actor=principal.label,
        action=action,
        summary=summary,
        store_id=store_id,
        target_id=target_id,
    )


def events_query(
    principal: Principal, *, store_id: str | None, action: str | None
) -> SelectOfScalar[AuditEvent]:
    """The merchant's events (OWNER and ADMIN only), optionally for one store or action."""
    require(principal, Operation.AUDIT_READ)
    statement = select(AuditEvent).where(col(AuditEvent.merchant_id) == principal.merchant_pk)
    if store_id is not None:
        statement = statement.where(col(AuditEvent.store_id) == store_id)
    if action is not None:
        statement = statement.where(col(AuditEvent.action) == action)
    return statement
