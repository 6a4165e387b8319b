"""Writing and reading audit events; writes join the caller's transaction."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from db.models import AuditEvent
from gql_api.logs import current_request_id
from gql_api.permissions import Operation, Principal, require

SUMMARY_MAX_LENGTH = 2000


async def record(
    db: AsyncSession,
    *,
    merchant_id: int,
    actor: str,
    action: str,
    summary: str,
    store_id: str | None = None,
    target_id: str | None = None,
) -> None:
    """Add an event to the current transaction: it commits or rolls back with the change."""
    db.add(
        AuditEvent(
            merchant_id=merchant_id,
            actor=actor[:300],
            action=action,
            store_id=store_id,
            target_id=target_id,
            summary=summary[:SUMMARY_MAX_LENGTH],
            request_id=current_request_id(),
        )
    )
    await db.flush()


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
        merchant_id=principal.merchant_id,
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
    statement = select(AuditEvent).where(col(AuditEvent.merchant_id) == principal.merchant_id)
    if store_id is not None:
        statement = statement.where(col(AuditEvent.store_id) == store_id)
    if action is not None:
        statement = statement.where(col(AuditEvent.action) == action)
    return statement
