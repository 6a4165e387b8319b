"""api secrets: network allowlist rules

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 10:20:00
"""

from collections.abc import Sequence

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Reserved in the chain for issue 16; filled in with its part."""


def downgrade() -> None:
    """Reserved in the chain for issue 16; filled in with its part."""
