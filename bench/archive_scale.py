"""Filing cost as the archive grows, and the digest of a busy day (parts e and f of pipeline_bench.py).

The big indexes are filled by bench/neardup_scale.fill (items and Simhash bands in bulk), then given what
fill leaves out and a real index has: two keys per item (URL and GUID) and a full-text row. The items' days
are then spread as an archive that grew by ITEMS_PER_DAY a day up to yesterday, so the 30-day near-duplicate
window holds about as many items at 100k as at 10k: what is measured is the archive's size, not a busier
month.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from neardup_scale import fill
from sqlalchemy import insert, text

from crawler.config import Config
from crawler.digest import write_digest_for
from crawler.filing import Candidate, file_article
from crawler.models import Article, FeedItem
from crawler.resources import Resources
from crawler.store import PollRow, Store, items, keys, reports
from crawler.topics import compile_topics

ITEMS_PER_DAY = 250
BATCH = 20_000


def _words(rng: random.Random, vocab: list[str], n: int) -> str:
    return " ".join(rng.choice(vocab) for _ in range(n))


def grow_index(store: Store, n: int, vocab: list[str], rng: random.Random, yesterday: date) -> None:
    """An index of n archived items: fill's rows, then keys, search text and days of a steady archive."""
    fill(store, n, rng)
    with store.engine.begin() as conn:
        day0 = yesterday.isoformat()
        # Item i was filed (n - i) // ITEMS_PER_DAY days before yesterday: the newest items are the last ids.
        for table, col in (("items", "id"), ("simbands", "item_id")):
            day_col = "filed_day" if table == "items" else "day"
            conn.execute(
                text(f"UPDATE {table} SET {day_col} = date(:d, '-' || ((:n - {col}) / :k) || ' days')"),
                {"d": day0, "n": n, "k": ITEMS_PER_DAY},
            )
        for start in range(1, n + 1, BATCH):
            ids = range(start, min(n, start + BATCH - 1) + 1)
            conn.execute(
                insert(keys),
                [
                    {"key": k, "item_id": i, "status": "filed", "source": "s", "seen_at": day0}
                    for i in ids
                    for k in (f"url:https://e.org/{i}", f"guid:s:{i}")
                ],
            )
            conn.exec_driver_sql(
                "INSERT INTO items_fts(rowid, title, body) VALUES (?, ?, ?)",
                [(i, _words(rng, vocab, 6), _words(rng, vocab, 40)) for i in ids],
            )


def bench_resources(config: Config, store: Store, data_dir: Path) -> Resources:
    """Resources for filing alone: file_article uses the index, the data folder, the clock and the topics."""
    cfg = cast(Any, config)
    settings = cfg.settings.model_copy(update={"data_dir": data_dir})
    local = Config(config.config_dir, settings, config.sources, config.topics)
    none = cast(Any, None)  # no downloads, no workers: filing runs on the calling thread here
    return Resources(local, store, none, none, none, compile_topics(config.topics))


def filing_cost(
    config: Config, sizes: list[int], articles: list[Article], vocab: list[str]
) -> list[dict[str, Any]]:
    """Per archive size: median and worst time to file one more article (distinct real articles)."""
    out = []
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    source = config.sources[0]
    for n in sizes:
        rng = random.Random(n)
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "index.sqlite3")
            began = time.perf_counter()
            grow_index(store, n, vocab, rng, yesterday)
            grown = time.perf_counter() - began
            res = bench_resources(config, store, Path(tmp))
            times, outcomes = [], []
            for i, article in enumerate(articles):
                url = f"http://bench.example/new/{n}/{i}.html"
                entry = FeedItem(url, guid=f"new-{i}", title=article.title)
                candidate = Candidate(source, entry, url, article, [f"guid:{source.name}:new-{i}"], None)
                t0 = time.perf_counter()
                outcomes.append(file_article(res, candidate)[0])
                times.append(time.perf_counter() - t0)
            store.close()
        out.append(
            {
                "archived": n,
                "median_ms": statistics.median(times) * 1000,
                "max_ms": max(times) * 1000,
                "filed": outcomes.count("new"),
                "tries": len(times),
                "index_built_s": grown,
            }
        )
    return out


def busy_day_cost(config: Config, articles: list[Article], filed_today: int) -> dict[str, Any]:
    """Time to file one more article when today's archive folder already holds `filed_today` items."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "index.sqlite3")
        res = bench_resources(config, store, Path(tmp))
        folder = Path(tmp) / "archive" / res.today()
        folder.mkdir(parents=True)
        for i in range(1, filed_today + 1):  # the files alone: the folder listing is what grows in a day
            (folder / f"{i:03d}_{i:016x}.txt").write_bytes(b"t")
            (folder / f"{i:03d}_{i:016x}.json").write_bytes(b"{}")
        times = []
        for i, article in enumerate(articles):
            url = f"http://bench.example/busy/{i}.html"
            entry = FeedItem(url, guid=f"busy-{i}", title=article.title)
            candidate = Candidate(config.sources[0], entry, url, article, [f"guid:busy:{i}"], None)
            t0 = time.perf_counter()
            file_article(res, candidate)
            times.append(time.perf_counter() - t0)
        store.close()
    return {
        "filed_today": filed_today,
        "median_ms": statistics.median(times) * 1000,
        "max_ms": max(times) * 1000,
    }


def digest_cost(config: Config, n_items: int, vocab: list[str]) -> dict[str, Any]:
    """Time to write the digest (.md, .html, feed.xml) of a day with n_items filed items."""
    rng = random.Random(5)
    day = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    before = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
    topics = list(config.topics)
    names = [s.name for s in config.sources]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "index.sqlite3")
        rows = [_digest_row(i, day if i <= n_items else before, rng, topics, names, vocab) for i in
                range(1, n_items + n_items // 2 + 1)]  # fmt: skip
        copies = [
            {"item_id": rng.randint(1, n_items), "source": rng.choice(names),
             "url": f"https://copy.example/{i}", "fetched_at": f"{day}T12:00:00+00:00"}
            for i in range(n_items // 10)
        ]  # fmt: skip
        with store.engine.begin() as conn:
            conn.execute(insert(items), rows)
            conn.execute(insert(reports), copies)
        for name in names:
            for d in (before, day):
                store.record_poll(d, PollRow(name, 5, 1, 0, None, []))
        local = bench_resources(config, store, Path(tmp)).config
        began = time.perf_counter()
        md = write_digest_for(store, local, day)
        took = time.perf_counter() - began
        size = md.stat().st_size + md.with_suffix(".html").stat().st_size
        store.close()
    return {"items": n_items, "write_s": took, "bytes": size}


def _digest_row(
    i: int, day: str, rng: random.Random, topics: list[str], names: list[str], vocab: list[str]
) -> dict[str, Any]:
    chosen = rng.sample(topics, k=rng.choice([0, 0, 1, 1, 2])) if topics else []
    return {
        "id": i, "path": f"archive/{day}/{i:05d}_{i:016x}.txt", "url": f"https://news.example/{i}",
        "source": rng.choice(names), "title": _words(rng, vocab, 8).capitalize(),
        "published": f"{day}T08:00:00+00:00", "fetched_at": f"{day}T09:00:00+00:00", "filed_day": day,
        "content_sha256": f"{i:064x}", "topics": json.dumps(chosen),
        "scores": json.dumps({t: round(rng.uniform(1, 12), 1) for t in chosen}),
        "language": "en", "snippet": _words(rng, vocab, 50)[:300], "simhash": f"{rng.getrandbits(64):016x}",
    }  # fmt: skip
