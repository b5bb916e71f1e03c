"""Every kind of source through `crawler poll`, conditional requests, backoff, 410, redirects, health.

Real local servers, real Scrapy, parsers and SQLite; the state the scheduler uses is read back from the index.
"""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import CORPORA, Site, archived, article_html, crawler_cmd, lorem, rss, write_config

from crawler.store import Store


def _articles(site: Site, n: int, prefix: str = "/news/") -> list[tuple[str, str]]:
    out = []
    for i in range(n):
        path, title = f"{prefix}{i}-story.html", f"Havana and Pyongyang story {prefix}{i}"
        site.set(path, article_html(title, lorem(f"story {prefix}{i} about Cuba")))
        out.append((path, title))
    return out


def _state(cfg: Path, name: str) -> dict[str, object]:
    store = Store(cfg / "data" / "index.sqlite3")
    try:
        return store.source_state(name)
    finally:
        store.close()


def _poll(cfg: Path, *names: str) -> str:
    result = crawler_cmd("poll", "--config", str(cfg), *names)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _article_requests(site: Site, prefix: str = "/news/") -> int:
    return sum(1 for path, _ in site.requests if path.startswith(prefix))


def test_feed_etag_304_costs_no_parsing_and_no_article_request(site: Site, tmp_path: Path) -> None:
    entries = _articles(site, 2)
    site.set("/feed.xml", rss(site, entries), content_type="application/rss+xml", headers={"ETag": '"v1"'})
    cfg = write_config(tmp_path / "config", [{"name": "etagged", "url": site.url("/feed.xml")}])
    assert "etagged: 2 new" in _poll(cfg)
    fetched = _article_requests(site)
    assert "etagged: unchanged since the last poll" in _poll(cfg)
    feed_requests = [h for p, h in site.requests if p == "/feed.xml"]
    assert feed_requests[-1].get("if-none-match") == '"v1"'
    assert _article_requests(site) == fetched
    assert _state(cfg, "etagged")["etag"] == '"v1"'


def test_same_body_without_validators_counts_as_unchanged(site: Site, tmp_path: Path) -> None:
    site.set("/feed.xml", rss(site, _articles(site, 1)), content_type="application/rss+xml")
    cfg = write_config(tmp_path / "config", [{"name": "plain", "url": site.url("/feed.xml")}])
    assert "plain: 1 new" in _poll(cfg)
    assert "plain: unchanged since the last poll" in _poll(cfg)
    site.set("/feed.xml", rss(site, _articles(site, 2)), content_type="application/rss+xml")
    assert "plain: 1 new, 0 duplicate, 0 failed, 1 already known" in _poll(cfg)


def test_backoff_grows_with_failures_and_resets_on_success(site: Site, tmp_path: Path) -> None:
    site.set("/feed.xml", "down", status=500)
    cfg = write_config(tmp_path / "config", [{"name": "flaky", "url": site.url("/feed.xml"), "every": "1h"}])
    waits = []
    for expected_failures in (1, 2, 3):
        start = datetime.now(UTC)
        assert "flaky: FAILED: HTTP 500" in _poll(cfg)
        state = _state(cfg, "flaky")
        assert state["failures"] == expected_failures
        waits.append(datetime.fromisoformat(str(state["next_poll"])) - start)
    # A 5xx is a soft failure (weight 0.5): the wait is the interval times 1.5, 2, 2.5 (plus jitter).
    for wait, factor in zip(waits, (1.5, 2.0, 2.5), strict=True):
        assert timedelta(hours=factor) - timedelta(seconds=5) <= wait <= timedelta(hours=factor * 1.1)
    assert "HTTP 500" in str(_state(cfg, "flaky")["last_error"])

    site.set("/feed.xml", rss(site, _articles(site, 1)), content_type="application/rss+xml")
    start = datetime.now(UTC)
    assert "flaky: 1 new" in _poll(cfg)
    state = _state(cfg, "flaky")
    assert state["failures"] == 0 and state["last_error"] is None
    wait = datetime.fromisoformat(str(state["next_poll"])) - start
    assert timedelta(hours=1) - timedelta(seconds=5) <= wait <= timedelta(hours=1.1)


def test_connection_failures_weigh_more_than_server_errors(site: Site, tmp_path: Path) -> None:
    site.set("/feed.xml", "x", status=503)
    cfg = write_config(
        tmp_path / "config",
        [
            {"name": "busy", "url": site.url("/feed.xml"), "every": "1h"},
            {"name": "dead", "url": "http://127.0.0.1:9/feed.xml", "every": "1h"},
        ],
    )
    _poll(cfg)
    assert _state(cfg, "busy")["failure_weight"] == 0.5
    assert _state(cfg, "dead")["failure_weight"] == 1.0


