"""webhook events: the outbox of 결제알림 delivery; deliveries name their event

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import db.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("store_pk", sa.Integer(), nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("module_version", sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
        sa.Column("mode", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status_reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("published_at", db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_trigger", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("locked_until", db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_token", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("manual_resend_count", sa.Integer(), nullable=False),
        sa.Column("succeeded_at", db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_webhook_events_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["store_pk"], ["stores.id"], name=op.f("fk_webhook_events_store_pk_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
    )
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_events_merchant_id"), ["merchant_id"], unique=False
        )
        batch_op.create_index(
            "uq_webhook_events_store_event", ["store_pk", "event_id"], unique=True
        )
        batch_op.create_index("ix_webhook_events_due", ["next_attempt_at"], unique=False)
        batch_op.create_index("ix_webhook_events_store_listing", ["store_pk", "id"], unique=False)
        batch_op.create_index("ix_webhook_events_published_at", ["published_at"], unique=False)

    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_pk", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("attempt_number", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_webhook_deliveries_event_pk_webhook_events"),
            "webhook_events",
            ["event_pk"],
            ["id"],
        )
        batch_op.create_index("ix_webhook_deliveries_event", ["event_pk", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_event")
        batch_op.drop_constraint(
            batch_op.f("fk_webhook_deliveries_event_pk_webhook_events"), type_="foreignkey"
        )
        batch_op.drop_column("attempt_number")
        batch_op.drop_column("event_pk")
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_events_published_at")
        batch_op.drop_index("ix_webhook_events_store_listing")
        batch_op.drop_index("ix_webhook_events_due")
        batch_op.drop_index("uq_webhook_events_store_event")
        batch_op.drop_index(batch_op.f("ix_webhook_events_merchant_id"))
    op.drop_table("webhook_events")
