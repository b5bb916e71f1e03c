"""`crawler poll` end to end: a real local site, real Scrapy, feedparser, trafilatura and SQLite."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from conftest import (
    CHECK_ARCHIVE,
    Site,
    archived,
    article_html,
    crawler_cmd,
    lorem,
    need_shared,
    rss,
    write_config,
)


def _publish(site: Site, n: int, prefix: str = "/news/a") -> list[tuple[str, str]]:
    entries = []
    for i in range(n):
        path, title = f"{prefix}{i}.html", f"Story {i} about Venezuela and North Korea"
        site.set(path, article_html(title, lorem(f"story {prefix}{i} in Caracas")))
        entries.append((path, title))
    return entries


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_poll_files_new_items_once_and_nothing_on_the_second_poll(site: Site, tmp_path) -> None:
    entries = _publish(site, 3)
    site.set("/feed.xml", rss(site, entries), content_type="application/rss+xml")
    cfg = write_config(tmp_path / "config", [{"name": "news", "url": site.url("/feed.xml")}])

    first = crawler_cmd("poll", "--config", str(cfg))
    assert first.returncode == 0, first.stderr
    assert "news: 3 new, 0 duplicate, 0 failed, 0 already known" in first.stdout
    files = archived(cfg / "data")
    assert len(files) == 3
    assert sorted(p.name[:3] for p in files) == ["001", "002", "003"]
    article_hits = sum(site.hits_of(p) for p, _ in entries)

    second = crawler_cmd("poll", "--config", str(cfg))
    assert second.returncode == 0, second.stderr
    assert "news: unchanged since the last poll" in second.stdout
    # The feed changes (a new entry on top): the entries already filed are known, only the new one is fetched.
    site.set(
        "/feed.xml", rss(site, [*_publish(site, 1, "/news/b"), *entries]), content_type="application/rss+xml"
    )
    third = crawler_cmd("poll", "--config", str(cfg))
    assert "news: 1 new, 0 duplicate, 0 failed, 3 already known" in third.stdout
    assert len(archived(cfg / "data")) == 4
    # Known items are dropped before their page is fetched: no article was downloaded again.
    assert sum(site.hits_of(p) for p, _ in entries) == article_hits


def test_filed_item_has_seed_format_text_sidecar_and_topics(site: Site, tmp_path) -> None:
    paragraphs = [
        "CARACAS — Venezuela and North Korea pledged to deepen their relationship after a meeting of their "
        "diplomats in Caracas on Monday, the Venezuelan foreign ministry said.",
        "The North Korean ambassador met the vice minister for Asia to discuss cooperation in agriculture, "
        "sports and culture, according to the statement.",
        "Both governments denounced what they called the hegemonism of the United States.",
    ]
    site.set("/a.html", article_html("Venezuela and North Korea to deepen ties", paragraphs))
    site.set("/feed.xml", rss(site, [("/a.html", "Venezuela and North Korea to deepen ties")]))
    cfg = write_config(
        tmp_path / "config", [{"name": "latam", "url": site.url("/feed.xml"), "topics": ["sanctions"]}]
    )

    assert crawler_cmd("poll", "--config", str(cfg)).returncode == 0
    [txt] = archived(cfg / "data")
    assert txt.read_text("utf-8") == "\n\n".join(["Venezuela and North Korea to deepen ties", *paragraphs])
    side = json.loads(txt.with_suffix(".json").read_text("utf-8"))
    assert side["url"] == site.url("/a.html")
    assert side["source"] == "latam"
    assert side["published"] is not None and side["fetched_at"]
    assert {"dprk", "latin_america", "dprk_latam", "sanctions"} <= set(side["topics"])
    assert side["evidence"]["sanctions"] == [{"term": "@source", "count": 1, "sentence": ""}]
    assert side["language"] == "en"
    assert len(side["content_sha256"]) == 64
    import hashlib

    from crawler.dedup import normalise_url

    assert txt.name.endswith(hashlib.sha256(normalise_url(side["url"]).encode()).hexdigest()[:16] + ".txt")
    need_shared()
    check = subprocess.run(
        [sys.executable, str(CHECK_ARCHIVE), str(cfg / "data" / "archive")], capture_output=True
    )
    assert check.returncode == 0, check.stdout


def test_same_text_at_another_url_is_a_duplicate(site: Site, tmp_path) -> None:
    body = lorem("a syndicated wire story from Havana", 5)
    site.set("/one.html", article_html("Wire story", body))
    site.set("/two.html", article_html("Wire story (copy)", body))
    site.set("/feed.xml", rss(site, [("/one.html", "Wire story"), ("/two.html", "Wire story (copy)")]))
    cfg = write_config(tmp_path / "config", [{"name": "wire", "url": site.url("/feed.xml")}])
    result = crawler_cmd("poll", "--config", str(cfg))
    assert "wire: 1 new, 1 duplicate, 0 failed" in result.stdout, result.stdout
    assert len(archived(cfg / "data")) == 1


def test_failures_are_named_counted_and_do_not_stop_other_sources(site: Site, tmp_path) -> None:
    good = _publish(site, 2)
    site.set("/good.xml", rss(site, good))
    site.set("/broken.xml", "<html><body>this is not a feed</body></html>")
    site.set("/error.xml", "oops", status=500)
    site.set("/nav-only.html", "<html><body><nav><a href='/'>Home</a></nav></body></html>")
    site.set("/mixed.xml", rss(site, [("/nav-only.html", "A page without text"), ("/missing.html", "Gone")]))
    cfg = write_config(
        tmp_path / "config",
        [
            {"name": "good", "url": site.url("/good.xml")},
            {"name": "not-a-feed", "url": site.url("/broken.xml")},
            {"name": "server-error", "url": site.url("/error.xml")},
            {"name": "missing", "url": site.url("/nope.xml")},
            {"name": "unreachable", "url": f"http://127.0.0.1:{_free_port()}/feed.xml"},
            {"name": "mixed", "url": site.url("/mixed.xml")},
        ],
    )
    result = crawler_cmd("poll", "--config", str(cfg))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "good: 2 new, 0 duplicate, 0 failed" in out
    assert "not-a-feed: FAILED: not a feed" in out
    assert "server-error: FAILED: HTTP 500" in out
    assert "missing: FAILED: HTTP 404" in out
    assert "unreachable: FAILED: connection refused" in out
    assert "mixed: 0 new, 0 duplicate, 2 failed" in out
    assert f"failed: {site.url('/nav-only.html')}: not an article: no article text" in out
    assert f"failed: {site.url('/missing.html')}: HTTP 404" in out
    assert "total: 2 new, 0 duplicate, 2 failed; 6 source(s) polled, 4 failed" in out
    # The log names the source with each failure.
    assert "server-error: poll failed: HTTP 500" in result.stderr
    assert len(archived(cfg / "data")) == 2

    digest = crawler_cmd("digest", "--config", str(cfg), "--date", _today())
    text = (cfg / "data" / "digests" / f"{_today()}.md").read_text("utf-8")
    assert digest.returncode == 0
    assert "6 sources polled, 4 failed; 2 article(s) could not be filed." in text
    assert "- unreachable: connection refused" in text
    assert f"- mixed: {site.url('/missing.html')}: HTTP 404" in text


def test_poll_named_sources_only_and_unknown_names(site: Site, tmp_path) -> None:
    site.set("/a.xml", rss(site, _publish(site, 1, "/a")))
    site.set("/b.xml", rss(site, _publish(site, 1, "/b")))
    cfg = write_config(
        tmp_path / "config",
        [{"name": "a", "url": site.url("/a.xml")}, {"name": "b", "url": site.url("/b.xml")}],
    )
    result = crawler_cmd("poll", "--config", str(cfg), "b")
    assert result.returncode == 0
    assert "b: 1 new" in result.stdout and "a:" not in result.stdout
    assert site.hits_of("/a.xml") == 0
    wrong = crawler_cmd("poll", "--config", str(cfg), "zzz")
    assert wrong.returncode == 1 and "unknown source(s): zzz" in wrong.stderr


def _today() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).date().isoformat()


def _feed(site: Site, entries: list[tuple[str, str | None]]) -> str:
    """RSS of (path, RFC 822 date or None) entries with GUIDs; an entry without a date has no pubDate."""
    items = "".join(
        f"<item><title>Item {p}</title><link>{site.url(p)}</link><guid>{site.url(p)}</guid>"
        + (f"<pubDate>{d}</pubDate>" if d else "")
        + "</item>"
        for p, d in entries
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
        f"<link>{site.base}/</link><description>d</description>{items}</channel></rss>"
    )


def test_old_entries_are_not_downloaded_and_failures_are_logged_in_brief(site: Site, tmp_path) -> None:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    now, long_ago = datetime.now(UTC), datetime.now(UTC) - timedelta(days=90)
    site.set("/fresh.html", article_html("Fresh", lorem("fresh story in Caracas")))
    site.set("/old.html", article_html("From the archive", lorem("old story in Lima")))
    # No date in the feed: only the page tells its age, so it must be downloaded to be judged.
    dated = article_html("Undated in the feed", lorem("undated story in Quito")).replace(
        "<head>", f"<head><meta property='article:published_time' content='{long_ago.isoformat()}'>"
    )
    site.set("/undated.html", dated)
    dead = [(f"/dead{i}.html", format_datetime(now)) for i in range(8)]  # never set: 404
    entries = [
        ("/fresh.html", format_datetime(now)),
        ("/old.html", format_datetime(long_ago)),
        ("/undated.html", None),
        *dead,
    ]
    site.set("/feed.xml", _feed(site, entries), content_type="application/rss+xml")
    cfg = write_config(tmp_path / "config", [{"name": "news", "url": site.url("/feed.xml")}])

    result = crawler_cmd("poll", "--config", str(cfg))
    assert result.returncode == 0, result.stderr
    assert "news: 1 new, 0 duplicate, 8 failed, 0 already known, 2 too old" in result.stdout
    # The feed's date was enough: the old page was never requested; the undated one was, once.
    assert site.hits_of("/old.html") == 0
    assert site.hits_of("/undated.html") == 1
    assert all(site.hits_of(p) >= 1 for p, _ in dead)
    # Each failure is in the summary; the log names the first few and counts the rest on one line.
    assert sum(f"{site.url(p)}: HTTP 404" in result.stdout for p, _ in dead) == 8
    logged = [line for line in result.stderr.splitlines() if "HTTP 404" in line]
    assert len(logged) == 5, result.stderr
    assert "news: 3 more items failed (8 in all; each is in the poll summary)" in result.stderr
    # Remembered as old: the next poll of a changed feed does not look at it again.
    site.set("/feed.xml", _feed(site, [("/new.html", format_datetime(now)), *entries]))
    again = crawler_cmd("poll", "--config", str(cfg))
    assert "2 too old" not in again.stdout and site.hits_of("/old.html") == 0


def test_an_item_that_failed_for_now_is_tried_again_though_the_feed_is_same(site: Site, tmp_path) -> None:
    from conftest import Route

    entries = _publish(site, 2)
    site.set("/feed.xml", rss(site, entries), content_type="application/rss+xml", headers={"ETag": '"v1"'})
    busy = Route(429, b"too many requests", {"Content-Type": "text/plain"})  # not retried at once
    site.once[entries[0][0]] = busy
    cfg = write_config(tmp_path / "config", [{"name": "news", "url": site.url("/feed.xml")}])

    first = crawler_cmd("poll", "--config", str(cfg))
    assert "news: 1 new, 0 duplicate, 1 failed, 0 already known" in first.stdout, first.stdout
    # The feed is the same (it would answer 304 to its ETag): the failed item is fetched again all the same.
    second = crawler_cmd("poll", "--config", str(cfg))
    assert "news: 1 new, 0 duplicate, 0 failed, 1 already known" in second.stdout, second.stdout
    assert len(archived(cfg / "data")) == 2
    # With nothing failed any more, the feed's validators are kept: the next poll is a 304.
    third = crawler_cmd("poll", "--config", str(cfg))
    assert "news: unchanged since the last poll" in third.stdout
    assert site.requests[-1][1].get("if-none-match") == '"v1"'