def test_retry_after_pushes_the_next_poll(site: Site, tmp_path: Path) -> None:
    site.set("/feed.xml", "slow down", status=429, headers={"Retry-After": "7200"})
    cfg = write_config(
        tmp_path / "config", [{"name": "limited", "url": site.url("/feed.xml"), "every": "10m"}]
    )
    start = datetime.now(UTC)
    assert "limited: FAILED: HTTP 429" in _poll(cfg)
    wait = datetime.fromisoformat(str(_state(cfg, "limited")["next_poll"])) - start
    assert wait >= timedelta(hours=2) - timedelta(seconds=5)
    assert site.hits_of("/feed.xml") == 1  # not hammered with retries


def test_gone_410_disables_the_source_with_a_clear_message(site: Site, tmp_path: Path) -> None:
    site.set("/feed.xml", "gone", status=410)
    site.set("/ok.xml", rss(site, []), content_type="application/rss+xml")
    cfg = write_config(
        tmp_path / "config",
        [{"name": "gone", "url": site.url("/feed.xml")}, {"name": "fine", "url": site.url("/ok.xml")}],
    )
    out = _poll(cfg)
    assert "gone: FAILED: HTTP 410" in out and "STOPPED" in out and "410 Gone" in out
    sources = crawler_cmd("sources", "--config", str(cfg)).stdout
    assert re.search(r"^gone\t.*STOPPED: .*410 Gone", sources, re.M)
    # Not polled any more, unless named; the other source carries on.
    hits = site.hits_of("/feed.xml")
    out = _poll(cfg)
    assert "gone:" not in out and "fine:" in out
    assert site.hits_of("/feed.xml") == hits
    # A new URL in the config starts afresh.
    site.set("/moved.xml", rss(site, _articles(site, 1)), content_type="application/rss+xml")
    write_config(
        tmp_path / "config",
        [{"name": "gone", "url": site.url("/moved.xml")}, {"name": "fine", "url": site.url("/ok.xml")}],
    )
    assert "gone: 1 new" in _poll(cfg)


def test_permanent_redirect_is_followed_and_reported(site: Site, tmp_path: Path) -> None:
    site.set("/new.xml", rss(site, _articles(site, 1)), content_type="application/rss+xml")
    site.redirect("/old.xml", "/new.xml", 301)
    cfg = write_config(tmp_path / "config", [{"name": "moved", "url": site.url("/old.xml")}])
    out = _poll(cfg)
    assert "moved: 1 new" in out
    assert f"moved permanently to {site.url('/new.xml')}: update its url in sources.yaml" in out
    assert _state(cfg, "moved")["redirected_to"] == site.url("/new.xml")


def test_listing_source_takes_new_links_in_page_order(site: Site, tmp_path: Path) -> None:
    def index(paths: list[tuple[str, str]]) -> str:
        links = "".join(f'<li><a href="{p}">{t}</a></li>' for p, t in paths)
        return (
            "<html><body><nav><a href='/about-us'>About</a><a href='/contact'>Contact</a></nav>"
            f"<ul class='news'>{links}</ul><aside><a href='/other/1-ad.html'>Ad</a></aside></body></html>"
        )

    arts = _articles(site, 3)
    site.set("/index.html", index(arts[:2]))
    cfg = write_config(
        tmp_path / "config",
        [
            {
                "name": "ministry",
                "url": site.url("/index.html"),
                "kind": "listing",
                "links": {"css": "ul.news a"},
            }
        ],
    )
    assert "ministry: 2 new" in _poll(cfg)
    site.set("/index.html", index([arts[2], *arts[:2]]))
    before = len(site.requests)
    assert "ministry: 1 new, 0 duplicate, 0 failed, 2 already known" in _poll(cfg)
    fetched = [p for p, _ in site.requests[before:] if p.startswith("/news/")]
    assert fetched == [arts[2][0]]
    titles = sorted(f.read_text("utf-8").split("\n", 1)[0] for f in archived(cfg / "data"))
    assert titles == sorted(t for _, t in arts)  # the article pages' own titles
    assert not any(p.startswith(("/about-us", "/contact", "/other/")) for p, _ in site.requests)


