"""The sitemap stage: urlsets, sitemap indexes, Google News sitemaps, gzip, and hostile XML."""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import Site

from crawler.models import FeedItem
from crawler.sitemaps import SitemapError, SitemapPage, parse_sitemap

URL = "https://news.example.org/sitemap.xml"
NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
MONTH = timedelta(days=30)
NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
NEWS_NS = 'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'


def urlset(entries: str, ns: str = NS) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {ns}>{entries}</urlset>'.encode()


def url(loc: str, lastmod: str | None = None, extra: str = "") -> str:
    mod = f"<lastmod>{lastmod}</lastmod>" if lastmod else ""
    return f"<url><loc>{loc}</loc>{mod}{extra}</url>"


def parse(body: bytes, max_age: timedelta | None = MONTH, **kw: int) -> SitemapPage:
    return parse_sitemap(body, URL, NOW, max_age, **kw)


# -- urlset -----------------------------------------------------------------------------------------------


def test_urlset_dates_order_and_age() -> None:
    body = urlset(
        url("https://news.example.org/world/kim-maduro", "2024-03-05T14:30:00+01:00")
        + url("https://news.example.org/world/undated")  # no date: nothing says it is old, kept
        + url("https://news.example.org/world/too-old", "2023-12-01")  # older than 30 days: skipped
        + url("https://news.example.org/world/day-only", "2024-03-09")
        + url("https://news.example.org/world/kim-maduro", "2024-03-05")  # listed twice: once
        + url("https://news.example.org/world/no-offset", "2024-03-08T10:00:00")
        + url("https://news.example.org/world/month-only", "2024-03")
        + url("https://news.example.org/world/future", "2024-06-01T00:00:00Z")  # broken date: no date
        + url("/world/relative", "2024-03-09T00:00Z")
        + url("mailto:desk@example.org")
        + url("", "2024-03-09")
        + "<url><lastmod>2024-03-09</lastmod></url>"  # no <loc>
    )
    assert parse(body).items == [
        FeedItem(
            "https://news.example.org/world/kim-maduro", published=datetime(2024, 3, 5, 13, 30, tzinfo=UTC)
        ),
        FeedItem("https://news.example.org/world/undated"),
        FeedItem("https://news.example.org/world/day-only", published=datetime(2024, 3, 9, tzinfo=UTC)),
        FeedItem("https://news.example.org/world/no-offset", published=datetime(2024, 3, 8, 10, tzinfo=UTC)),
        FeedItem("https://news.example.org/world/month-only", published=datetime(2024, 3, 1, tzinfo=UTC)),
        FeedItem("https://news.example.org/world/future"),
        FeedItem("https://news.example.org/world/relative", published=datetime(2024, 3, 9, tzinfo=UTC)),
    ]


def test_no_max_age_keeps_everything() -> None:
    body = urlset(
        url("https://news.example.org/a", "2001-01-01") + url("https://news.example.org/b", "2024-03-01")
    )
    page = parse(body, max_age=None)
    assert [i.url for i in page.items] == ["https://news.example.org/a", "https://news.example.org/b"]
    assert page.sitemaps == []


def test_naive_now_is_utc() -> None:
    body = urlset(url("https://news.example.org/a", "2024-03-09T11:00:00Z"))
    naive = NOW.replace(tzinfo=None)
    assert len(parse_sitemap(body, URL, naive, timedelta(hours=25)).items) == 1
    assert parse_sitemap(body, URL, naive, timedelta(hours=24)).items == []


@pytest.mark.parametrize(
    "ns",
    [
        pytest.param(NS, id="sitemaps.org"),
        pytest.param('xmlns="https://www.sitemaps.org/schemas/sitemap/0.9"', id="https-namespace"),
        pytest.param("", id="no-namespace"),
    ],
)
def test_namespace_variants(ns: str) -> None:
    assert [i.url for i in parse(urlset(url("https://news.example.org/a"), ns)).items] == [
        "https://news.example.org/a"
    ]


def test_unescaped_ampersand_kept_in_url() -> None:
    # Invalid XML, common in hand-written sitemaps; libxml2's recover mode would lose the "&b".
    body = urlset(
        url("https://news.example.org/article.php?id=7&lang=en")
        + url("https://news.example.org/x?a=1&amp;b=2")
    )
    assert [i.url for i in parse(body).items] == [
        "https://news.example.org/article.php?id=7&lang=en",
        "https://news.example.org/x?a=1&b=2",
    ]


