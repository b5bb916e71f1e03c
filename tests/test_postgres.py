"""The index on a real PostgreSQL (a throwaway cluster, tests/pg_server.py): migrate, poll, search, reindex,
and two processes racing for one article's keys."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, Site, archived, article_html, crawler_cmd, lorem, rss, write_config
from pg_server import pg_url_fixture, postgres_fixture  # noqa: F401  (fixtures used by name)
from sqlalchemy import create_engine, text

from crawler import migrations
from crawler.store import Store


def _count(url: str, table: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def _publish(site: Site) -> None:
    entries = []
    for i, place in enumerate(("Caracas", "Pyongyang", "Havana")):
        path, title = f"/news/{i}.html", f"Talks resume in {place}"
        site.set(path, article_html(title, lorem(f"story {i} about {place}")))
        entries.append((path, title))
    site.set("/feed.xml", rss(site, entries), content_type="application/rss+xml")


def test_migrate_then_poll_search_and_reindex_on_postgres(site: Site, tmp_path: Path, pg_url: str) -> None:
    _publish(site)
    cfg = write_config(
        tmp_path / "config", [{"name": "news", "url": site.url("/feed.xml")}], {"database": pg_url}
    )
    # PostgreSQL is never migrated implicitly: before `crawler migrate`, commands say to run it.
    early = crawler_cmd("search", "Caracas", "--config", str(cfg))
    assert early.returncode == 1
    assert "run `crawler migrate`" in early.stderr

    migrated = crawler_cmd("migrate", "--config", str(cfg))
    assert migrated.returncode == 0, migrated.stderr
    assert f"index migrated from revision none (new index) to {migrations.head()}" in migrated.stdout

    polled = crawler_cmd("poll", "--config", str(cfg))
    assert polled.returncode == 0, polled.stderr
    assert "news: 3 new, 0 duplicate, 0 failed, 0 already known" in polled.stdout
    assert _count(pg_url, "items") == 3
    assert not (cfg / "data" / "index.sqlite3").exists()  # the index is in PostgreSQL, not beside the archive

    found = crawler_cmd("search", "Pyongyang", "--config", str(cfg))
    assert found.returncode == 0, found.stderr
    assert "Talks resume in Pyongyang" in found.stdout
    assert "[Pyongyang]" in found.stdout  # the snippet marks the match
    assert "Caracas" not in found.stdout
    assert "1 result(s)" in found.stderr

    # Reindex: the index is rebuilt from the folder alone (poll history starts afresh, as on SQLite).
    with create_engine(pg_url).begin() as conn:
        conn.execute(text("DELETE FROM items_fts"))
        conn.execute(text("DELETE FROM items WHERE title LIKE '%Havana%'"))
    rebuilt = crawler_cmd("reindex", "--config", str(cfg))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "index rebuilt from the archive: 3 item(s)" in rebuilt.stdout
    assert _count(pg_url, "items") == len(archived(cfg / "data")) == 3
    assert _count(pg_url, "polls") == 0
    again = crawler_cmd("search", "Havana", "--config", str(cfg))
    assert "Talks resume in Havana" in again.stdout
    # The rebuilt index is current and complete: a second poll finds everything known.
    second = crawler_cmd("poll", "--config", str(cfg))
    assert "news: 3" not in second.stdout.replace("already known", "")
    assert _count(pg_url, "items") == 3


def test_opening_a_postgres_index_behind_names_crawler_migrate(pg_url: str) -> None:
    with pytest.raises(migrations.OutOfDate, match="crawler migrate"):
        Store(pg_url)


RACER = """
import sys, time
from pathlib import Path
from crawler.store import Store

url, name, go, n = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
store = Store(url)
deadline = time.monotonic() + 20
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.005)
won = [i for i in range(n) if store.claim([f"u:article-{i}", f"g:news:{i}"], name)]
print(" ".join(map(str, won)))
"""


def test_two_processes_racing_for_the_same_keys_exactly_one_wins(tmp_path: Path, pg_url: str) -> None:
    assert crawler_cmd_migrate(pg_url, tmp_path) == 0
    go, n = tmp_path / "go", 200
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, pg_url, name, str(go), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for name in ("one", "two")
    ]
    time.sleep(1.0)  # both connected and waiting
    go.touch()
    results = []
    for racer in racers:
        out, err = racer.communicate(timeout=60)
        assert racer.returncode == 0, err
        results.append({int(i) for i in out.split()})
    assert results[0] | results[1] == set(range(n))
    assert not results[0] & results[1]  # every article claimed by exactly one process
    assert _count(pg_url, "keys") == 2 * n


def crawler_cmd_migrate(url: str, tmp_path: Path) -> int:
    cfg = write_config(tmp_path / "config", [], {"database": url})
    return crawler_cmd("migrate", "--config", str(cfg)).returncode
