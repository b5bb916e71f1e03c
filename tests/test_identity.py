"""One story filed once: item identity, duplicates across sources, near-duplicates, revisions, old items,
and the index rebuilt from the archive. Real local sites, the real crawler as a subprocess.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from conftest import Site, archived, article_html, crawler_cmd, lorem, write_config

NOW = datetime.now(UTC)

# One story, as a wire service wrote it.
STORY = [
    "CARACAS — Venezuela and North Korea signed an agreement on Monday to expand cooperation in agriculture, "
    "health and education, the Venezuelan foreign ministry said in a statement.",
    "The accord was signed in Caracas by the Venezuelan vice minister for Asia and the North Korean "
    "ambassador, who described the relationship between both countries as one of solidarity.",
    "Under the agreement, North Korean specialists will advise Venezuelan farmers on rice cultivation and "
    "the two countries will exchange medical students over the next three years.",
    "The ministry said the two governments also discussed the situation on the Korean peninsula and what "
    "they called the interference of foreign powers in the affairs of sovereign states.",
    "Venezuela is one of the few countries in the Americas to host a North Korean embassy, which opened in "
    "Caracas in 2019 after years of diplomatic contacts between the two governments.",
    "Analysts in the region said the agreement was largely symbolic, since trade between the two countries "
    "remains small and both are under international sanctions of various kinds.",
]
# The same event, written up independently by another outlet: a different article.
OTHER_STORY = [
    "Pyongyang and Caracas have put their friendship on paper once more, with a cooperation deal that covers "
    "farming, medicine and schooling, according to officials who attended the ceremony.",
    "Diplomats from both sides praised what they called a shared struggle against pressure from abroad, "
    "while giving few details of how the programmes would be paid for.",
    "Rice growing is at the heart of the plan: experts from the Korean side are expected to spend several "
    "seasons working with cooperatives in the Venezuelan plains.",
    "Opposition politicians in Venezuela criticised the deal, saying the government should focus on the "
    "country's own economic crisis rather than on distant allies.",
    "The embassy of the Democratic People's Republic of Korea in Caracas has been open since 2019 and is one "
    "of only a handful of such missions in Latin America.",
]


def rss_items(base: str, entries: list[dict[str, str]]) -> str:
    """RSS with explicit guid, link, pubDate and optional atom:updated per entry."""
    items = ""
    for e in entries:
        updated = f"<atom:updated>{e['updated']}</atom:updated>" if e.get("updated") else ""
        guid = f"<guid isPermaLink='false'>{escape(e['guid'])}</guid>" if e.get("guid") is not None else ""
        items += (
            f"<item><title>{escape(e['title'])}</title><link>{base}{e['path']}</link>{guid}"
            f"<pubDate>{e.get('date', format_datetime(NOW - timedelta(hours=1)))}</pubDate>{updated}</item>"
        )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0' xmlns:atom='http://www.w3.org/2005/Atom'>"
        f"<channel><title>t</title><link>{base}/</link><description>d</description>{items}</channel></rss>"
    )


def _poll(cfg: Path) -> str:
    result = crawler_cmd("poll", "--config", str(cfg))
    assert result.returncode == 0, result.stderr
    return result.stdout


def _sidecars(cfg: Path) -> list[dict[str, object]]:
    return [json.loads(p.with_suffix(".json").read_text("utf-8")) for p in archived(cfg / "data")]


def test_a_feed_repeating_a_guid_keeps_both_entries_by_guid_and_url(site: Site, tmp_path: Path) -> None:
    entries = []
    for i in range(50):
        site.set(f"/a{i}.html", article_html(f"Story {i}", lorem(f"story number {i} in Managua")))
        entries.append({"path": f"/a{i}.html", "title": f"Story {i}", "guid": f"id-{i}"})
    # Two entries share a GUID (4% of the feed): GUIDs are still trusted, and these two are keyed with URLs.
    entries[49]["guid"] = "id-48"
    site.set("/feed.xml", rss_items(site.base, entries), content_type="application/rss+xml")
    cfg = write_config(tmp_path / "config", [{"name": "repeats", "url": site.url("/feed.xml")}])
    assert "repeats: 50 new" in _poll(cfg)
    # Entries move around and one URL changes under a trusted GUID: still known, not filed again.
    site.set("/moved.html", article_html("Story 0", lorem("story number 0 in Managua")))
    entries[0]["path"] = "/moved.html"
    site.set("/feed.xml", rss_items(site.base, entries[::-1]), content_type="application/rss+xml")
    assert "repeats: 0 new, 0 duplicate, 0 failed, 50 already known" in _poll(cfg)


def test_a_feed_with_unreliable_guids_is_keyed_by_url(site: Site, tmp_path: Path) -> None:
    entries = []
    for i in range(10):
        site.set(f"/b{i}.html", article_html(f"Item {i}", lorem(f"item {i} from Havana")))
        # Every entry carries the same GUID: a broken feed. Keying by GUID would file one item.
        entries.append({"path": f"/b{i}.html", "title": f"Item {i}", "guid": "same"})
    site.set("/feed.xml", rss_items(site.base, entries), content_type="application/rss+xml")
    cfg = write_config(tmp_path / "config", [{"name": "broken", "url": site.url("/feed.xml")}])
    assert "broken: 10 new" in _poll(cfg)


def test_duplicates_from_other_sources_are_recorded_as_also_reported_by(tmp_path: Path) -> None:
    # Three sites with their own templates carry the same wire story, one of them with a sentence changed.
    sites = [Site(), Site(), Site()]
    try:
        edited = [*STORY]
        edited[2] = edited[2].replace(
            "over the next three years", "during the coming three years, officials said"
        )
        bodies = [STORY, STORY, edited]
        sources = []
        for n, (s, body) in enumerate(zip(sites, bodies, strict=True)):
            furniture = f"<div class='promo-{n}'>Site {n} exclusive offers and newsletter sign-up</div>"
            s.set(
                "/story.html",
                article_html("Venezuela and North Korea sign cooperation accord", body).replace(
                    "<main>", f"<main>{furniture}"
                ),
            )
            s.set("/other.html", article_html("A deal on paper", OTHER_STORY) if n == 0 else "")
            paths = ["/story.html", "/other.html"] if n == 0 else ["/story.html"]
            entries = [{"path": p, "title": p, "guid": f"{n}{p}"} for p in paths]
            s.set("/feed.xml", rss_items(s.base, entries), content_type="application/rss+xml")
            sources.append({"name": f"site{n}", "url": s.url("/feed.xml")})
        cfg = write_config(tmp_path / "config", sources[:1])
        assert "site0: 2 new" in _poll(cfg)
        write_config(tmp_path / "config", sources)
        out = _poll(cfg)
        assert "site1: 0 new, 1 duplicate" in out and "site2: 0 new, 1 duplicate" in out, out
    finally:
        for s in sites:
            s.close()
    sidecars = {str(side["url"]).rsplit("/", 1)[-1]: side for side in _sidecars(cfg)}
    assert set(sidecars) == {"story.html", "other.html"}  # the independent write-up is its own item
    reported = sidecars["story.html"]["also_reported_by"]
    # Both sources are polled at once, so which copy comes first varies.
    assert sorted(r["source"] for r in reported) == ["site1", "site2"]  # type: ignore[union-attr]
    assert sidecars["other.html"]["also_reported_by"] == []


def test_canonical_url_already_filed_is_a_duplicate(site: Site, tmp_path: Path) -> None:
    site.set("/a.html", article_html("Original", STORY))
    amp = article_html("Original (mobile)", [*STORY[:3], "A paragraph only the mobile page carries here."])
    site.set(
        "/amp/a.html", amp.replace("<head>", f"<head><link rel='canonical' href='{site.url('/a.html')}'>")
    )
    entries = [{"path": "/a.html", "title": "a", "guid": "1"}]
    site.set("/feed.xml", rss_items(site.base, entries), content_type="application/rss+xml")
    cfg = write_config(tmp_path / "config", [{"name": "news", "url": site.url("/feed.xml")}])
    _poll(cfg)
    site.set(
        "/feed.xml", rss_items(site.base, [*entries, {"path": "/amp/a.html", "title": "b", "guid": "2"}])
    )
    assert "news: 0 new, 1 duplicate" in _poll(cfg)


def test_updated_entries_are_fetched_again_and_filed_as_revisions(site: Site, tmp_path: Path) -> None:
    site.set("/s.html", article_html("Accord signed", STORY))
    entry = {"path": "/s.html", "title": "Accord signed", "guid": "s", "updated": "2026-11-20T10:00:00Z"}
    site.set("/feed.xml", rss_items(site.base, [entry]), content_type="application/rss+xml")
    cfg = write_config(tmp_path / "config", [{"name": "news", "url": site.url("/feed.xml")}])
    assert "news: 1 new" in _poll(cfg)

    # A typo fixed: fetched again (the entry's updated date changed) but not filed again.
    site.set("/s.html", article_html("Accord signed", [STORY[0].replace("Monday", "Monday,"), *STORY[1:]]))
    entry["updated"] = "2026-11-20T11:00:00Z"
    site.set("/feed.xml", rss_items(site.base, [entry]), content_type="application/rss+xml")
    hits = site.hits_of("/s.html")
    assert "news: 0 new, 0 duplicate, 0 failed, 1 already known" in _poll(cfg)
    assert site.hits_of("/s.html") == hits + 1
    assert len(archived(cfg / "data")) == 1

    # Rewritten: filed as a revision that names the earlier file.
    site.set("/s.html", article_html("Accord signed, then suspended", [*STORY[:2], *OTHER_STORY]))
    entry["updated"] = "2026-11-21T09:00:00Z"
    site.set("/feed.xml", rss_items(site.base, [entry]), content_type="application/rss+xml")
    assert "news: 1 new" in _poll(cfg)
    first, second = archived(cfg / "data")
    side = json.loads(second.with_suffix(".json").read_text("utf-8"))
    assert side["revision_of"] == str(first.relative_to(cfg / "data"))
    # Unchanged after that: nothing more.
    assert "news: unchanged" in _poll(cfg)


def test_old_items_are_not_filed_unless_the_source_backfills(site: Site, tmp_path: Path) -> None:
    site.set("/old.html", article_html("From the archive", STORY))
    site.set("/new.html", article_html("Fresh", OTHER_STORY))
    old = format_datetime(NOW - timedelta(days=90))
    entries = [
        {"path": "/new.html", "title": "Fresh", "guid": "n"},
        {"path": "/old.html", "title": "Old", "guid": "o", "date": old},
    ]
    site.set("/feed.xml", rss_items(site.base, entries), content_type="application/rss+xml")
    cfg = write_config(tmp_path / "config", [{"name": "news", "url": site.url("/feed.xml")}])
    assert "news: 1 new, 0 duplicate, 0 failed, 0 already known, 1 too old" in _poll(cfg)
    cfg2 = write_config(
        tmp_path / "config2", [{"name": "news", "url": site.url("/feed.xml"), "backfill": True}]
    )
    assert "news: 2 new" in _poll(cfg2)


def test_a_page_remembered_as_too_old_is_filed_by_a_source_that_backfills_it(
    site: Site, tmp_path: Path
) -> None:
    """The filing claim takes over a key an earlier poll remembered ('old'): it must not block the entry."""
    site.set("/old.html", article_html("From the archive", STORY))
    old = format_datetime(NOW - timedelta(days=90))
    entry = {"path": "/old.html", "title": "Old", "date": old}
    site.set("/a.xml", rss_items(site.base, [{**entry, "guid": "a1"}]), content_type="application/rss+xml")
    site.set("/b.xml", rss_items(site.base, [{**entry, "guid": "b1"}]), content_type="application/rss+xml")
    cfg = write_config(tmp_path / "config", [{"name": "a", "url": site.url("/a.xml")}])
    assert "a: 0 new, 0 duplicate, 0 failed, 0 already known, 1 too old" in _poll(cfg)
    sources = [
        {"name": "a", "url": site.url("/a.xml")},
        {"name": "b", "url": site.url("/b.xml"), "backfill": True},
    ]
    write_config(tmp_path / "config", sources)
    assert "b: 1 new" in _poll(cfg)
    assert [s["source"] for s in _sidecars(cfg)] == ["b"]


def test_search_and_reindex_from_the_archive_alone(site: Site, tmp_path: Path) -> None:
    site.set("/a.html", article_html("Venezuela and North Korea sign accord", STORY))
    site.set("/b.html", article_html("Nicolás Maduro speaks on the deal", OTHER_STORY))
    entries = [{"path": "/a.html", "title": "a", "guid": "a"}, {"path": "/b.html", "title": "b", "guid": "b"}]
    site.set("/feed.xml", rss_items(site.base, entries), content_type="application/rss+xml")
    cfg = write_config(tmp_path / "config", [{"name": "news", "url": site.url("/feed.xml")}])
    _poll(cfg)

    def search(*args: str) -> str:
        result = crawler_cmd("search", "--config", str(cfg), *args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    out = search("rice cultivation")
    assert "Venezuela and North Korea sign accord" in out and "[rice] [cultivation]" in out
    assert "Nicolas" not in search("nonexistentword")
    assert "Nicolás Maduro speaks" in search("nicolas")  # accents folded
    assert "Nicolás Maduro speaks" in search('"shared struggle"')
    assert search("rice", "--topic", "russia").strip() == ""
    assert "sign accord" in search("rice", "--topic", "dprk")
    assert "sign accord" in search('rice "cultivation')  # not FTS5 syntax: searched as plain words

    before = sorted(json.dumps(s, sort_keys=True) for s in _sidecars(cfg))
    (cfg / "data" / "index.sqlite3").unlink()
    for extra in (cfg / "data").glob("index.sqlite3-*"):
        extra.unlink()
    result = crawler_cmd("reindex", "--config", str(cfg))
    assert result.returncode == 0 and "2 item(s)" in result.stdout, result.stderr
    assert "sign accord" in search("rice")
    assert sorted(json.dumps(s, sort_keys=True) for s in _sidecars(cfg)) == before
    # The rebuilt index knows every item: a new poll files nothing again.
    site.set("/feed.xml", rss_items(site.base, entries[::-1]), content_type="application/rss+xml")
    out = _poll(cfg)
    assert "news: 0 new" in out and len(archived(cfg / "data")) == 2
    shutil.rmtree(cfg / "data" / "digests", ignore_errors=True)