def test_cdata_location() -> None:
    body = urlset("<url><loc><![CDATA[https://news.example.org/x?a=1&b=2]]></loc></url>")
    assert [i.url for i in parse(body).items] == ["https://news.example.org/x?a=1&b=2"]


# -- Google News ------------------------------------------------------------------------------------------


def news(pub: str, title: str) -> str:
    return (
        "<news:news><news:publication><news:name>Example</news:name><news:language>en</news:language>"
        f"</news:publication><news:publication_date>{pub}</news:publication_date>"
        f"<news:title>{title}</news:title></news:news>"
    )


def test_google_news_sitemap() -> None:
    body = urlset(
        url(
            "https://news.example.org/a",
            "2024-03-10T00:00:00Z",
            news("2024-03-09T08:00:00-05:00", "Kim &amp; Maduro\n  meet"),
        )
        # The publication date wins over a recent <lastmod>: an old story edited today is still old.
        + url("https://news.example.org/b", "2024-03-10", news("2023-01-05", "Old story, fixed typo"))
        + url("https://news.example.org/c", "2024-03-08", news("not a date", "Falls back to lastmod"))
        + url(
            "https://news.example.org/d",
            None,
            "<image:image xmlns:image='x'><image:loc>i.jpg</image:loc></image:image>",
        ),
        ns=f"{NS} {NEWS_NS}",
    )
    assert parse(body).items == [
        FeedItem(
            "https://news.example.org/a",
            title="Kim & Maduro meet",
            published=datetime(2024, 3, 9, 13, tzinfo=UTC),
        ),
        FeedItem(
            "https://news.example.org/c",
            title="Falls back to lastmod",
            published=datetime(2024, 3, 8, tzinfo=UTC),
        ),
        FeedItem("https://news.example.org/d"),
    ]


# -- sitemap index ----------------------------------------------------------------------------------------


def test_sitemap_index_newest_first_old_skipped() -> None:
    body = (
        f'<?xml version="1.0"?><sitemapindex {NS}>'
        "<sitemap><loc>https://news.example.org/sitemap-2024-01.xml</loc><lastmod>2024-01-31</lastmod></sitemap>"
        "<sitemap><loc>https://news.example.org/sitemap-pages.xml</loc></sitemap>"
        "<sitemap><loc>https://news.example.org/sitemap-2024-03.xml.gz</loc><lastmod>2024-03-10T06:00Z</lastmod></sitemap>"
        "<sitemap><loc>https://news.example.org/sitemap-2024-02.xml</loc><lastmod>2024-02-29</lastmod></sitemap>"
        "<sitemap><loc>/sitemap-news.xml</loc></sitemap>"
        "<sitemap><loc>https://news.example.org/sitemap-2024-03.xml.gz</loc></sitemap>"
        "</sitemapindex>"
    ).encode()
    page = parse(body)
    assert page.items == []
    assert page.sitemaps == [
        "https://news.example.org/sitemap-2024-03.xml.gz",
        "https://news.example.org/sitemap-2024-02.xml",
        "https://news.example.org/sitemap-pages.xml",  # undated: after the dated, in document order
        "https://news.example.org/sitemap-news.xml",
    ]  # January's sitemap last changed more than 30 days ago: skipped
    assert parse(body, max_age=None).sitemaps[2] == "https://news.example.org/sitemap-2024-01.xml"


# -- gzip and size limits ---------------------------------------------------------------------------------

SMALL = urlset(url("https://news.example.org/a", "2024-03-09") + url("https://news.example.org/b"))


def test_gzip_sitemap() -> None:
    assert parse(gzip.compress(SMALL)) == parse(SMALL)
    assert len(parse(gzip.compress(SMALL)).items) == 2


def test_gzip_bomb_stops_at_the_default_limit() -> None:
    # 16 MiB of white space compress to about 16 KiB; decompression must stop at 15 MiB.
    bomb = gzip.compress(SMALL[:-9] + b" " * (16 * 1024 * 1024) + b"</urlset>", compresslevel=1)
    assert len(bomb) < 100_000
    with pytest.raises(SitemapError, match=r"larger than 15728640 bytes once decompressed"):
        parse(bomb)


def test_size_limits_are_a_parameter() -> None:
    packed = gzip.compress(SMALL)
    assert len(packed) < 200 < len(SMALL)
    with pytest.raises(SitemapError, match=r"larger than 200 bytes once decompressed"):
        parse(packed, max_bytes=200)
    with pytest.raises(SitemapError, match=r"^sitemap larger than 100 bytes"):
        parse(SMALL, max_bytes=100)
    assert len(parse(SMALL, max_bytes=len(SMALL)).items) == 2


