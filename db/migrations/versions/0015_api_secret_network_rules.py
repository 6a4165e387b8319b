"""api secrets: network allowlist rules

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing secrets have no rules: any address, as before.
    with op.batch_alter_table("api_secrets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("network_rules", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column(
                "network_refusal_audited_at", db.types.UTCDateTime(timezone=True), nullable=True
            )
        )
    with op.batch_alter_table("api_secrets", schema=None) as batch_op:
        batch_op.alter_column("network_rules", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("api_secrets", schema=None) as batch_op:
        batch_op.drop_column("network_refusal_audited_at")
        batch_op.drop_column("network_rules")
