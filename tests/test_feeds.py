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
    if str(entry["path"]).endswith(".json"):
        # A JSON Feed: feedparser reads none (the manifest has no entries), parse_feed reads it itself.
        doc = json.loads(body)
        assert [i.url for i in parse_feed(body, base)] == [item["url"] for item in doc["items"]]
        return
    if not entry["feedparser_version"] and not entry["n_entries"]:
        # feedparser could not read it as a feed at all (ill-formed beyond repair): a FeedError.
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


# -- JSON Feed ----------------------------------------------------------------------------------------------

JSON_URL = "https://news.example.org/feed.json"


def json_feed(items: list[Any], version: str = "https://jsonfeed.org/version/1.1") -> bytes:
    return json.dumps({"version": version, "title": "Example", "items": items}).encode()


def test_json_feed_11() -> None:
    body = json_feed(
        [
            {
                "id": "post-1",
                "url": "https://news.example.org/2024/03/kim-maduro",
                "title": "Kim meets  Maduro",
                "date_published": "2024-03-05T14:30:00+01:00",
                "date_modified": "2024-03-06T00:00:00Z",
            },
            # only date_modified: taken as the date, as feedparser does with Atom's <updated>
            {
                "id": 42,
                "url": "/world/havana",
                "title": "Havana &amp; Caracas",
                "date_modified": "2024-03-04",
            },
            # a link-blog post: the article is elsewhere
            {"id": "3", "external_url": "https://other.example.com/story", "content_text": "Worth reading"},
            {"id": "4", "content_text": "A status update with no page"},
            {"id": "5", "url": "mailto:desk@example.org"},
            "not an object",
        ]
    )
    assert parse_feed(body, JSON_URL, {"Content-Type": "application/feed+json"}) == [
        FeedItem(
            url="https://news.example.org/2024/03/kim-maduro",
            guid="post-1",
            title="Kim meets Maduro",
            published=datetime(2024, 3, 5, 13, 30, tzinfo=UTC),
        ),
        FeedItem(
            url="https://news.example.org/world/havana",  # relative: resolved against the feed's URL
            guid="42",  # a number, read as a string as the spec says
            title="Havana & Caracas",
            published=datetime(2024, 3, 4, tzinfo=UTC),  # no offset: UTC
        ),
        FeedItem(url="https://other.example.com/story", guid="3"),
    ]


@pytest.mark.parametrize(
    ("prefix", "headers"),
    [
        pytest.param(b"", {}, id="no-content-type"),
        pytest.param(b"\xef\xbb\xbf\n  ", {"Content-Type": "text/plain"}, id="bom-and-space-wrong-type"),
        pytest.param(b"", {"content-type": "application/json; charset=utf-8"}, id="application-json"),
    ],
)
def test_json_feed_detected_by_body_or_type(prefix: bytes, headers: dict[str, str]) -> None:
    body = prefix + json_feed(
        [{"id": "1", "url": "https://news.example.org/a", "title": "Pyongyang–Caracas"}],
        version="https://jsonfeed.org/version/1",
    )
    assert [(i.url, i.title) for i in parse_feed(body, JSON_URL, headers)] == [
        ("https://news.example.org/a", "Pyongyang–Caracas")
    ]


def test_xml_feed_labelled_json_still_read() -> None:
    body = rss_doc("<item><title>t</title><link>https://news.example.org/x</link></item>").encode()
    assert [i.url for i in parse_feed(body, FEED_URL, {"Content-Type": "application/json"})] == [
        "https://news.example.org/x"
    ]


def test_json_feed_dates() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    body = json_feed(
        [
            {"url": "https://news.example.org/far", "date_published": (now + timedelta(days=3)).isoformat()},
            {
                "url": "https://news.example.org/near",
                "date_published": (now + timedelta(hours=2)).isoformat(),
            },
            {"url": "https://news.example.org/bad", "date_published": "last Tuesday"},
            {
                "url": "https://news.example.org/fallback",
                "date_published": "garbage",
                "date_modified": "2024-01-02T03:04:05.678Z",
            },
        ]
    )
    assert [i.published for i in parse_feed(body, JSON_URL)] == [
        None,
        now + timedelta(hours=2),
        None,
        datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
    ]


def test_json_feed_invalid_utf8_is_replaced_not_fatal() -> None:
    body = json_feed([{"url": "https://news.example.org/a", "title": "Caf\u00e9"}]).replace(
        b"Caf\\u00e9",
        b"Caf\xe9",  # a Latin-1 byte in a UTF-8 document
    )
    assert b"\xe9" in body
    (item,) = parse_feed(body, JSON_URL)
    assert item.title == "Caf\ufffd"


def test_empty_json_feed_is_an_empty_list() -> None:
    assert parse_feed(json_feed([]), JSON_URL) == []


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        pytest.param(b'{"items": [', {}, r"^not a feed: invalid JSON", id="truncated"),
        pytest.param(b"", {"Content-Type": "application/json"}, r"^not a feed: invalid JSON", id="empty"),
        pytest.param(
            b'{"status": "ok", "items": []}', {}, r"^not a feed: JSON without a JSON Feed", id="api"
        ),
        pytest.param(b"[1, 2, 3]", {}, r"^not a feed: JSON without a JSON Feed", id="array"),
        pytest.param(
            b'{"version": "https://jsonfeed.org/version/1.1", "items": {"a": 1}}',
            {},
            r'^broken JSON Feed: "items" is a dict, not a list',
            id="items-not-a-list",
        ),
        pytest.param(b"[" * 100_000, {}, r"^not a feed: invalid JSON", id="nesting-bomb"),
    ],
)
def test_broken_json_feed_raises(body: bytes, headers: dict[str, str], message: str) -> None:
    with pytest.raises(FeedError, match=message):
        parse_feed(body, JSON_URL, headers)


def test_realworld_json_feeds() -> None:
    folder = REALWORLD / "feedjira" / "spec" / "sample_feeds"
    if not folder.is_dir():
        pytest.skip(f"corpus absent: {folder}")
    items = parse_feed((folder / "json_feed.json").read_bytes(), "http://inessential.com/feed.json")
    assert len(items) == 20
    assert items[0] == FeedItem(
        url="http://inessential.com/2017/06/02/james_dempsey_and_the_breakpoints_benefi",
        guid="http://inessential.com/2017/06/02/james_dempsey_and_the_breakpoints_benefi",
        title="James Dempsey and the Breakpoints Benefit App Camp for Girls",
        published=datetime(2017, 6, 3, 5, 5, 47, tzinfo=UTC),  # 2017-06-02T22:05:47-07:00
    )
    escaped = parse_feed(
        (folder / "json_feed_with_escaped_uris.json").read_bytes(), "https://lukedorny.com/feed"
    )
    assert escaped[0].url == "https://lukedorny.com/updates/new-font"  # "https:\/\/…" in the JSON
    assert escaped[0].published == datetime(2025, 1, 6, 1, 40, tzinfo=UTC)
    assert all(i.url.startswith("https://lukedorny.com/") and i.title for i in escaped)
