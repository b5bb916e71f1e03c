"""Who writes each day's digest, when several scheduler nodes share the index.

Only the leading scheduler writes digests, but leadership can change hands between the moment a digest falls
due and the moment it is written (a leader dies, or loses its database session and keeps running for a few
seconds before it notices). The row per day, claimed with INSERT ... ON CONFLICT, is the fence: whoever
claims a day writes it, and a day marked written is never written again. Made on both engines so the schema
is one; the embedded mode (one process) uses it the same way.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digests",
        sa.Column("day", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("claimed_at", sa.String(), nullable=False),
        sa.Column("written_at", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("day"),
    )


def downgrade() -> None:
    op.drop_table("digests")
