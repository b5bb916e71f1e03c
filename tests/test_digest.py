"""The daily digest, built from a real index (SQLite on tmp_path)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import feedparser
import pytest
import yaml
from conftest import write_config
from sqlalchemy import insert

from crawler import dedup
from crawler.config import load_config
from crawler.digest import (
    LAST_DIGESTED,
    DigestOptions,
    DigestTemplateError,
    build_digest,
    digest_path,
    html_path,
    missed_days,
    render_digest,
    render_html,
    write_digest,
    write_digest_for,
)
from crawler.store import PollRow, Store, reports

DAY = "2024-03-05"
ORDER = ["dprk", "latin_america", "russia", "south_south"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "index.sqlite3")
    yield s
    s.close()


_seq = iter(range(1, 100000))


def add(
    store: Store,
    day: str,
    title: str,
    topics: list[str],
    source: str = "kcna",
    published: str | None = "2024-03-04T21:30:00+00:00",
    body: str | None = None,
    scores: dict[str, float] | None = None,
    also: list[tuple[str, str]] = (),  # type: ignore[assignment]
    revision_of: str | None = None,
    url: str | None = None,
    seq: int | None = None,
) -> str:
    """File an item in the index as the pipeline does (row, keys, "also reported by"); returns its path."""
    n = next(_seq) if seq is None else seq
    url = url or f"https://news.example.org/story/{n}"
    path = f"archive/{day}/{n:03d}_{dedup.url_digest(url)}.txt"
    text = body if body is not None else f"Body of {title}. " + "More words follow here. " * 20
    flat = " ".join(text.split())
    row: dict[str, Any] = {
        "path": path,
        "url": url,
        "source": source,
        "guid": None,
        "title": title,
        "published": published,
        "fetched_at": f"{day}T08:00:00+00:00",
        "filed_day": day,
        "content_sha256": f"{n:064x}",
        "topics": topics,
        "language": "en",
        "snippet": flat if len(flat) <= 300 else flat[:300].rsplit(" ", 1)[0] + "…",
        "scores": scores or {},
        "revision_of": revision_of,
    }
    item_id = store.add_item(row, [dedup.url_key(url)])
    with store.engine.begin() as conn:
        for other_source, other_url in also:
            conn.execute(
                insert(reports).values(
                    item_id=item_id, source=other_source, url=other_url, fetched_at=f"{day}T09:00:00+00:00"
                )
            )
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
    files = sorted(path.parent.iterdir())
    assert [p.name for p in files] == [f"{DAY}.html", f"{DAY}.md", "feed.xml"]  # no temporary file left
    first = {p.name: p.read_bytes() for p in files}
    # The file is the render of that day, compared with the day before (dprk 1 on 2024-03-04).
    previous = {"dprk": 1}
    assert first[f"{DAY}.md"].decode("utf-8") == render_digest(
        DAY, store.items_of_day(DAY), store.polls_of_day(DAY), ORDER, previous=previous
    )
    assert write_digest(store, data, DAY, ORDER) == path
    assert {p.name: p.read_bytes() for p in sorted(path.parent.iterdir())} == first  # byte for byte


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


# -- relevance, near-duplicates, revisions ----------------------------------------------------------------


def test_items_most_relevant_first(store: Store) -> None:
    # Score on the topic first, then how many sources carried the story, then filing order.
    add(store, DAY, "low score", ["dprk"], scores={"dprk": 1}, seq=1)
    add(store, DAY, "high score", ["dprk", "russia"], scores={"dprk": 9, "russia": 1}, seq=2)
    add(store, DAY, "mid, one source", ["dprk"], scores={"dprk": 4}, seq=3)
    add(
        store, DAY, "mid, three sources", ["dprk"], scores={"dprk": 4}, seq=4, also=[("a", "https://a/1")] * 2
    )
    add(store, DAY, "mid, filed 1000th", ["dprk"], scores={"dprk": 4}, seq=1000)
    add(store, DAY, "mid, filed 999th", ["dprk"], scores={"dprk": 4}, seq=999)
    add(store, DAY, "russian", ["russia"], scores={"russia": 5}, seq=5)
    text = render_digest(DAY, store.items_of_day(DAY), [], ORDER)
    assert sections(text) == [
        (
            "dprk (6)",
            [
                "high score",
                "mid, three sources",
                "mid, one source",
                "mid, filed 999th",  # 999 before 1000: filing order is numeric, not by file name
                "mid, filed 1000th",
                "low score",
            ],
        ),
        ("russia (2)", ["russian", "high score"]),  # ordered by the score on *this* topic
    ]
    assert "· score 9 ·" in text and "· score 1 ·" in text


def test_also_reported_by_is_shown_on_the_one_entry(store: Store) -> None:
    add(
        store,
        DAY,
        "Wire story",
        ["dprk"],
        scores={"dprk": 2},
        also=[("telesur", "https://telesur.example/a"), ("rt", "https://rt.example/b")],
    )
    items = store.items_of_day(DAY)
    text = render_digest(DAY, items, [], ORDER)
    assert sections(text) == [("dprk (1)", ["Wire story"])]  # collapsed into one entry
    assert "Also reported by: telesur (<https://telesur.example/a>), rt (<https://rt.example/b>)" in text
    page = render_html(build_digest(DAY, items, [], ORDER))
    assert 'Also reported by: <a href="https://telesur.example/a">telesur</a>, ' in page
    assert ">3 sources</span>" in page


def test_revision_marked_updated(store: Store) -> None:
    first = add(store, "2024-03-04", "Treaty signed", ["dprk"])
    add(store, DAY, "Treaty signed (update)", ["dprk"], revision_of=first)
    add(store, DAY, "Fresh story", ["dprk"])
    items = store.items_of_day(DAY)
    text = render_digest(DAY, items, [], ORDER)
    assert f"updated (earlier version `{first}`)" in text
    assert text.count("updated (earlier version") == 1
    page = render_html(build_digest(DAY, items, [], ORDER))
    assert page.count(">updated</span>") == 1
    assert f'title="earlier version: {first}"' in page


# -- settings ---------------------------------------------------------------------------------------------


def test_chosen_topics_in_their_order(store: Store, day_filled: dict[str, str]) -> None:
    items, polls = store.items_of_day(DAY), store.polls_of_day(DAY)
    text = render_digest(DAY, items, polls, ORDER, options=DigestOptions(topics=("russia", "dprk")))
    assert [h for h, _ in sections(text)] == ["russia (1)", "dprk (1)", "Problems"]
    assert "(russia 1, dprk 1)" in text and "Weather report" not in text
    with_other = render_digest(DAY, items, polls, ORDER, options=DigestOptions(topics=("dprk", "Other")))
    assert [h for h, _ in sections(with_other)] == ["dprk (1)", "Other (1)", "Problems"]


def test_min_score_and_max_per_topic(store: Store) -> None:
    for n, score in enumerate([0.5, 3, 2, 5, 4, 1]):
        add(store, DAY, f"story {n} scoring {score}", ["dprk"], scores={"dprk": score})
    items = store.items_of_day(DAY)
    text = render_digest(DAY, items, [], ORDER, options=DigestOptions(min_score=1, max_per_topic=3))
    assert sections(text) == [("dprk (5)", ["story 3 scoring 5", "story 4 scoring 4", "story 1 scoring 3"])]
    assert "_and 2 more_" in text  # 5 scored at least 1; 3 shown
    assert "6 new items (dprk 5)" in text
    page = render_html(
        build_digest(DAY, items, [], ORDER, options=DigestOptions(min_score=1, max_per_topic=3))
    )
    assert '<p class="more">and 2 more</p>' in page
    assert "story 2 scoring 2" not in page and "story 0 scoring 0.5" not in page
    everything = render_digest(DAY, items, [], ORDER)
    assert "more_" not in everything and len(sections(everything)[0][1]) == 6


def test_summary_compares_with_the_day_before(store: Store, tmp_path: Path) -> None:
    add(store, "2024-03-04", "y1", ["dprk"])
    add(store, "2024-03-04", "y2", ["russia"])
    add(store, "2024-03-04", "y3", ["russia"])
    for n in range(3):
        add(store, DAY, f"t{n}", ["dprk"])
    add(store, DAY, "t3", ["latin_america"])
    add(store, DAY, "t4", [])
    store.record_poll(DAY, PollRow("kcna", 5, 0, 0, None, []))
    store.record_poll(DAY, PollRow("rt", 0, 0, 0, "HTTP 500", []))
    text = write_digest(store, tmp_path / "data", DAY, ORDER).read_text("utf-8")
    assert text.split("\n")[2] == (
        "5 new items (dprk 3 (+2), latin_america 1 (+1), russia 0 (-2), other 1 (+1)). "
        "2 sources polled, 1 failed."
    )
    assert "## russia" not in text  # no items today: in the summary only
    page = html_path(tmp_path / "data", DAY).read_text("utf-8")
    assert '<td>dprk</td><td class="n">3</td><td class="n up">+2</td>' in page
    assert '<td>russia</td><td class="n">0</td><td class="n down">-2</td>' in page
    assert "Polled: kcna, rt. Failing: rt (HTTP 500)." in page


def test_no_comparison_after_a_day_the_service_did_not_run(store: Store, tmp_path: Path) -> None:
    add(store, "2024-03-03", "older", ["russia"])
    add(store, DAY, "first", ["dprk"])  # nothing polled or filed on 2024-03-04: no "+1" to report
    text = write_digest(store, tmp_path / "data", DAY, ORDER).read_text("utf-8")
    assert text.split("\n")[2] == "1 new item (dprk 1). 0 sources polled, 0 failed."
    page = html_path(tmp_path / "data", DAY).read_text("utf-8")
    assert ">Change</th>" not in page and '<line class="before"' not in page


# -- the HTML page ----------------------------------------------------------------------------------------


def test_html_escapes_every_piece_of_item_text(store: Store) -> None:
    add(
        store,
        DAY,
        'Kim <script>alert(1)</script> & "Maduro" <img src=x onerror=alert(2)>',
        ["dprk"],
        body="<b>bold</b> claims & <iframe src='https://evil.example'></iframe> " * 10,
        url="javascript:alert(3)",
        also=[("rt", 'https://rt.example/"><script>alert(4)</script>')],
    )
    page = render_html(build_digest(DAY, store.items_of_day(DAY), [], ORDER))
    assert "<script" not in page and "<img" not in page and "<iframe" not in page and "<b>" not in page
    assert "Kim &lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;Maduro&#34; &lt;img src=x" in page
    assert "&lt;b&gt;bold&lt;/b&gt; claims &amp; &lt;iframe" in page
    assert "javascript:" not in page  # not made a link
    assert 'href="https://rt.example/&#34;&gt;&lt;script&gt;alert(4)&lt;/script&gt;"' in page
    md = render_digest(DAY, store.items_of_day(DAY), [], ORDER)
    assert "### Kim \\<script>alert(1)\\</script>" in md  # literal text in Markdown too, and no link
    assert "Address (not a web link): javascript:alert(3)" in md


def test_html_is_self_contained_with_a_chart(store: Store, day_filled: dict[str, str]) -> None:
    digest = build_digest(DAY, store.items_of_day(DAY), store.polls_of_day(DAY), ORDER, previous={"dprk": 2})
    page = render_html(digest)
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    for external in ("<link", "<script", "src=", "@import", "url(", "@font-face"):
        assert external not in page
    svg = re.search(r"<svg .*?</svg>", page, re.S)
    assert svg is not None and 'role="img"' in svg.group(0)
    assert svg.group(0).count("<rect") == len(digest.counts) == 5  # a bar per topic in the summary
    assert "<title>dprk: 1 (-1)</title>" in svg.group(0)
    assert svg.group(0).count('<line class="before"') == 5  # the day before, as a tick
    # The same page without items: no chart, and a line saying so.
    empty = render_html(build_digest(DAY, [], [], ORDER))
    assert "<svg" not in empty and "Nothing was filed" in empty


def test_template_override_from_the_config_folder(store: Store, tmp_path: Path) -> None:
    add(store, DAY, "Kim <meets> Maduro", ["dprk"])
    cfg = _config(
        tmp_path,
        {"template": "templates/mine.html.j2", "topics": ["dprk"], "max_per_topic": 5, "min_score": 0},
    )
    (cfg / "templates").mkdir()
    (cfg / "templates" / "mine.html.j2").write_text(
        "<h1>{{ day }}</h1>{% for g in digest.groups %}{% for e in g.entries %}<p>{{ e.title }}</p>"
        "{% endfor %}{% endfor %}\n",
        encoding="utf-8",
    )
    config = load_config(cfg)
    path = write_digest_for(store, config, DAY)
    assert path == config.data_dir / "digests" / f"{DAY}.md"
    assert html_path(config.data_dir, DAY).read_text("utf-8") == (
        f"<h1>{DAY}</h1><p>Kim &lt;meets&gt; Maduro</p>"  # autoescaped in the user's template too
    )


def test_template_can_extend_the_packaged_one(store: Store, tmp_path: Path) -> None:
    add(store, DAY, "Kim meets Maduro", ["dprk"])
    mine = tmp_path / "digest.html.j2"  # the packaged template's own name: no clash
    mine.write_text(
        '{% extends "crawler/digest.html.j2" %}{% block footer %}<footer>Our team</footer>{% endblock %}',
        encoding="utf-8",
    )
    write_digest(store, tmp_path / "data", DAY, ORDER, options=DigestOptions(template=mine))
    page = html_path(tmp_path / "data", DAY).read_text("utf-8")
    assert "<footer>Our team</footer>" in page and "Kim meets Maduro" in page and "<svg" in page


@pytest.mark.parametrize(
    ("template", "where", "reason"),
    [
        (None, 0, "no such file"),
        ("<h1>{{ day }}</h1>\n{% for g in digest.groups %}\n<p>{{ g.name }\n{% endfor %}\n", 3, "unexpected"),
        ("<h1>{{ day }}</h1>\n\n{{ digest.no_such_field }}\n", 3, "no_such_field"),
        ("<h1>{{ day }}</h1>\n{% include 'missing.html' %}\n", 2, "missing.html"),
        ("<p>\n{{ 1 // 0 }}\n", 2, "ZeroDivisionError"),
    ],
)
def test_bad_template_names_file_and_line_and_md_is_still_written(
    store: Store, tmp_path: Path, template: str | None, where: int, reason: str
) -> None:
    add(store, DAY, "Kim meets Maduro", ["dprk"])
    bad = tmp_path / "bad.html.j2"
    if template is not None:
        bad.write_text(template, encoding="utf-8")
    data = tmp_path / "data"
    with pytest.raises(DigestTemplateError) as err:
        write_digest(store, data, DAY, ORDER, options=DigestOptions(template=bad))
    message = str(err.value)
    assert message.startswith(f"{bad}:{where}: template: "), message
    assert reason in message
    assert "Kim meets Maduro" in digest_path(data, DAY).read_text("utf-8")  # the Markdown is there
    assert not html_path(data, DAY).exists()
    assert store.get_meta(LAST_DIGESTED) is None  # not digested: tried again at the next start
    assert missed_days(store, data, date(2024, 3, 6)) == [DAY]


# -- the Atom feed ----------------------------------------------------------------------------------------


def test_feed_lists_the_last_digests(store: Store, tmp_path: Path) -> None:
    data = tmp_path / "data"
    days = [f"2024-03-0{n}" for n in range(1, 6)]
    for n, day in enumerate(days):
        add(store, day, f"story of {day}", ["dprk"] if n % 2 else ["russia"])
        write_digest(store, data, day, ORDER, options=DigestOptions(feed_size=3))
    feed = feedparser.parse((data / "digests" / "feed.xml").read_bytes())
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    assert feed.feed.title == "Crawler digests"
    assert [e.title for e in feed.entries] == [f"Digest for {d}" for d in reversed(days[-3:])]
    newest = feed.entries[0]
    assert newest.link == "2024-03-05.html"  # relative: resolved against wherever feed.xml is served
    assert (data / "digests" / newest.link).exists()
    assert newest.updated == "2024-03-06T00:00:00+00:00"  # the end of the day covered, not the clock
    assert feed.feed.updated == newest.updated
    assert "1 new item (dprk 0 (-1), russia 1 (+1))" in newest.content[0].value
    assert newest.content[0].type == "text/html"
    assert len({e.id for e in feed.entries}) == 3 and all(e.id.startswith("urn:uuid:") for e in feed.entries)
    # Rewriting an older day keeps the feed as it was, byte for byte.
    before = (data / "digests" / "feed.xml").read_bytes()
    write_digest(store, data, "2024-03-02", ORDER, options=DigestOptions(feed_size=3))
    assert (data / "digests" / "feed.xml").read_bytes() == before


def test_feed_size_from_the_config(store: Store, tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, {"feed_size": 2}))
    for day in ("2024-03-01", "2024-03-02", "2024-03-03"):
        add(store, day, f"story of {day}", ["dprk"])
        write_digest_for(store, config, day)
    feed = feedparser.parse((config.data_dir / "digests" / "feed.xml").read_bytes())
    assert [e.title for e in feed.entries] == ["Digest for 2024-03-03", "Digest for 2024-03-02"]


# -- files in place ---------------------------------------------------------------------------------------


def test_digested_marker_only_once_both_files_are_in_place(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    add(store, "2024-03-04", "a", ["dprk"])
    add(store, DAY, "b", ["dprk"])
    seen: list[tuple[str, str, bool]] = []
    set_meta = store.set_meta

    def spy(key: str, value: str) -> None:
        both = digest_path(data, value).exists() and html_path(data, value).exists()
        seen.append((key, value, both))
        set_meta(key, value)

    monkeypatch.setattr(store, "set_meta", spy)
    write_digest(store, data, DAY, ORDER)
    assert seen == [(LAST_DIGESTED, DAY, True)]
    write_digest(store, data, "2024-03-04", ORDER)  # an older day rewritten: the newest stays
    assert store.get_meta(LAST_DIGESTED) == DAY


def test_missed_days_include_a_day_without_its_html(store: Store, tmp_path: Path) -> None:
    data = tmp_path / "data"
    add(store, "2024-03-01", "a", ["dprk"])
    add(store, "2024-03-02", "b", ["dprk"])
    write_digest(store, data, "2024-03-01", ORDER)
    write_digest(store, data, "2024-03-02", ORDER)
    html_path(data, "2024-03-02").unlink()  # e.g. written by an older version, Markdown only
    assert missed_days(store, data, date(2024, 3, 3)) == ["2024-03-02"]


def test_writing_a_day_again_gives_the_same_bytes(store: Store, tmp_path: Path) -> None:
    data = tmp_path / "data"
    add(store, "2024-03-04", "y", ["dprk"], scores={"dprk": 1})
    add(
        store,
        DAY,
        "Kim <meets> Maduro",
        ["dprk", "russia"],
        scores={"dprk": 2.5, "russia": 1},
        also=[("rt", "https://rt.example/1")],
    )
    add(store, DAY, "Untagged", [])
    store.record_poll(DAY, PollRow("kcna", 2, 0, 1, "HTTP 500", ["https://x.example/: HTTP 404"]))
    first = write_digest(store, data, DAY, ORDER, ["kcna"])
    snapshot = {p.name: p.read_bytes() for p in first.parent.iterdir()}
    write_digest(store, tmp_path / "other", DAY, ORDER, ["kcna"])  # another folder: same .md and .html
    for name in (f"{DAY}.md", f"{DAY}.html"):
        assert (tmp_path / "other" / "digests" / name).read_bytes() == snapshot[name]
    write_digest(store, data, DAY, ORDER, ["kcna"])
    assert {p.name: p.read_bytes() for p in first.parent.iterdir()} == snapshot


def _config(tmp_path: Path, digest: dict[str, Any]) -> Path:
    cfg = write_config(
        tmp_path / "config",
        [{"name": "kcna", "url": "https://kcna.example/feed.xml"}],
        settings={"digest": digest},
    )
    assert yaml.safe_load((cfg / "crawler.yaml").read_text("utf-8"))["digest"] == digest
    return cfg
