"""client addresses on throttling rows

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "client_address", sa.String(length=64), nullable=False, server_default="unknown"
            )
        )
        batch_op.create_index(
            "ix_login_failures_client_at", ["client_address", "attempted_at"], unique=False
        )
    with op.batch_alter_table("api_secret_failures", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "client_address", sa.String(length=64), nullable=False, server_default="unknown"
            )
        )
        batch_op.create_index(
            "ix_api_secret_failures_key_client_at",
            ["key_id", "client_address", "attempted_at"],
            unique=False,
        )
    # The default only filled the rows that existed; new rows always name their address.
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.alter_column("client_address", server_default=None)
    with op.batch_alter_table("api_secret_failures", schema=None) as batch_op:
        batch_op.alter_column("client_address", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("api_secret_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_api_secret_failures_key_client_at")
        batch_op.drop_column("client_address")
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_login_failures_client_at")
        batch_op.drop_column("client_address")
