"""The daily digest, built from a real index (SQLite on tmp_path)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from crawler import dedup
from crawler.digest import digest_path, missed_days, render_digest, write_digest
from crawler.pipeline import index_row
from crawler.store import PollRow, Store

DAY = "2024-03-05"
ORDER = ["dprk", "latin_america", "russia", "south_south"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "index.sqlite3")
    yield s
    s.close()


_seq = iter(range(1, 1000))


def add(
    store: Store,
    day: str,
    title: str,
    topics: list[str],
    source: str = "kcna",
    published: str | None = "2024-03-04T21:30:00+00:00",
    body: str | None = None,
) -> str:
    """File an item in the index the way crawler.pipeline does; returns its archive path."""
    n = next(_seq)
    url = f"https://news.example.org/story/{n}"
    path = f"archive/{day}/{n:03d}_{dedup.url_digest(url)}.txt"
    side: dict[str, Any] = {
        "url": url,
        "source": source,
        "title": title,
        "published": published,
        "fetched_at": f"{day}T08:00:00+00:00",
        "topics": topics,
        "content_sha256": f"{n:064x}",
        "guid": None,
        "language": "en",
    }
    text = body if body is not None else f"Body of {title}. " + "More words follow here. " * 20
    store.add_item(index_row(path, day, side, text), [dedup.url_key(url)])
    return path


def sections(text: str) -> list[tuple[str, list[str]]]:
    """(heading, item titles) for each ## section, in order."""
    out: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("## "):
            out.append((line[3:], []))
        elif line.startswith("### ") and out:
            out[-1][1].append(re.sub(r"^### \[(.*)\]\(.*\)$", r"\1", line))
    return out


@pytest.fixture
def day_filled(store: Store) -> dict[str, str]:
    paths = {
        "both": add(
            store, DAY, "Kim meets Maduro", ["dprk", "latin_america"], published="2024-03-04T21:30:00+00:00"
        ),
        "russia": add(store, DAY, "Lavrov in Havana", ["russia"], source="tass"),
        "plain": add(store, DAY, "Weather report", [], published=None),
        "latam": add(store, DAY, "Petro visits Caracas", ["latin_america"], source="telesur"),
        "legacy": add(store, DAY, "Old flag", ["zz_retired"]),
    }
    add(store, "2024-03-04", "Yesterday's story", ["dprk"])  # another day: not in this digest
    add(store, "2024-03-06", "Tomorrow's story", ["russia"])
    store.record_poll(DAY, PollRow("kcna", 3, 1, 1, None, ["https://kcna.example/x: HTTP 404"]))
    store.record_poll(DAY, PollRow("tass", 1, 0, 0, None, []))
    store.record_poll(DAY, PollRow("rt", 0, 0, 0, "HTTP 500", []))
    store.record_poll(DAY, PollRow("telesur", 0, 0, 0, "timeout after 20 s", []))
    store.record_poll(DAY, PollRow("telesur", 1, 0, 0, None, []))  # recovered later that day
    store.record_poll("2024-03-04", PollRow("mercopress", 0, 0, 0, "not a feed: junk", []))
    return paths


def test_summary_line(store: Store, day_filled: dict[str, str]) -> None:
    text = render_digest(DAY, store.items_of_day(DAY), store.polls_of_day(DAY), ORDER)
    lines = text.split("\n")
    assert lines[0] == f"# Digest for {DAY}"
    assert lines[1] == ""
    assert lines[2] == (
        "5 new items (dprk 1, latin_america 2, russia 1, zz_retired 1, other 1). "
        "4 sources polled, 1 failed; 1 article(s) could not be filed."
    )


def test_items_grouped_by_topic_in_configured_order(store: Store, day_filled: dict[str, str]) -> None:
    text = render_digest(DAY, store.items_of_day(DAY), store.polls_of_day(DAY), ORDER)
    assert sections(text) == [
        ("dprk (1)", ["Kim meets Maduro"]),
        ("latin_america (2)", ["Kim meets Maduro", "Petro visits Caracas"]),
        ("russia (1)", ["Lavrov in Havana"]),
        ("zz_retired (1)", ["Old flag"]),  # a topic no longer configured: after the configured ones
        ("Other (1)", ["Weather report"]),
        ("Problems", []),
    ]
    assert "south_south" not in text  # no items, no section
    assert "Yesterday's story" not in text and "Tomorrow's story" not in text


def test_topic_order_follows_configuration(store: Store, day_filled: dict[str, str]) -> None:
    text = render_digest(
        DAY, store.items_of_day(DAY), store.polls_of_day(DAY), ["russia", "latin_america", "dprk"]
    )
    assert [h for h, _ in sections(text)][:3] == ["russia (1)", "latin_america (2)", "dprk (1)"]
    assert "(russia 1, latin_america 2, dprk 1, zz_retired 1, other 1)" in text


def test_item_block(store: Store, day_filled: dict[str, str]) -> None:
    text = render_digest(DAY, store.items_of_day(DAY), store.polls_of_day(DAY), ORDER)
    (item,) = [i for i in store.items_of_day(DAY) if i.title == "Kim meets Maduro"]
    block = [
        f"### [Kim meets Maduro]({item.url})",
        "",
        f"kcna · published 2024-03-04 · `{day_filled['both']}`",
        "",
        f"> {item.snippet}",
    ]
    assert "\n".join(block) in text
    assert text.count("\n".join(block)) == 2  # under dprk and under latin_america
    assert item.snippet.startswith("Body of Kim meets Maduro. More words follow here.")
    assert len(item.snippet) <= 301 and item.snippet.endswith("…")
    assert f"telesur · published 2024-03-04 · `{day_filled['latam']}`" in text
    assert f"kcna · published date unknown · `{day_filled['plain']}`" in text
    assert day_filled["plain"].startswith(f"archive/{DAY}/")  # relative to the data folder


