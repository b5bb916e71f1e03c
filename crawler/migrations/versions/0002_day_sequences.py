"""The per-day filing sequence (NNN of archive/YYYY-MM-DD/NNN_...), allocated in the database.

Several processes filing into one shared archive cannot each take "one more than the highest file in the
folder": two would take the same number. They take it from this table instead, with one atomic upsert
(store.Store.next_sequence). Made on both engines so the schema is one; the embedded SQLite mode (one writer)
still numbers from the folder.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "day_sequences",
        sa.Column("day", sa.String(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )


def downgrade() -> None:
    op.drop_table("day_sequences")
