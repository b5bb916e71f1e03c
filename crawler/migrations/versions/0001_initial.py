"""The index as it was before migrations: items, keys, reports, bands, sources, polls, meta, full text.

The full-text part depends on the engine. SQLite: an FTS5 table (bm25; accents folded, so "Nicolas" finds
"Nicolás"). PostgreSQL: a plain table holding title and body with a generated tsvector (the built-in
'simple' configuration: no stemming, no stop words, no extension needed) and a GIN index on it.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("guid", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("published", sa.String(), nullable=True),
        sa.Column("fetched_at", sa.String(), nullable=False),
        sa.Column("filed_day", sa.String(), nullable=False),
        sa.Column("content_sha256", sa.String(), nullable=False),
        sa.Column("topics", sa.Text(), nullable=False),
        sa.Column("language", sa.String(), nullable=True),
        sa.Column("snippet", sa.Text(), nullable=False),
        sa.Column("scores", sa.Text(), nullable=False),
        sa.Column("revision_of", sa.String(), nullable=True),
        sa.Column("simhash", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("path"),
    )
    for column in ("content_sha256", "filed_day", "simhash", "source"):
        op.create_index(f"ix_items_{column}", "items", [column], unique=False)
    op.create_table(
        "keys",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("seen_at", sa.String(), nullable=False),
        sa.Column("version", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "meta",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "polls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("day", sa.String(), nullable=False),
        sa.Column("finished_at", sa.String(), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("duplicate", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("failures", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("day", "finished_at", "source"):
        op.create_index(f"ix_polls_{column}", "polls", [column], unique=False)
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("fetched_at", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reports_item_id", "reports", ["item_id"], unique=False)
    op.create_table(
        "simbands",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("band", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(), nullable=False),
    )
    op.create_index("simbands_lookup", "simbands", ["band", "value", "day"], unique=False)
    op.create_table(
        "sources",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("last_poll", sa.String(), nullable=True),
        sa.Column("last_success", sa.String(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("failure_weight", sa.Float(), nullable=False),
        sa.Column("next_poll", sa.String(), nullable=True),
        sa.Column("interval", sa.Integer(), nullable=True),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("body_sha256", sa.String(), nullable=True),
        sa.Column("redirected_to", sa.Text(), nullable=True),
        sa.Column("discovered", sa.Text(), nullable=True),
        sa.Column("disabled", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    _full_text()


def _full_text() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE items_fts USING fts5("
            "title, body, tokenize = 'unicode61 remove_diacritics 2')"
        )
        return
    op.create_table(
        "items_fts",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("item_id"),
    )
    # Weighted like SQLite's bm25(5, 1): a match in the title ranks higher (ts_rank's weights by label).
    op.execute(
        "ALTER TABLE items_fts ADD COLUMN document tsvector GENERATED ALWAYS AS ("
        "setweight(to_tsvector('simple'::regconfig, title), 'A') || "
        "setweight(to_tsvector('simple'::regconfig, body), 'D')) STORED"
    )
    op.execute("CREATE INDEX items_fts_document ON items_fts USING gin (document)")


def downgrade() -> None:
    for table in ("items_fts", "sources", "simbands", "reports", "polls", "meta", "keys", "items"):
        op.drop_table(table)
