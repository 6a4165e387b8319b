"""invitations: an index for the newest-first pages of a merchant's invitations (status)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 10:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Status needs no column: it follows from accepted_at, revoked_at and expires_at."""
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.create_index("ix_invitations_merchant_id_id", ["merchant_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_index("ix_invitations_merchant_id_id")