def test_sitemap_index_and_news_sitemap_skip_old_entries_without_fetching(site: Site, tmp_path: Path) -> None:
    arts = _articles(site, 3)
    now = datetime.now(UTC)
    dates = [now - timedelta(hours=2), now - timedelta(days=1), now - timedelta(days=90)]
    urls = "".join(
        f"<url><loc>{site.url(p)}</loc><news:news><news:publication><news:name>T</news:name>"
        f"<news:language>en</news:language></news:publication>"
        f"<news:publication_date>{d.isoformat(timespec='seconds')}</news:publication_date>"
        f"<news:title>{t}</news:title></news:news></url>"
        for (p, t), d in zip(arts, dates, strict=True)
    )
    news = (
        "<?xml version='1.0' encoding='UTF-8'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9' "
        f"xmlns:news='http://www.google.com/schemas/sitemap-news/0.9'>{urls}</urlset>"
    )
    site.set("/news-sitemap.xml.gz", gzip.compress(news.encode()), content_type="application/x-gzip")
    site.set(
        "/sitemap.xml",
        "<?xml version='1.0' encoding='UTF-8'?><sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
        f"<sitemap><loc>{site.url('/news-sitemap.xml.gz')}</loc></sitemap></sitemapindex>",
        content_type="application/xml",
    )
    cfg = write_config(
        tmp_path / "config", [{"name": "maps", "url": site.url("/sitemap.xml"), "kind": "sitemap"}]
    )
    assert "maps: 2 new" in _poll(cfg)
    assert site.hits_of(arts[2][0]) == 0  # 90 days old: over the 30-day max age, never fetched
    published = sorted(
        json.loads(f.with_suffix(".json").read_text("utf-8"))["published"] for f in archived(cfg / "data")
    )
    assert published == sorted(d.isoformat(timespec="seconds") for d in dates[:2])


def test_auto_source_discovers_the_feed_or_falls_back_to_a_listing(site: Site, tmp_path: Path) -> None:
    arts = _articles(site, 2)
    site.set("/feed.xml", rss(site, arts[:1]), content_type="application/rss+xml")
    site.set(
        "/",
        "<html><head><link rel='alternate' type='application/rss+xml' href='/feed.xml'></head>"
        "<body><p>Welcome</p></body></html>",
    )
    site.set(
        "/nofeed/",
        f"<html><body><main><h2><a href='{arts[1][0]}'>{arts[1][1]}</a></h2></main></body></html>",
    )
    cfg = write_config(
        tmp_path / "config",
        [
            {"name": "withfeed", "url": site.url("/"), "kind": "auto"},
            {"name": "nofeed", "url": site.url("/nofeed/"), "kind": "auto"},
        ],
    )
    out = _poll(cfg)
    assert "withfeed: 1 new" in out and "nofeed: 1 new" in out
    table = crawler_cmd("sources", "--config", str(cfg)).stdout
    assert re.search(rf"^withfeed\tauto -> feed {re.escape(site.url('/feed.xml'))}\t", table, re.M)
    assert re.search(r"^nofeed\tauto -> listing\t", table, re.M)
    # Once found, the feed is read directly: the home page is not fetched again.
    home_hits = site.hits_of("/")
    _poll(cfg, "withfeed")
    assert site.hits_of("/") == home_hits


def test_sources_table_and_digest_health(site: Site, tmp_path: Path) -> None:
    site.set("/ok.xml", rss(site, _articles(site, 1)), content_type="application/rss+xml")
    site.set("/bad.xml", "no", status=500)
    cfg = write_config(
        tmp_path / "config",
        [
            {"name": "ok", "url": site.url("/ok.xml"), "every": "2h"},
            {"name": "bad", "url": site.url("/bad.xml"), "every": "auto"},
        ],
    )
    _poll(cfg)
    table = crawler_cmd("sources", "--config", str(cfg)).stdout.splitlines()
    header = table[0].split("\t")
    rows = {line.split("\t")[0]: dict(zip(header, line.split("\t"), strict=True)) for line in table[1:]}
    assert header == [
        "source", "kind", "interval", "last poll", "last new item", "new in 7 days",
        "failures", "last error", "next poll",
    ]  # fmt: skip
    assert rows["ok"]["interval"] == "2h" and rows["ok"]["new in 7 days"] == "1"
    assert rows["ok"]["failures"] == "0" and rows["ok"]["next poll"] != "-"
    assert rows["bad"]["interval"].startswith("auto") and rows["bad"]["failures"] == "1"
    assert rows["bad"]["last error"] == "HTTP 500"
    today = datetime.now(UTC).date().isoformat()
    assert crawler_cmd("digest", "--config", str(cfg), "--date", today).returncode == 0
    digest = (cfg / "data" / "digests" / f"{today}.md").read_text("utf-8")
    assert "## Source health" in digest
    assert "- bad: failing, 1 poll(s) in a row; last error: HTTP 500" in digest


