"""The index on a real PostgreSQL (a throwaway cluster, tests/pg_server.py): migrate, poll, search, reindex,
two processes racing for one article's keys, and four filing the same articles."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
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
    outputs = _race(RACER, [[pg_url, name, str(go), str(n)] for name in ("one", "two")], go, settle=1.0)
    results = [{int(i) for i in out.split()} for out in outputs]
    assert results[0] | results[1] == set(range(n))
    assert not results[0] & results[1]  # every article claimed by exactly one process
    assert _count(pg_url, "keys") == 2 * n


def _race(script: str, argv: list[list[str]], go: Path, settle: float = 1.5) -> list[str]:
    """Start one process per argv running `script`, let them all reach the start line, release them at
    once (the file `go`), and return each one's stdout; any that fails fails the test with its stderr."""
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for args in argv
    ]
    time.sleep(settle)  # all started and waiting
    go.touch()
    outputs = []
    for racer in racers:
        out, err = racer.communicate(timeout=90)
        assert racer.returncode == 0, err
        outputs.append(out)
    return outputs


def crawler_cmd_migrate(url: str, tmp_path: Path) -> int:
    cfg = write_config(tmp_path / "config", [], {"database": url})
    return crawler_cmd("migrate", "--config", str(cfg)).returncode


FILER = """
import json, sys, time
from pathlib import Path
from crawler import dedup
from crawler.config import load_config
from crawler.filing import Candidate, file_article
from crawler.models import Article, FeedItem
from crawler.resources import Resources, open_store
from crawler.topics import compile_topics

cfg, name, go, n = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
config = load_config(cfg)
store = open_store(config)
res = Resources(config, store, None, None, None, compile_topics(config.topics))
source = next(s for s in config.sources if s.name == name)
todo = []
for i in range(n):
    url = f"https://example.org/news/{i}.html"  # every source carries the same stories, same text
    words = " ".join(f"w{i}x{j}" for j in range(80))
    art = Article(f"Story {i}", (f"Story {i} begins. {words}", "The end."))
    keys = [dedup.guid_key(name, str(i)), dedup.url_key(url)]
    todo.append(Candidate(source, FeedItem(url, guid=str(i), title=art.title), url, art, keys, None))
deadline = time.monotonic() + 20
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.005)
print(json.dumps([file_article(res, c) for c in todo]))
store.close()
"""


def test_four_processes_filing_the_same_articles_file_each_once(tmp_path: Path, pg_url: str) -> None:
    """Four processes sharing the index and the archive file the same 100 stories at the same moment."""
    names, n = ["one", "two", "three", "four"], 100
    cfg = write_config(
        tmp_path / "config",
        [{"name": s, "url": f"https://example.org/{s}.xml"} for s in names],
        {"database": pg_url},
    )
    assert crawler_cmd("migrate", "--config", str(cfg)).returncode == 0
    go = tmp_path / "go"
    outputs = _race(FILER, [[str(cfg), name, str(go), str(n)] for name in names], go)
    outcomes = [json.loads(out) for out in outputs]
    new = [path for each in outcomes for kind, path in each if kind == "new"]
    assert len(new) == len(set(new)) == n  # every story filed by exactly one process
    # The losers: duplicates of the item filed, or pending while its winner was still writing it.
    losers = sum(kind in ("duplicate", "pending") for each in outcomes for kind, _ in each)
    assert losers == (len(names) - 1) * n
    files = archived(cfg / "data")
    assert len(files) == n and sorted(str(p.relative_to(cfg / "data")) for p in files) == sorted(new)
    assert _count(pg_url, "items") == n
    # The day's numbers come from the index: unique, and without gaps (a number is only taken after a won
    # claim; a gap would only be left by a process dying between taking a number and writing the sidecar).
    numbers = sorted(int(p.name.split("_")[0]) for p in files)
    assert numbers == list(range(1, n + 1))
    # No claim is left behind; each story's copies from the other sources are on the item filed.
    assert _count(pg_url, "keys WHERE status = 'claimed'") == 0
    assert _count(pg_url, "keys WHERE key LIKE 'content:%' AND status = 'filed'") == n
    assert _count(pg_url, "reports") <= (len(names) - 1) * n


