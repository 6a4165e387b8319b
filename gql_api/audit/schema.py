"""Node lookup for audit events (OWNER and ADMIN only)."""

from __future__ import annotations

from sqlmodel import col

from db.models import AuditEvent as AuditEventRow
from gql_api.audit import service
from gql_api.audit.types import AuditEvent
from gql_api.context import Info


async def resolve_audit_event_node(info: Info, pk: int) -> AuditEvent | None:
    principal = info.context.require_principal()
    statement = service.events_query(principal, store_id=None, action=None).where(
        col(AuditEventRow.id) == pk
    )
    async with info.context.db() as db:
        row = (await db.exec(statement)).first()
    return AuditEvent.from_row(row) if row else None


NODE_RESOLVERS = {"AuditEvent": resolve_audit_event_node}
