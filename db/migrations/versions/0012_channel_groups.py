"""channel groups (smart routing): groups, their sessions and entries

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import db.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "channel_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_group_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("store_pk", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("mode", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("created_at", db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_channel_groups_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["store_pk"], ["stores.id"], name=op.f("fk_channel_groups_store_pk_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_groups")),
        sa.UniqueConstraint("channel_group_id", name=op.f("uq_channel_groups_channel_group_id")),
    )
    with op.batch_alter_table("channel_groups", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_channel_groups_merchant_id"), ["merchant_id"], unique=False
        )
        batch_op.create_index("ix_channel_groups_store_pk_id", ["store_pk", "id"], unique=False)
        batch_op.create_index("uq_channel_groups_store_name", ["store_pk", "name"], unique=True)

    op.create_table(
        "channel_group_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_pk", sa.Integer(), nullable=False),
        sa.Column("begin_at", db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_pk"],
            ["channel_groups.id"],
            name=op.f("fk_channel_group_sessions_group_pk_channel_groups"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_group_sessions")),
    )
    with op.batch_alter_table("channel_group_sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_channel_group_sessions_group_begin", ["group_pk", "begin_at"], unique=False
        )

    op.create_table(
        "channel_group_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_pk", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("channel_pk", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_pk"],
            ["channels.id"],
            name=op.f("fk_channel_group_entries_channel_pk_channels"),
        ),
        sa.ForeignKeyConstraint(
            ["session_pk"],
            ["channel_group_sessions.id"],
            name=op.f("fk_channel_group_entries_session_pk_channel_group_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_group_entries")),
    )
    with op.batch_alter_table("channel_group_entries", schema=None) as batch_op:
        batch_op.create_index("ix_channel_group_entries_channel_pk", ["channel_pk"], unique=False)
        batch_op.create_index(
            "uq_channel_group_entries_session_position", ["session_pk", "position"], unique=True
        )


def downgrade() -> None:
    op.drop_table("channel_group_entries")
    op.drop_table("channel_group_sessions")
    op.drop_table("channel_groups")