REALWORLD = CORPORA / "realworld-feeds"


def _realworld_samples() -> list[object]:
    manifest = REALWORLD / "manifest.json"
    if not manifest.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"corpus absent: {manifest}"))]
    entries = [e for e in json.loads(manifest.read_text("utf-8")) if not e["bozo"] and e["entry_links"]]
    # One of each dialect the corpus has, so RSS, Atom and RDF all go through the whole poll.
    chosen: dict[str, dict[str, object]] = {}
    for e in entries:
        chosen.setdefault(str(e["feedparser_version"])[:3], e)
    return [pytest.param(e, id=str(e["path"])) for e in chosen.values()]


@pytest.mark.parametrize("entry", _realworld_samples())
def test_real_world_feeds_are_polled_over_http(site: Site, tmp_path: Path, entry: dict[str, object]) -> None:
    body = (REALWORLD / str(entry["path"])).read_bytes()
    # The feed's article links point at the public web; serve it with them pointing at our own server.
    links = [str(link) for link in entry["entry_links"] if str(link).startswith("http")]  # type: ignore[attr-defined]
    hosts = {re.match(r"https?://[^/]+", link).group(0) for link in links}  # type: ignore[union-attr]
    for host in sorted(hosts, key=len, reverse=True):
        body = body.replace(host.encode(), site.base.encode())
    site.set("/feed", body, content_type="application/xml")
    # Backfill: these captures are years old, and old entries are otherwise skipped before their download.
    cfg = write_config(tmp_path / "config", [{"name": "real", "url": site.url("/feed"), "backfill": True}])
    out = _poll(cfg)
    match = re.search(r"real: (\d+) new, (\d+) duplicate, (\d+) failed, (\d+) already known", out)
    assert match, out
    # Every entry with a link was taken from the feed and its page requested (all 404 here).
    assert sum(int(n) for n in match.groups()) == len(set(links))


def test_guard_refuses_a_source_on_loopback_by_default(site: Site, tmp_path: Path) -> None:
    site.set("/feed.xml", rss(site, _articles(site, 1)), content_type="application/rss+xml")
    cfg = write_config(tmp_path / "config", [{"name": "local", "url": site.url("/feed.xml")}])
    settings = (cfg / "crawler.yaml").read_text("utf-8").replace("networks: true", "networks: false")
    (cfg / "crawler.yaml").write_text(settings, "utf-8")
    out = _poll(cfg)
    assert "local: FAILED: refused: 127.0.0.1 is a loopback address (set fetch.allow_private_networks" in out
    assert site.requests == []  # not one byte reached the server
    assert _state(cfg, "local")["failure_weight"] == 1.0  # a configuration problem, not a busy server


def test_opml_import_and_export_through_the_cli(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config", [{"name": "first", "url": "https://one.example.org/feed"}])
    sources = cfg / "sources.yaml"
    sources.write_text("# my sources, hand-written\n" + sources.read_text("utf-8"), "utf-8")
    opml = tmp_path / "subs.opml"
    opml.write_text(
        "<?xml version='1.0'?><opml version='2.0'><head><title>subs</title></head><body>"
        "<outline text='News'><outline text='Granma English' type='rss' xmlUrl='https://en.granma.example/feed'/>"
        "<outline text='Already there' type='rss' xmlUrl='https://one.example.org/feed'/></outline>"
        "</body></opml>",
        "utf-8",
    )
    result = crawler_cmd("import-opml", str(opml), "--config", str(cfg))
    assert result.returncode == 0, result.stderr
    assert "1 of 2 feed(s) added" in result.stdout
    text = sources.read_text("utf-8")
    assert text.startswith("# my sources, hand-written\n")
    assert "https://en.granma.example/feed" in text
    assert crawler_cmd("check", "--config", str(cfg)).returncode == 0
    exported = crawler_cmd("export-opml", "--config", str(cfg))
    assert exported.returncode == 0
    assert 'xmlUrl="https://en.granma.example/feed"' in exported.stdout
    assert 'xmlUrl="https://one.example.org/feed"' in exported.stdout
