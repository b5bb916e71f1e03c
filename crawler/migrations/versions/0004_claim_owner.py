"""Who holds a claim on a key: the filing that took it (a token), so that only that filing can file it.

Claims are released by time (a worker presumed dead after queue_claim_after). A filer that only stalled
(a paused machine, a hung network mount) must not file the item when it wakes after its claim was released,
and perhaps taken by another: it files only if the claims are still its own (store.Store.add_item).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # An index stamped at 0001 from tables made by a newer metadata may have the column already.
    if "owner" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("keys")}:
        op.add_column("keys", sa.Column("owner", sa.String(), nullable=True))


def downgrade() -> None:
    op.drop_column("keys", "owner")
