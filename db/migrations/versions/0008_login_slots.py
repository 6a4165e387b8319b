"""log-in turns per email; addresses that have logged in

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import db.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("not_before", db.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_login_failures_email_not_before", ["email", "not_before"], unique=False
        )
    op.create_table(
        "login_known_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("client_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("last_success_at", db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_known_addresses")),
    )
    with op.batch_alter_table("login_known_addresses", schema=None) as batch_op:
        batch_op.create_index(
            "uq_login_known_addresses_email_client", ["email", "client_key"], unique=True
        )
        batch_op.create_index(
            "ix_login_known_addresses_last_success_at", ["last_success_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("login_known_addresses", schema=None) as batch_op:
        batch_op.drop_index("ix_login_known_addresses_last_success_at")
        batch_op.drop_index("uq_login_known_addresses_email_client")
    op.drop_table("login_known_addresses")
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_login_failures_email_not_before")
        batch_op.drop_column("not_before")
