"""The index schema through Alembic on SQLite: a new index, one made before migrations, `crawler migrate`."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import crawler_cmd, write_config
from sqlalchemy import create_engine, text

from crawler import migrations
from crawler.resources import recover
from crawler.store import Store, metadata

# The SQL the code before migrations ran on opening an index, besides metadata.create_all.
LEGACY_FTS = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5("
    "title, body, tokenize = 'unicode61 remove_diacritics 2')"
)


def _revision(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _legacy_index(db: Path) -> None:
    """An index as the pre-Alembic code made it: create_all, the FTS5 table, no alembic_version; one item."""
    engine = create_engine(f"sqlite:///{db}")
    metadata.create_all(
        engine, tables=[t for t in metadata.sorted_tables if t.name not in migrations.LATER_TABLES]
    )
    with engine.begin() as conn:
        conn.exec_driver_sql(LEGACY_FTS)
        conn.execute(
            text(
                "INSERT INTO items (path, url, source, title, fetched_at, filed_day, content_sha256, topics,"
                " snippet, scores) VALUES ('archive/2026/01/01/001-x.txt', 'http://example.org/x', 'news',"
                " 'Caracas talks resume', '2026-01-01T00:00:00+00:00', '2026-01-01', 'abc', '[]', 's', '{}')"
            )
        )
        conn.exec_driver_sql("INSERT INTO items_fts(rowid, title, body) VALUES (1, 'Caracas talks', 'body')")
        conn.exec_driver_sql(
            "INSERT INTO keys (key, item_id, status, source, seen_at)"
            " VALUES ('u:x', 1, 'filed', 'news', 'now')"
        )
    engine.dispose()


def test_the_head_constant_is_the_last_revision() -> None:
    assert migrations.head() == migrations.script_head()


def test_a_new_index_is_created_by_the_migrations(tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite3"
    store = Store(db)
    store.close()
    assert _revision(db) == [migrations.head()]
    with sqlite3.connect(db) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {t.name for t in metadata.sorted_tables} | {"items_fts", "alembic_version"} <= names


def test_an_index_made_before_migrations_is_stamped_and_keeps_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite3"
    _legacy_index(db)
    store = Store(db)  # opening an embedded index upgrades it: nothing to run by hand
    try:
        # Stamped at the first revision, then upgraded from there (0002 adds the day_sequences table).
        assert _revision(db) == [migrations.head()]
        assert "day_sequences" in _tables(db)
        assert store.has_path("archive/2026/01/01/001-x.txt")
        assert store.seen("u:x") == ("filed", 1, None)
        assert store.count_items() == 1
    finally:
        store.close()


def test_an_unknown_legacy_index_is_refused_not_recreated(tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite3"
    _legacy_index(db)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP INDEX ix_items_simhash")
        conn.execute("ALTER TABLE items DROP COLUMN simhash")  # an index older than the simhash column
    with pytest.raises(migrations.IndexUnusable, match="crawler reindex"):
        Store(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (1,)


def test_two_claims_of_one_key_on_sqlite(tmp_path: Path) -> None:
    store = Store(tmp_path / "index.sqlite3")
    try:
        assert store.claim(["u:a", "g:a"], "one")
        assert not store.claim(["u:b", "g:a"], "two")  # g:a is taken: nothing of this claim is kept
        assert store.known(["u:b"]) is None
        assert store.known(["g:a"]) == "claimed"
    finally:
        store.close()


def test_crawler_migrate_on_sqlite(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config", [])
    _legacy_index_path = cfg / "data" / "index.sqlite3"
    _legacy_index_path.parent.mkdir(parents=True)
    _legacy_index(_legacy_index_path)
    first = crawler_cmd("migrate", "--config", str(cfg))
    assert first.returncode == 0, first.stderr
    assert f"index migrated from revision {migrations.UNVERSIONED} to {migrations.head()}" in first.stdout
    assert _revision(_legacy_index_path) == [migrations.head()]
    again = crawler_cmd("migrate", "--config", str(cfg))
    assert again.returncode == 0, again.stderr
    assert f"index already at revision {migrations.head()}" in again.stdout


def test_a_claim_takes_over_keys_an_earlier_poll_only_remembered(tmp_path: Path) -> None:
    store = Store(tmp_path / "index.sqlite3")
    try:
        store.remember(["u:old"], "old", "a")  # too old for source a; source b backfills it
        store.remember(["u:gone"], "rejected", "a")  # a 404 then, an article now
        store.remember(["u:copy"], "duplicate", "a", 7)
        store.claim(["u:filing"], "c")
        # A lost claim gives back what it had taken over: the remembered statuses stay.
        assert not store.claim(["u:old", "u:filing"], "b")
        assert store.seen("u:old") == ("old", None, None)
        assert store.claim(["u:old", "u:gone", "u:copy", "g:b:1"], "b")
        assert store.seen("u:copy") == ("claimed", None, None)
        assert store.known(["u:gone"]) == "claimed"
    finally:
        store.close()


def test_stale_claims_are_released_and_recover_releases_all_of_an_embedded_index(tmp_path: Path) -> None:
    store = Store(tmp_path / "index.sqlite3")
    try:
        assert store.claim(["u:dead"], "a") and store.claim(["u:alive"], "a")
        long_ago = (datetime.now(UTC) - timedelta(minutes=30)).isoformat(timespec="seconds")
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE keys SET seen_at = :t WHERE key = 'u:dead'"), {"t": long_ago})
        assert store.release_stale_claims(timedelta(minutes=10)) == 1  # a process died while filing it
        assert store.seen("u:dead") is None and store.known(["u:alive"]) == "claimed"
        # The embedded index has one process: at its start, every claim is a leftover, whatever its age.
        recover(store, tmp_path / "data")
        assert store.seen("u:alive") is None
    finally:
        store.close()