def test_the_day_sequence_is_seeded_from_the_folder_then_counted_in_the_index(
    tmp_path: Path, pg_url: str
) -> None:
    assert crawler_cmd_migrate(pg_url, tmp_path) == 0
    store = Store(pg_url)
    try:
        assert store.next_sequence("2026-03-01", lambda: 41) == 42  # a day begun before: after its files
        assert store.next_sequence("2026-03-01", lambda: 0) == 43  # the seed only starts a new day
        assert store.next_sequence("2026-03-02", lambda: 0) == 1
    finally:
        store.close()


def test_a_claim_takes_over_remembered_keys_but_not_filed_or_claimed_ones_on_postgres(
    tmp_path: Path, pg_url: str
) -> None:
    assert crawler_cmd_migrate(pg_url, tmp_path) == 0
    store = Store(pg_url)
    try:
        store.remember(["u:old"], "old", "a")
        store.remember(["u:rejected"], "rejected", "a")
        assert store.claim(["u:old", "u:rejected", "g:b:1"], "b")  # a page that became an article
        assert store.seen("u:old") == ("claimed", None, None)
        assert store.claim(["u:x"], "c")
        assert not store.claim(["u:x", "u:y"], "d")  # held by another process filing it now
        assert store.seen("u:y") is None
    finally:
        store.close()


def test_an_entry_another_process_was_filing_is_looked_at_again_if_that_process_died(
    site: Site, tmp_path: Path, pg_url: str
) -> None:
    """A claim left by a dead filer: the poll that saw it must not let the unchanged feed hide it for ever."""
    from crawler import dedup

    _publish(site)
    feed = site.routes["/feed.xml"]
    feed.headers["ETag"] = '"v1"'  # the feed would answer 304 to a poll that kept its validators
    cfg = write_config(
        tmp_path / "config", [{"name": "news", "url": site.url("/feed.xml")}], {"database": pg_url}
    )
    assert crawler_cmd("migrate", "--config", str(cfg)).returncode == 0
    # Another process claimed the first story's URL and died before filing it.
    store = Store(pg_url)
    try:
        assert store.claim([dedup.url_key(site.url("/news/0.html"))], "news")
        first = crawler_cmd("poll", "--config", str(cfg))
        assert "news: 2 new, 0 duplicate, 0 failed, 1 already known" in first.stdout, first.stdout
        assert store.release_stale_claims(timedelta(0)) == 1  # found dead at last
    finally:
        store.close()
    second = crawler_cmd("poll", "--config", str(cfg))
    assert "news: 1 new, 0 duplicate, 0 failed, 2 already known" in second.stdout, second.stdout
    assert _count(pg_url, "items") == 3


REPORTER = """
import sys, time
from pathlib import Path
from crawler.config import load_config
from crawler.filing import record_duplicate
from crawler.resources import Resources, open_store
from crawler.topics import compile_topics

cfg, name, go, item, n = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
config = load_config(cfg)
store = open_store(config)
res = Resources(config, store, None, None, None, compile_topics(config.topics))
deadline = time.monotonic() + 20
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.005)
for i in range(n):
    url = f"https://{name}.example.org/copy/{i}.html"
    record_duplicate(res, item, name, url, [f"u:{url}"])
store.close()
"""


def test_copies_recorded_by_several_processes_at_once_are_all_on_the_sidecar(
    site: Site, tmp_path: Path, pg_url: str
) -> None:
    _publish(site)
    cfg = write_config(
        tmp_path / "config", [{"name": "news", "url": site.url("/feed.xml")}], {"database": pg_url}
    )
    assert crawler_cmd("migrate", "--config", str(cfg)).returncode == 0
    assert crawler_cmd("poll", "--config", str(cfg)).returncode == 0
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        item, path = conn.execute(text("SELECT id, path FROM items ORDER BY id LIMIT 1")).one()
    engine.dispose()
    go, n, names = tmp_path / "go", 40, ["a", "b", "c"]
    _race(REPORTER, [[str(cfg), name, str(go), str(item), str(n)] for name in names], go)
    sidecar = json.loads((cfg / "data" / path).with_suffix(".json").read_text("utf-8"))
    assert len(sidecar["also_reported_by"]) == len(names) * n  # none lost to a concurrent rewrite
    assert _count(pg_url, "reports") == len(names) * n


