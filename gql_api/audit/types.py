"""GraphQL type of an audit event."""

from __future__ import annotations

from datetime import datetime

import strawberry

from db.models import AuditEvent as AuditEventRow
from gql_api.node import Node, to_global_id


@strawberry.type(description="One change recorded in the audit log. Never contains a secret.")
class AuditEvent(Node):
    action: str = strawberry.field(description='What happened, e.g. "store.create".')
    actor: str = strawberry.field(description="Who did it: a user's email or an API secret.")
    store_id: str | None = strawberry.field(description="storeId of the store concerned.")
    target_id: str | None = strawberry.field(description="Global ID or key of the object.")
    summary: str = strawberry.field(description="One line in words, for a person to read.")
    occurred_at: datetime = strawberry.field(description="When it happened (RFC 3339, UTC).")

    @classmethod
    def from_row(cls, row: AuditEventRow) -> AuditEvent:
        assert row.id is not None
        return cls(
            id=to_global_id("AuditEvent", row.id),
            action=row.action,
            actor=row.actor,
            store_id=row.store_id,
            target_id=row.target_id,
            summary=row.summary,
            occurred_at=row.occurred_at,
        )
