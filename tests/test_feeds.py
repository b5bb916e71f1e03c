"""The feed stage: downloaded bytes -> FeedItems, with the real feedparser."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urljoin

import pytest
from conftest import CORPORA

from crawler.feeds import FeedError, parse_feed
from crawler.models import FeedItem

FEED_URL = "https://news.example.org/feeds/main.xml"
REALWORLD = CORPORA / "realworld-feeds"


def rss_doc(items: str, encoding: str = "utf-8", prolog: bool = True) -> str:
    head = f'<?xml version="1.0" encoding="{encoding}"?>\n' if prolog else ""
    return (
        f'{head}<rss version="2.0"><channel><title>Example news</title><link>https://news.example.org/</link>'
        f"<description>d</description>{items}</channel></rss>"
    )


def one_title(title_xml: str) -> str | None:
    body = rss_doc(f"<item><title>{title_xml}</title><link>https://news.example.org/a</link></item>")
    (item,) = parse_feed(body.encode("utf-8"), FEED_URL)
    return item.title


# -- formats ------------------------------------------------------------------------------------------------


def test_rss20() -> None:
    body = rss_doc(
        """
<item><title>Kim meets Maduro</title><link>https://news.example.org/world/kim-maduro</link>
  <guid isPermaLink="false">story-1001</guid><pubDate>Tue, 05 Mar 2024 14:30:00 +0100</pubDate></item>
<item><title>Havana hosts forum</title><link>https://news.example.org/world/havana</link>
  <guid>https://news.example.org/world/havana</guid><pubDate>Mon, 04 Mar 2024 08:00:00 GMT</pubDate></item>
"""
    ).encode()
    assert parse_feed(body, FEED_URL) == [
        FeedItem(
            url="https://news.example.org/world/kim-maduro",
            guid="story-1001",
            title="Kim meets Maduro",
            published=datetime(2024, 3, 5, 13, 30, tzinfo=UTC),
        ),
        FeedItem(
            url="https://news.example.org/world/havana",
            guid="https://news.example.org/world/havana",
            title="Havana hosts forum",
            published=datetime(2024, 3, 4, 8, 0, tzinfo=UTC),
        ),
    ]


def test_atom10() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Example</title><id>urn:uuid:feed</id><updated>2024-03-01T10:00:00Z</updated>
  <link rel="self" href="https://news.example.org/atom.xml"/>
  <entry><title>First &amp; foremost</title><id>urn:uuid:1</id>
    <link rel="alternate" href="https://news.example.org/a/1"/>
    <published>2024-03-01T09:30:00+02:00</published><updated>2024-03-01T10:00:00Z</updated></entry>
  <entry><title>Second</title><id>tag:news.example.org,2024:2</id>
    <link rel="alternate" type="text/html" href="https://news.example.org/a/2"/>
    <updated>2024-02-28T08:00:00Z</updated></entry>
</feed>"""
    assert parse_feed(body, FEED_URL) == [
        FeedItem(
            url="https://news.example.org/a/1",
            guid="urn:uuid:1",
            title="First & foremost",
            published=datetime(2024, 3, 1, 7, 30, tzinfo=UTC),
        ),
        FeedItem(
            url="https://news.example.org/a/2",
            guid="tag:news.example.org,2024:2",
            title="Second",
            published=datetime(2024, 2, 28, 8, 0, tzinfo=UTC),  # only <updated>: taken as the date
        ),
    ]


def test_rss10_rdf() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://news.example.org/"><title>Example</title><link>https://news.example.org/</link>
    <description>d</description>
    <items><rdf:Seq><rdf:li rdf:resource="https://news.example.org/r/1"/>
      <rdf:li rdf:resource="https://news.example.org/r/2"/></rdf:Seq></items></channel>
  <item rdf:about="https://news.example.org/r/1"><title>RDF one</title><link>https://news.example.org/r/1</link>
    <dc:date>2024-01-05T12:00:00Z</dc:date></item>
  <item rdf:about="https://news.example.org/r/2"><title>RDF two</title><link>https://news.example.org/r/2</link>
  </item>
