"""API secret verification tags; throttling rows say whether argon2 ran

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing secrets get their tag on their next successful verify (the plaintext is needed).
    with op.batch_alter_table("api_secrets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verify_tag", sa.String(length=8), nullable=True))
    # Every failure recorded so far had run argon2.
    with op.batch_alter_table("api_secret_failures", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ran_argon2", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("api_secret_failures", schema=None) as batch_op:
        batch_op.alter_column("ran_argon2", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("api_secret_failures", schema=None) as batch_op:
        batch_op.drop_column("ran_argon2")
    with op.batch_alter_table("api_secrets", schema=None) as batch_op:
        batch_op.drop_column("verify_tag")