def test_two_polls_of_one_updated_entry_file_one_revision(tmp_path: Path, pg_url: str) -> None:
    """Two polls of a source overlapping (a slow worker's request taken over) both see the update; the
    revision is claimed by item and text, so one files it and the other finds it pending."""
    from crawler import dedup
    from crawler.config import load_config
    from crawler.filing import Candidate, file_article
    from crawler.models import Article, FeedItem
    from crawler.resources import Resources, open_store
    from crawler.topics import compile_topics

    cfg = write_config(
        tmp_path / "config", [{"name": "news", "url": "https://example.org/feed.xml"}], {"database": pg_url}
    )
    assert crawler_cmd("migrate", "--config", str(cfg)).returncode == 0
    config = load_config(cfg)
    store = open_store(config)
    try:
        res = Resources(config, store, None, None, None, compile_topics(config.topics))  # type: ignore[arg-type]
        source = config.source("news")
        url = "https://example.org/news/summit.html"
        keys = [dedup.guid_key("news", "1"), dedup.url_key(url)]

        def candidate(words: str, version: str, revision_of: int | None) -> Candidate:
            body = " ".join(f"{words}{j}" for j in range(120))
            art = Article("Summit", (f"The summit opened. {body}", "The end."))
            entry = FeedItem(url, guid="1", title="Summit", version=version)
            return Candidate(source, entry, url, art, list(keys), None, revision_of)

        kind, _path = file_article(res, candidate("first", "v1", None))
        assert kind == "new"
        original = store.seen(keys[0])
        assert original is not None and original[1] is not None
        outcomes = [file_article(res, candidate("second", "v2", original[1]))[0] for _ in range(2)]
        assert outcomes == ["new", "pending"]
        assert _count(pg_url, "items") == 2  # the original and one revision
    finally:
        store.close()


def test_a_filer_whose_claim_was_released_meanwhile_does_not_file(tmp_path: Path, pg_url: str) -> None:
    """A filer that stalled past queue_claim_after (its claims released, then taken by another) must not
    record the item when it wakes: the claims carry the filing's token, and add_item checks them."""
    from crawler.filing import index_item
    from crawler.store import ClaimLost

    assert crawler_cmd_migrate(pg_url, tmp_path) == 0
    store = Store(pg_url)
    try:
        claim = ["u:https://example.org/x.html", "content:0123"]
        assert store.claim(claim, "a", "token-a")
        assert store.release_stale_claims(timedelta(0)) == 2  # a's process presumed dead
        assert store.claim(claim, "b", "token-b")  # another filing takes the article
        sidecar = {
            "url": "https://example.org/x.html",
            "source": "a",
            "title": "X",
            "published": None,
            "fetched_at": "2026-11-23T00:00:00+00:00",
            "topics": [],
            "scores": {},
            "content_sha256": "0123",
        }
        with pytest.raises(ClaimLost):  # a wakes up: not filed
            index_item(store, "archive/2026-11-23/001_x.txt", "2026-11-23", sidecar, "x " * 50, claim, None,
                       (claim, "token-a"))  # fmt: skip
        assert _count(pg_url, "items") == 0
        assert store.seen(claim[0]) == ("claimed", None, None)  # still b's
        index_item(store, "archive/2026-11-23/002_x.txt", "2026-11-23", {**sidecar, "source": "b"}, "x " * 50,
                   claim, None, (claim, "token-b"))  # fmt: skip
        assert _count(pg_url, "items") == 1
        assert store.seen(claim[0])[0] == "filed"  # type: ignore[index]
    finally:
        store.close()
