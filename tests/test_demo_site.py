"""The demo site generated from seeds/: what its page generator promises.

The seeds are split into article and furniture; the pages put the furniture back around a clean article; a
real HTTP server on 127.0.0.1 serves them with an RSS feed; and trafilatura, given a page, gives back exactly
the story's paragraphs, none of the furniture. The crawler's end-to-end demo test builds on these promises.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import feedparser
import pytest
import trafilatura
from lxml import html as lxml_html
from trafilatura.settings import Document

from crawler.demo_site import UNDATED, DemoSite, SeedStory, build_site, read_seed, read_seeds, serve_demo_site

SEEDS = Path(__file__).resolve().parent.parent / "seeds"

TITLES = {
    "000_85f3c6427496f1b0": (
        "A powerful struggle is being vigorously waged in Latin America region, once regarded as “the U.S. "
        "backyard”, to defend independence of the country and realize international justice."
    ),
    "001_b8998ac28c7ea876": "Is North Korea Building a Venezuela-Cuba Alliance Against U.S Hegemony?",
    "002_59b3a61990ad4313": "South-South cooperation – irreversible trend of times",
    "003_61bfcabb314d16dc": "Venezuela and North Korea to Deepen Ties Against ‘Common Enemies’",
    "004_b17abc5e754d6b97": "Russia wants ‘strong’ Latin America – Putin",
}

# Furniture each seed is known to carry (000's sidebar is checked on its own below).
KNOWN_FURNITURE = {
    "001_b8998ac28c7ea876": [
        "- Advertisement -",
        "Subscribe to our newsletter",
        "Sign up here to get the latest news, updates and special offers delivered directly to your inbox.",
    ],
    "002_59b3a61990ad4313": ["September 17, 2022", "2023 © All rights reserved."],
    "003_61bfcabb314d16dc": [
        "Venezuelan President Nicolas Maduro gives a press conference at Miraflores presidential pa",
        "AP Photo/Ariana Cubillos, Korean Central News Agency/Korea News Service via AP, File",
        "COMMENTS",
        "Please let us know if you're having issues with commenting.",
    ],
    "004_b17abc5e754d6b97": ["29 Sep, 2023 18:28", "Russia wants ‘strong’ Latin America – Putin"],
}

STORIES = read_seeds(SEEDS)


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()


def story_id(story: SeedStory) -> str:
    return story.slug[:3]


# --- reading the seeds ----------------------------------------------------------------------------


def test_all_five_seeds_are_read_in_order() -> None:
    assert [s.slug for s in STORIES] == list(TITLES)


@pytest.mark.parametrize("slug", TITLES)
def test_title_is_the_headline_a_reader_would_name(slug: str) -> None:
    assert read_seed(SEEDS / f"{slug}.txt").title == TITLES[slug]


@pytest.mark.parametrize("story", STORIES, ids=story_id)
def test_paragraphs_are_verbatim_article_lines_without_furniture(story: SeedStory) -> None:
    raw_lines = {line.strip() for line in (SEEDS / f"{story.slug}.txt").read_text("utf-8").split("\n")}
    assert len(story.paragraphs) >= 4
    assert all(p and p == p.strip() and p in raw_lines for p in story.paragraphs)
    assert not set(story.paragraphs) & set(story.furniture)
    assert story.title not in story.paragraphs
    # Every non-blank line of the seed is accounted for: title, paragraph or furniture.
    assert {line for line in raw_lines if line} == {story.title, *story.paragraphs, *story.furniture}


@pytest.mark.parametrize("slug", KNOWN_FURNITURE)
def test_known_furniture_is_recognised(slug: str) -> None:
    story = read_seed(SEEDS / f"{slug}.txt")
    for line in KNOWN_FURNITURE[slug]:
        assert line in story.furniture
        assert line not in story.paragraphs


def test_004_icon_junk_and_dateline_are_furniture_and_give_the_date() -> None:
    story = read_seed(SEEDS / "004_b17abc5e754d6b97.txt")
    assert story.furniture[0].startswith("icon bookmark-bicon bookmarkicon cameraicon")
    assert story.published == datetime(2023, 9, 29, 18, 28, tzinfo=UTC)
    # The standfirst under the headline is part of the article.
    assert story.paragraphs[0].startswith("Countries in the region will play an important role")


def test_000_more_from_sidebar_and_all_after_it_is_furniture() -> None:
    story = read_seed(SEEDS / "000_85f3c6427496f1b0.txt")
    assert story.paragraphs[0].startswith("Recently, left-wing forces")
    assert story.paragraphs[-1].startswith("We would strive to develop relations of friendship")
    assert story.furniture[0] == "More From Ministry of Foreign Affairs (EN)"
    assert story.furniture[-1] == "More Articles"
    assert "January 19, 2026" in story.furniture
    assert story.published is None  # the sidebar's dates belong to other stories


def test_002_date_line_gives_the_date() -> None:
    assert read_seed(SEEDS / "002_59b3a61990ad4313.txt").published == datetime(2022, 9, 17, tzinfo=UTC)


def test_blank_line_and_line_per_paragraph_layouts_read_the_same(tmp_path: Path) -> None:
    text = (SEEDS / "002_59b3a61990ad4313.txt").read_text("utf-8")
    compact = tmp_path / "002_59b3a61990ad4313.txt"
    compact.write_text("\n".join(line for line in text.split("\n") if line.strip()), "utf-8")
    assert read_seed(compact) == read_seed(SEEDS / "002_59b3a61990ad4313.txt")


# --- the pages ------------------------------------------------------------------------------------


def test_build_site_is_deterministic_and_complete() -> None:
    pages = build_site(STORIES, "http://127.0.0.1:1")
    assert pages == build_site(STORIES, "http://127.0.0.1:1")
    assert {"/", "/feed.xml", "/robots.txt", *(s.path for s in STORIES)} <= set(pages)
    assert all("charset=utf-8" in ctype for ctype, _ in pages.values())


@pytest.mark.parametrize("story", STORIES, ids=story_id)
def test_article_page_has_the_metadata_and_structure_of_a_news_page(story: SeedStory) -> None:
    url = "http://127.0.0.1:1" + story.path
    tree = lxml_html.document_fromstring(build_site(STORIES, "http://127.0.0.1:1")[story.path][1])
    assert tree.get("lang") == "en"
    assert tree.xpath("//link[@rel='canonical']/@href") == [url]
    assert tree.xpath("//meta[@property='og:title']/@content") == [story.title]
    assert [h.text_content() for h in tree.xpath("//article//h1")] == [story.title]
    assert [p.text_content() for p in tree.xpath("//article//p")] == list(story.paragraphs)
    for part in ("header", "nav", "aside", "footer", "ul[@class='share']", "div[@class='cookie-banner']"):
        assert tree.xpath(f"//{part}"), part
    (ld,) = [json.loads(s.text) for s in tree.xpath("//script[@type='application/ld+json']")]
    assert ld["@type"] == "NewsArticle" and ld["headline"] == story.title
    times = tree.xpath("//article//time/@datetime")
    if story.published:
        assert ld["datePublished"] == story.published.isoformat() and times == [story.published.isoformat()]
    else:
        assert "datePublished" not in ld and not times
    # The furniture is not dropped: it is on the page (never in a paragraph, see above), as on its own site.
    page_text = " ".join(tree.itertext())
    assert all(line in page_text for line in story.furniture)


def test_html_is_escaped() -> None:
    nasty = SeedStory(
        slug="999_0000000000000000",
        title='Tom & "Jerry" <script>alert(1)</script>',
        published=None,
        paragraphs=("a < b & c > d", "</script><p>x", "third", "fourth"),
        furniture=(),
    )
    body = build_site([nasty], "http://127.0.0.1:1")[nasty.path][1]
    tree = lxml_html.document_fromstring(body)
    assert tree.xpath("//h1")[0].text_content() == nasty.title
    assert [p.text_content() for p in tree.xpath("//article//p")] == list(nasty.paragraphs)
    (ld,) = [json.loads(s.text) for s in tree.xpath("//script[@type='application/ld+json']")]
    assert ld["headline"] == nasty.title
    assert b"<script>alert" not in body and b"</script><p>" not in body


# --- served over HTTP -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site() -> Iterator[DemoSite]:
    with serve_demo_site(SEEDS) as running:
        yield running


def test_server_listens_on_loopback_and_serves_the_feed(site: DemoSite) -> None:
    assert site.base_url.startswith("http://127.0.0.1:")
    assert site.feed_url == site.base_url + "/feed.xml"
    assert site.stories == STORIES
    status, headers, body = get(site.feed_url)
    assert status == 200
    assert headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert headers["content-length"] == str(len(body))
    assert body.count(b'<guid isPermaLink="true">') == 5
    feed = feedparser.parse(body)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "rss20"
    assert len(feed.entries) == 5
    for entry, story in zip(feed.entries, STORIES, strict=True):
        assert entry.title == story.title
        assert entry.link == entry.id == site.base_url + story.path
        assert entry.guidislink is False  # a real <link>; the guid is a permalink besides
        assert entry.summary == story.paragraphs[0]
        when = parsedate_to_datetime(entry.published)
        assert when == (story.published or UNDATED)


def test_feed_links_are_fetchable_pages(site: DemoSite) -> None:
    for entry in feedparser.parse(get(site.feed_url)[2]).entries:
        status, headers, body = get(entry.link)
        assert status == 200
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert headers["content-length"] == str(len(body))
        assert body.startswith(b"<!DOCTYPE html>")


def test_home_page_lists_the_headlines_and_advertises_the_feed(site: DemoSite) -> None:
    tree = lxml_html.document_fromstring(get(site.base_url + "/")[2])
    assert tree.xpath("//link[@rel='alternate'][@type='application/rss+xml']/@href") == ["/feed.xml"]
    links = {a.get("href"): a.text_content() for a in tree.xpath("//main//a")}
    assert links == {s.path: s.title for s in STORIES}


def test_unknown_path_is_404(site: DemoSite) -> None:
    with pytest.raises(urllib.error.HTTPError) as error:
        get(site.base_url + "/news/nothing-here.html")
    assert error.value.code == 404


def test_server_stops_when_the_block_ends() -> None:
    with serve_demo_site(SEEDS) as running:
        assert get(running.base_url + "/robots.txt")[0] == 200
    with pytest.raises(urllib.error.URLError):
        get(running.base_url + "/robots.txt")


# --- round trip through trafilatura ---------------------------------------------------------------


@pytest.mark.parametrize("story", STORIES, ids=story_id)
def test_trafilatura_gives_back_exactly_the_paragraphs(site: DemoSite, story: SeedStory) -> None:
    url = site.base_url + story.path
    page = get(url)[2].decode("utf-8")
    doc = trafilatura.bare_extraction(page, url=url, include_comments=False, with_metadata=True)
    assert isinstance(doc, Document) and doc.text  # a Document, since as_dict is off
    # trafilatura's text has one block per line; the <h1> stays out because the body is marked articleBody.
    lines = [line for line in doc.text.split("\n") if line.strip()]
    assert lines == list(story.paragraphs)
    assert doc.title == story.title
    for line in story.furniture:
        if line != story.title:  # 004 repeats its headline: that one line is the title, not furniture text
            assert line not in doc.text
    if story.published:
        assert doc.date == story.published.date().isoformat()