def test_broken_gzip() -> None:
    with pytest.raises(SitemapError, match=r"^broken gzip data"):
        parse(b"\x1f\x8b\x08\x00garbage-not-deflate")


def test_truncated_gzip_keeps_what_arrived() -> None:
    # scrapy's gunzip returns what decompressed before the cut; the XML is then cut too.
    cut = gzip.compress(SMALL)[:-8]  # the CRC and size trailer lost
    assert len(parse(cut).items) == 2


# -- not sitemaps -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            b"<!DOCTYPE html><html><body><p>Hello<br></body></html>", "not an XML document", id="html"
        ),
        pytest.param(
            b"<?xml version='1.0'?><html xmlns='http://www.w3.org/1999/xhtml'><body/></html>",
            "the root element is <html>",
            id="xhtml",
        ),
        pytest.param(
            b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>",
            "the document is a feed (<rss>); use `kind: feed`",
            id="rss",
        ),
        pytest.param(
            b"<feed xmlns='http://www.w3.org/2005/Atom'><title>t</title></feed>", "a feed (<feed>)", id="atom"
        ),
        pytest.param(b'{"items": []}', "not an XML document", id="json"),
        pytest.param(b"", "not an XML document", id="empty"),
        pytest.param(b"Service unavailable, try later", "not an XML document", id="text"),
        pytest.param(bytes(range(256)), "not an XML document", id="binary"),
        pytest.param(SMALL[:60], "not an XML document", id="truncated"),
    ],
)
def test_not_a_sitemap(body: bytes, message: str) -> None:
    with pytest.raises(SitemapError, match=r"^not a sitemap: ") as err:
        parse(body)
    assert message in str(err.value)


def test_text_sitemap() -> None:
    body = b"\xef\xbb\xbfhttps://news.example.org/a\r\n\r\nhttps://news.example.org/b\nhttps://news.example.org/a\n"
    assert parse(body).items == [
        FeedItem("https://news.example.org/a"),
        FeedItem("https://news.example.org/b"),
    ]


# -- hostile XML ------------------------------------------------------------------------------------------


def test_external_entities_are_never_read(tmp_path: Path, site: Site) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7f3a9c", encoding="utf-8")
    site.set("/evil.dtd", '<!ENTITY remote "REMOTE-ENTITY-TEXT">', content_type="application/xml-dtd")
    site.set("/entity.txt", "REMOTE-ENTITY-TEXT", content_type="text/plain")
    body = f"""<?xml version="1.0"?>
<!DOCTYPE urlset [
  <!ENTITY xxe SYSTEM "file://{secret}">
  <!ENTITY net SYSTEM "{site.url("/entity.txt")}">
  <!ENTITY % dtd SYSTEM "{site.url("/evil.dtd")}">
  %dtd;
]>
<urlset {NS} {NEWS_NS}>
  <url><loc>https://news.example.org/a?x=&xxe;</loc><news:news><news:title>Title &xxe; &net;</news:title>
    <news:publication_date>2024-03-09</news:publication_date></news:news></url>
  <url><loc>https://news.example.org/b/&net;</loc></url>
</urlset>""".encode()
    page = parse(body)
    assert "TOP-SECRET" not in repr(page)
    assert "REMOTE-ENTITY-TEXT" not in repr(page)
    assert site.hits == []  # no DTD or entity fetched from the network
    assert [i.url for i in page.items] == ["https://news.example.org/a?x=", "https://news.example.org/b/"]


def test_billion_laughs_does_not_blow_up() -> None:
    entities = '<!ENTITY lol0 "lollollollollollollollollollol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )  # lol9 would expand to 3 * 10**10 bytes
    body = f'<?xml version="1.0"?><!DOCTYPE urlset [{entities}]><urlset {NS}><url><loc>https://news.example.org/&lol9;</loc></url></urlset>'
    start = time.monotonic()
    with pytest.raises(SitemapError, match=r"^not a sitemap"):
        parse(body.encode())
    assert time.monotonic() - start < 2


def test_quadratic_blowup_does_not_blow_up() -> None:
    # One large entity referenced many times: no nesting, yet gigabytes if expanded.
    big = "A" * 50_000
    refs = "&big;" * 50_000
    body = f'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY big "{big}">]><urlset {NS}><url><loc>https://news.example.org/{refs}</loc></url></urlset>'
    start = time.monotonic()
    try:
        page = parse(body.encode())
    except SitemapError:
        pass
    else:
        assert sum(len(i.url) for i in page.items) < 10_000_000
    assert time.monotonic() - start < 2