def test_problems_section(store: Store, day_filled: dict[str, str]) -> None:
    text = render_digest(DAY, store.items_of_day(DAY), store.polls_of_day(DAY), ORDER)
    problems = text.split("## Problems\n", 1)[1]
    assert problems.strip().split("\n") == ["- rt: HTTP 500", "- kcna: https://kcna.example/x: HTTP 404"]
    assert "mercopress" not in text  # failed on another day


def test_quiet_day_has_no_problems_section(store: Store) -> None:
    add(store, DAY, "Only one", ["dprk"])
    store.record_poll(DAY, PollRow("kcna", 1, 0, 0, None, []))
    text = render_digest(DAY, store.items_of_day(DAY), store.polls_of_day(DAY), ORDER)
    assert text.split("\n")[2] == "1 new item (dprk 1). 1 source polled, 0 failed."
    assert "## Problems" not in text
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_empty_day(store: Store) -> None:
    text = render_digest(DAY, [], [], ORDER)
    assert text == f"# Digest for {DAY}\n\n0 new items (none flagged). 0 sources polled, 0 failed.\n"


def test_markdown_link_text_escaped(store: Store) -> None:
    add(store, DAY, "Kim [meets] Maduro", ["dprk"])
    text = render_digest(DAY, store.items_of_day(DAY), [], ORDER)
    assert "### [Kim \\[meets\\] Maduro](https://news.example.org/story/" in text


def test_write_digest_is_idempotent(store: Store, day_filled: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = write_digest(store, data, DAY, ORDER)
    assert path == data / "digests" / f"{DAY}.md" == digest_path(data, DAY)
    first = path.read_bytes()
    assert first.decode("utf-8") == render_digest(
        DAY, store.items_of_day(DAY), store.polls_of_day(DAY), ORDER
    )
    assert write_digest(store, data, DAY, ORDER) == path
    assert path.read_bytes() == first
    assert [p.name for p in path.parent.iterdir()] == [f"{DAY}.md"]  # no temporary file left


# -- missed days --------------------------------------------------------------------------------------------


def test_missed_days(store: Store, tmp_path: Path) -> None:
    data = tmp_path / "data"
    add(store, "2024-03-01", "a", ["dprk"])
    # 2024-03-02: nothing happened, no digest needed
    add(store, "2024-03-03", "b", [])
    store.record_poll("2024-03-04", PollRow("rt", 0, 0, 0, "HTTP 500", []))  # activity without items
    add(store, "2024-03-05", "today", ["dprk"])
    today = date(2024, 3, 5)
    assert missed_days(store, data, today) == ["2024-03-01", "2024-03-03", "2024-03-04"]
    write_digest(store, data, "2024-03-01", ORDER)
    assert missed_days(store, data, today) == ["2024-03-03", "2024-03-04"]
    for day in ("2024-03-03", "2024-03-04"):
        write_digest(store, data, day, ORDER)
    assert missed_days(store, data, today) == []
    assert missed_days(store, data, date(2024, 3, 6)) == ["2024-03-05"]  # once today is over


def test_missed_days_empty_index(store: Store, tmp_path: Path) -> None:
    assert missed_days(store, tmp_path / "data", date(2024, 3, 5)) == []


def test_missed_days_counts_polls_before_first_item(store: Store, tmp_path: Path) -> None:
    # Every source failed on the first day: that day's digest reports the problems.
    store.record_poll("2024-03-01", PollRow("rt", 0, 0, 0, "HTTP 500", []))
    add(store, "2024-03-02", "first item", ["dprk"])
    assert missed_days(store, tmp_path / "data", date(2024, 3, 3)) == ["2024-03-01", "2024-03-02"]


def test_missed_days_before_a_digest_written_by_hand(store: Store, tmp_path: Path) -> None:
    data = tmp_path / "data"
    add(store, "2024-03-01", "a", ["dprk"])
    add(store, "2024-03-02", "b", ["dprk"])
    add(store, "2024-03-03", "c", ["dprk"])
    write_digest(store, data, "2024-03-03", ORDER)  # `crawler digest` (yesterday) run by hand
    assert missed_days(store, data, date(2024, 3, 4)) == ["2024-03-01", "2024-03-02"]


def test_source_health_lists_failing_and_quiet_sources(store: Store, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    add(store, (today - timedelta(days=10)).isoformat(), "old news", ["dprk"], source="quiet")
    add(store, today.isoformat(), "fresh news", ["dprk"], source="busy")
    for source in ("quiet", "busy"):
        store.record_poll(today.isoformat(), PollRow(source, 0, 0, 0, None, []))
    for _ in range(3):
        store.record_poll(today.isoformat(), PollRow("broken", 0, 0, 0, "HTTP 502", []))
    path = write_digest(
        store, tmp_path / "data", today.isoformat(), ORDER, ["quiet", "busy", "broken", "never-polled"]
    )
    text = path.read_text("utf-8")
    health = text.split("## Source health\n\n", 1)[1].splitlines()
    # busy filed today; never-polled and broken were first polled today, too soon to call them quiet.
    assert health == [
        f"- quiet: quiet, no new item since {(today - timedelta(days=10)).isoformat()} (over 7d)",
        "- broken: failing, 3 poll(s) in a row; last error: HTTP 502",
    ]
