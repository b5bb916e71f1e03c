"""Feed discovery for `auto` sources: a fetched home page -> the feed it advertises (trafilatura.feeds)."""

from __future__ import annotations

import gzip
import json
from urllib.parse import urlsplit

import pytest
from conftest import CORPORA, Site

from crawler.discover import discover_feed

HOME = "https://news.example.org/"


def page(head: str = "", body: str = "") -> bytes:
    return (
        f"<!DOCTYPE html><html><head><title>Example</title>{head}</head><body>{body}</body></html>".encode()
    )


def alt(href: str, kind: str = "application/rss+xml", title: str = "Feed") -> str:
    return f'<link rel="alternate" type="{kind}" title="{title}" href="{href}">'


# -- advertised alternates --------------------------------------------------------------------------------


def test_first_advertised_alternate_wins() -> None:
    body = page(alt("/feed.xml") + alt("/atom.xml", "application/atom+xml"), '<a href="/other/rss">RSS</a>')
    assert discover_feed(body, HOME) == "https://news.example.org/feed.xml"


def test_atom_and_json_feed_alternates() -> None:
    assert discover_feed(page(alt("/atom", "application/atom+xml")), HOME) == "https://news.example.org/atom"
    body = page(alt("https://news.example.org/feed.json", "application/feed+json"))
    assert discover_feed(body, HOME) == "https://news.example.org/feed.json"


def test_type_with_parameters_and_relative_href() -> None:
    body = page(alt("rss/latest.xml", "application/rss+xml; charset=UTF-8"))
    assert (
        discover_feed(body, "https://news.example.org/en/index.html")
        == "https://news.example.org/en/rss/latest.xml"
    )


def test_base_href_is_honoured() -> None:
    body = page('<base href="https://static.example.org/site/">' + alt("feed/"))
    assert discover_feed(body, HOME) == "https://static.example.org/site/feed/"


def test_alternate_on_another_host_is_accepted() -> None:
    # Feeds are often served by FeedBurner or a CDN: an alternate is the site's own statement.
    body = page(alt("https://feeds.feedburner.com/ExampleNews"))
    assert discover_feed(body, HOME) == "https://feeds.feedburner.com/ExampleNews"


def test_wordpress_head() -> None:
    # The REST API and oEmbed links are alternates too, and the comments feed comes first on some themes.
    head = (
        '<link rel="https://api.w.org/" href="https://news.example.org/wp-json/">'
        + alt("https://news.example.org/wp-json/wp/v2/pages/2", "application/json", "JSON")
        + alt("https://news.example.org/wp-json/oembed/1.0/embed?url=x", "application/json+oembed")
        + alt("https://news.example.org/comments/feed/", title="Comments Feed")
        + alt("https://news.example.org/feed/", title="Example » Feed")
    )
    assert discover_feed(page(head), HOME) == "https://news.example.org/feed/"


# -- links in the page ------------------------------------------------------------------------------------


def test_feed_looking_link_on_same_site_when_no_alternate() -> None:
    body = page(
        body='<a href="https://partner.example.com/rss.xml">Partner</a> <a href="/sitemap.xml">Sitemap</a>'
        '<a href="/service/rss.html">About our feeds</a> <a href="/news/feed">Our feed</a>'
        '<a href="/rss">RSS</a>'
    )
    assert discover_feed(body, HOME) == "https://news.example.org/news/feed"


def test_only_other_sites_feeds_gives_none() -> None:
    body = page(body='<a href="https://partner.example.com/feed">Partner feed</a>')
    assert discover_feed(body, HOME) is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(page(body="<p>No feed here.</p><a href='/world/story'>A story</a>"), id="plain-page"),
        pytest.param(page(alt("/comments/feed/")), id="only-comments-feed"),
        pytest.param(page(alt("")), id="empty-href"),
        pytest.param(b"", id="empty"),
        pytest.param(bytes(range(256)), id="binary"),
    ],
)
def test_no_feed(body: bytes) -> None:
    assert discover_feed(body, HOME) is None


def test_encoded_page() -> None:
    # Decoded by its <meta charset>; the Cyrillic path comes back percent-encoded as UTF-8, as URLs are.
    head = '<meta charset="windows-1251">' + alt("/rss/новости.xml", title="Новости")
    body = page(head).decode("utf-8").encode("cp1251")
    assert (
        discover_feed(body, HOME)
        == "https://news.example.org/rss/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8.xml"
    )
    body = page(alt("/rss.xml", title="Новости")).decode().encode("cp1251")
    assert discover_feed(body, HOME, "text/html; charset=windows-1251") == "https://news.example.org/rss.xml"


# -- the page is a feed -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            b"<?xml version='1.0' encoding='utf-8'?>\n<rss version='2.0'><channel/></rss>", id="rss"
        ),
        pytest.param(
            b"\xef\xbb\xbf<?xml version='1.0'?><?xml-stylesheet href='s.xsl'?><!-- c -->\n"
            b"<feed xmlns='http://www.w3.org/2005/Atom'/>",
            id="atom-bom-stylesheet-comment",
        ),
        pytest.param(b"<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'/>", id="rdf"),
        pytest.param(
            json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": []}).encode(), id="json"
        ),
    ],
)
def test_page_that_is_a_feed_is_its_own_feed(body: bytes) -> None:
    assert discover_feed(body, "https://news.example.org/feed") == "https://news.example.org/feed"


def test_xhtml_page_is_not_mistaken_for_a_feed() -> None:
    body = (
        b"<?xml version='1.0' encoding='utf-8'?><html xmlns='http://www.w3.org/1999/xhtml'><head>"
        + alt("/feed.atom", "application/atom+xml").encode()
        + b"</head><body/></html>"
    )
    assert discover_feed(body, HOME) == "https://news.example.org/feed.atom"


# -- nothing is downloaded --------------------------------------------------------------------------------


def test_discovery_downloads_nothing(site: Site) -> None:
    site.set("/feed.xml", "<rss version='2.0'><channel/></rss>", content_type="application/rss+xml")
    body = page(alt(site.url("/feed.xml")), f'<a href="{site.url("/rss")}">rss</a>')
    assert discover_feed(body, site.url("/")) == site.url("/feed.xml")
    body = page(body=f'<a href="{site.url("/news/feed")}">feed</a>')
    assert discover_feed(body, site.url("/")) == site.url("/news/feed")
    assert site.hits == []


# -- real pages -------------------------------------------------------------------------------------------


def test_real_pages_advertising_feeds() -> None:
    folder = CORPORA / "fundus"
    if not (folder / "ground-truth.json").exists():
        pytest.skip(f"corpus absent: {folder}")
    truth = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    expected = {
        "at__KleineZeitung_2025_06_30": "https://www.kleinezeitung.at/rss/kaernten",
        "ca__FinancialPost_2026_06_06": "https://financialpost.com/feed/atom",
    }
    for page_id, feed in expected.items():
        body = gzip.decompress((folder / "html" / f"{page_id}.html.gz").read_bytes())
        assert discover_feed(body, truth[page_id]["url"]) == feed
    for page_id in sorted(truth)[:40]:
        body = gzip.decompress((folder / "html" / f"{page_id}.html.gz").read_bytes())
        found = discover_feed(body, truth[page_id]["url"])
        assert found is None or urlsplit(found).scheme in ("http", "https"), (page_id, found)