</rdf:RDF>"""
    items = parse_feed(body, FEED_URL)
    assert [(i.url, i.title, i.published) for i in items] == [
        ("https://news.example.org/r/1", "RDF one", datetime(2024, 1, 5, 12, 0, tzinfo=UTC)),
        ("https://news.example.org/r/2", "RDF two", None),
    ]
    assert items[0].guid == "https://news.example.org/r/1"  # rdf:about is the item's identity


def test_json_feed_is_not_supported() -> None:
    # feedparser 6 reads no JSON Feed: it must fail as "not a feed", not look like an empty feed.
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Example",
            "items": [{"id": "1", "url": "https://news.example.org/a/1", "title": "One"}],
        }
    ).encode()
    with pytest.raises(FeedError, match=r"^not a feed"):
        parse_feed(body, FEED_URL, {"Content-Type": "application/feed+json"})


# -- links, GUIDs, dates ------------------------------------------------------------------------------------


def test_relative_links_resolved_against_feed_url() -> None:
    body = rss_doc(
        "<item><title>a</title><link>stories/1.html</link></item>"
        "<item><title>b</title><link>/world/2.html</link></item>"
        "<item><title>c</title><link>//cdn.example.net/3.html</link></item>"
        "<item><title>d</title><link>  https://other.example.com/4  </link></item>"
    ).encode()
    assert [i.url for i in parse_feed(body, FEED_URL)] == [
        "https://news.example.org/feeds/stories/1.html",
        "https://news.example.org/world/2.html",
        "https://cdn.example.net/3.html",
        "https://other.example.com/4",
    ]


def test_relative_atom_links_follow_xml_base() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://blog.example.com/posts/">
  <title>t</title><id>urn:x</id><updated>2024-01-01T00:00:00Z</updated>
  <entry><title>e</title><id>urn:e</id><link href="hello-world"/>
    <updated>2024-01-01T00:00:00Z</updated></entry>
</feed>"""
    assert [i.url for i in parse_feed(body, FEED_URL)] == ["https://blog.example.com/posts/hello-world"]


def test_entries_without_usable_link_are_skipped() -> None:
    body = rss_doc(
        "<item><title>no link</title><description>text only</description></item>"
        "<item><title>kept</title><link>https://news.example.org/kept</link></item>"
        "<item><title>mail</title><link>mailto:desk@example.org</link></item>"
        "<item><title>script</title><link>javascript:void(0)</link></item>"
        "<item><title>not a url guid</title><guid isPermaLink='false'>abc-123</guid></item>"
    ).encode()
    assert [(i.title, i.url) for i in parse_feed(body, FEED_URL)] == [
        ("kept", "https://news.example.org/kept")
    ]


def test_permalink_guid_used_as_link() -> None:
    body = rss_doc(
        "<item><title>permalink</title><guid>https://news.example.org/p/1</guid></item>"
        "<item><title>explicit</title><guid isPermaLink='true'>https://news.example.org/p/2</guid></item>"
    ).encode()
    items = parse_feed(body, FEED_URL)
    assert [(i.url, i.guid) for i in items] == [
        ("https://news.example.org/p/1", "https://news.example.org/p/1"),
        ("https://news.example.org/p/2", "https://news.example.org/p/2"),
    ]


def test_guid_marked_not_permalink_is_not_a_link() -> None:
    body = rss_doc(
        "<item><title>opaque</title><guid isPermaLink='false'>https://cms.example.org/?p=123</guid></item>"
    ).encode()
    assert parse_feed(body, FEED_URL) == []


def test_guid_kept_and_stripped() -> None:
    body = rss_doc(
        "<item><title>a</title><link>https://news.example.org/a</link><guid isPermaLink='false'>"
        "  urn:story:42  </guid></item>"
        "<item><title>b</title><link>https://news.example.org/b</link></item>"
    ).encode()
    assert [i.guid for i in parse_feed(body, FEED_URL)] == ["urn:story:42", None]


def test_published_is_aware_utc() -> None:
    body = rss_doc(
        "<item><title>a</title><link>https://news.example.org/a</link>"
        "<pubDate>Wed, 06 Mar 2024 23:15:00 -0500</pubDate></item>"
    ).encode()
    (item,) = parse_feed(body, FEED_URL)
    assert item.published == datetime(2024, 3, 7, 4, 15, tzinfo=UTC)
    assert item.published is not None and item.published.utcoffset() == timedelta(0)


