"""sessions: last seen, client address, user agent

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 10:20:00
"""

from collections.abc import Sequence

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Reserved in the chain for issue 16; filled in with its part."""


def downgrade() -> None:
    """Reserved in the chain for issue 16; filled in with its part."""
