"""api secrets: an index for the pages of a store's secrets

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 10:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_secrets", schema=None) as batch_op:
        batch_op.create_index("ix_api_secrets_store_pk_id", ["store_pk", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_secrets", schema=None) as batch_op:
        batch_op.drop_index("ix_api_secrets_store_pk_id")