def test_future_dates_ignored_near_future_kept() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    far = now + timedelta(days=3)
    near = now + timedelta(hours=2)  # clocks and time zones differ: within a day is not "the future"
    body = rss_doc(
        f"<item><title>far</title><link>https://news.example.org/far</link>"
        f"<pubDate>{format_datetime(far)}</pubDate></item>"
        f"<item><title>near</title><link>https://news.example.org/near</link>"
        f"<pubDate>{format_datetime(near)}</pubDate></item>"
        f"<item><title>garbage</title><link>https://news.example.org/garbage</link>"
        f"<pubDate>not a date at all</pubDate></item>"
    ).encode()
    far_item, near_item, garbage = parse_feed(body, FEED_URL)
    assert far_item.published is None
    assert near_item.published == near
    assert garbage.published is None


# -- titles -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title_xml", "expected"),
    [
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("Kim&#8217;s visit &#8211; day 2", "Kim’s visit – day 2"),
        ("Caf&#233; talks", "Café talks"),
        ("  Multi\n   line\ttitle  ", "Multi line title"),
        ("Kim\u200b visits\u2060 Havana\ufeff", "Kim visits Havana"),
        ("Kim\x07 visits\x1b Havana", "Kim visits Havana"),
        ("Vertical\x0btab", "Vertical tab"),
        ("<![CDATA[Plain CDATA title]]>", "Plain CDATA title"),
        ("", None),
        ("   ", None),
        pytest.param(
            "<![CDATA[Kim&#8217;s visit &amp; talks]]>",
            "Kim’s visit & talks",
            id="entities-in-cdata",
        ),
        pytest.param(
            "Tom &amp;amp; Jerry",
            "Tom & Jerry",
            id="double-escaped",
        ),
    ],
)
def test_title_cleaned(title_xml: str, expected: str | None) -> None:
    assert one_title(title_xml) == expected


def test_atom_html_title_becomes_plain_text() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:x</id><updated>2024-01-01T00:00:00Z</updated>
  <entry><title type="html">Kim &lt;b&gt;visits&lt;/b&gt; Havana &amp;amp; Caracas</title>
    <id>urn:e</id><link href="https://news.example.org/e"/><updated>2024-01-01T00:00:00Z</updated></entry>
