"""channel groups (smart routing): groups, their sessions and entries

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 10:20:00
"""

from collections.abc import Sequence

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Reserved in the chain for issue 16; filled in with its part."""


def downgrade() -> None:
    """Reserved in the chain for issue 16; filled in with its part."""