</feed>"""
    (item,) = parse_feed(body, FEED_URL)
    assert item.title == "Kim visits Havana & Caracas"


# -- not a feed, empty feeds --------------------------------------------------------------------------------

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Example news</title></head><body><h1>Welcome</h1>"
    b"<p>Latest stories</p><a href='/a'>A story</a><br></body></html>"
)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(HTML_PAGE, {"Content-Type": "text/html; charset=utf-8"}, id="html-page"),
        pytest.param(HTML_PAGE, {}, id="html-page-no-content-type"),
        pytest.param(bytes(range(256)) * 8, {"Content-Type": "application/octet-stream"}, id="binary"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), {}, id="png"),
        pytest.param(b"Service temporarily unavailable", {"Content-Type": "text/plain"}, id="plain-text"),
    ],
)
def test_not_a_feed_raises_feed_error(body: bytes, headers: dict[str, str]) -> None:
    with pytest.raises(FeedError) as err:
        parse_feed(body, FEED_URL, headers)
    assert str(err.value).startswith("not a feed: ")
    assert len(str(err.value)) <= 211


def test_truncated_feed_without_entries_raises() -> None:
    body = (
        b"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title><item><title>bro"
    )
    with pytest.raises(FeedError):
        parse_feed(body, FEED_URL, {"Content-Type": "application/rss+xml"})


def test_well_formed_xml_that_is_not_a_feed_raises() -> None:
    xhtml = (
        b"<?xml version='1.0' encoding='utf-8'?><html xmlns='http://www.w3.org/1999/xhtml'>"
        b"<head><title>Moved</title></head><body><p>Our feed moved.</p></body></html>"
    )
    with pytest.raises(FeedError, match=r"^not a feed"):
        parse_feed(xhtml, FEED_URL, {"Content-Type": "application/xml"})


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(rss_doc("").encode(), id="rss"),
        pytest.param(
            b"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><title>x</title>"
            b"<id>urn:x</id><updated>2024-01-01T00:00:00Z</updated></feed>",
            id="atom",
        ),
    ],
)
def test_empty_valid_feed_returns_empty_list(body: bytes) -> None:
    assert parse_feed(body, FEED_URL, {"Content-Type": "application/xml"}) == []


def test_broken_but_readable_feed_still_yields_entries() -> None:
    # bozo is a warning: an undefined entity makes the XML ill-formed; feedparser's loose parser reads it.
    body = rss_doc(
        "<item><title>Caf&eacute; news</title><link>https://news.example.org/a</link></item>"
        "<item><title>Second</title><link>https://news.example.org/b</link></item>"
    ).encode()
    assert [(i.title, i.url) for i in parse_feed(body, FEED_URL)] == [
        ("Café news", "https://news.example.org/a"),
        ("Second", "https://news.example.org/b"),
    ]


# -- encodings ----------------------------------------------------------------------------------------------

CYRILLIC = "Пхеньян и Каракас: новости дня"


def test_windows_1251_declared_in_prolog() -> None:
    body = rss_doc(
        f"<item><title>{CYRILLIC}</title><link>https://news.example.org/ru/1</link></item>", "windows-1251"
    ).encode("cp1251")
    (item,) = parse_feed(body, FEED_URL, {"Content-Type": "application/rss+xml"})
    assert item.title == CYRILLIC


@pytest.mark.parametrize("media_type", ["application/rss+xml", "application/xml", "text/xml"])
def test_windows_1251_declared_only_in_content_type(media_type: str) -> None:
    xml = rss_doc(f"<item><title>{CYRILLIC}</title><link>https://news.example.org/ru/1</link></item>")
    xml = xml.replace('<?xml version="1.0" encoding="utf-8"?>', '<?xml version="1.0"?>')
    assert "encoding" not in xml
    body = xml.encode("cp1251")
    (item,) = parse_feed(body, FEED_URL, {"Content-Type": f"{media_type}; charset=windows-1251"})
    assert item.title == CYRILLIC


def test_header_names_are_case_insensitive() -> None:
    xml = rss_doc(
        f"<item><title>{CYRILLIC}</title><link>https://news.example.org/ru/1</link></item>", prolog=False
    )
    body = xml.encode("cp1251")
    (item,) = parse_feed(body, FEED_URL, {"content-TYPE": "application/xml; charset=windows-1251"})
    assert item.title == CYRILLIC


# -- the real-world corpus ----------------------------------------------------------------------------------

# Where parse_feed legitimately differs from feedparser's entry links in the manifest: a link that is not
# http(s) after resolving it against the feed URL (missing-fields.atom: feedparser takes the Atom id
# "tag:github.com,2008:..." for a link) is no article to fetch, so expected_links() drops it.


def _manifest() -> list[Any]:
    path = REALWORLD / "manifest.json"
    if not path.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"corpus absent: {path}"), id="absent")]
    entries = json.loads(path.read_text(encoding="utf-8"))
    return [pytest.param(e, id=e["path"]) for e in entries]


def expected_links(entry: dict[str, Any], base: str) -> list[str]:
    """The manifest's entry links (feedparser's view, read without a base URL) as parse_feed gives them."""
    links = [urljoin(base, str(link).strip()) for link in entry["entry_links"] if link]
    return [link for link in links if link.startswith(("http://", "https://"))]


@pytest.mark.parametrize("entry", _manifest())
def test_realworld_corpus(entry: dict[str, Any]) -> None:
    body = (REALWORLD / str(entry["path"])).read_bytes()
    base = "https://feeds.example.net/some/feed.xml"
    if not entry["feedparser_version"] and not entry["n_entries"]:
        # feedparser could not read it as a feed at all (ill-formed beyond repair, JSON Feed): a FeedError.
        with pytest.raises(FeedError, match=r"^not a feed"):
            parse_feed(body, base)
        return
    try:
        items = parse_feed(body, base)
    except FeedError:
        assert entry["bozo"], "a well-formed feed with entries was refused"
        return
    links = expected_links(entry, base)
    if not entry["bozo"]:
        assert len(items) == len(links)
    # feedparser 6.0.14 wrote the manifest: even ill-formed (bozo) feeds must give the same links, in order.
    assert [i.url for i in items] == links
    titles = [
        " ".join(html.unescape(re.sub(r"<[^>]+>", "", title or "")).split()) or None
        for link, title in zip(entry["entry_links"], entry["entry_titles"], strict=True)
        if link and urljoin(base, str(link).strip()).startswith(("http://", "https://"))
    ]
    assert [i.title for i in items] == titles
    for item in items:
        assert item.published is None or item.published.tzinfo is not None
