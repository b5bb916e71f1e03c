"""The sitemap stage: a downloaded sitemap -> its recent pages (urlset) or its child sitemaps (sitemapindex).

Google News sitemaps are urlsets whose entries carry <news:news> with a publication date and a title; the
publication date is the best date a sitemap gives, then <lastmod>. Entries older than the source's max age are
dropped here, before anything is fetched: a site's full sitemap may list every article since 2005.

Scrapy's `scrapy.utils.sitemap.Sitemap` parses with the same safe lxml options used below, but it keeps only
the direct children of each <url>, so <news:publication_date> and <news:title>, one level deeper, are lost;
hence lxml directly. .xml.gz sitemaps are decompressed with zlib under the same size cap as downloads (not
with Scrapy's gunzip: this module runs in worker processes, which have no use for Scrapy's imports).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin

from lxml import etree

from crawler.models import FeedItem

MAX_BYTES = 15 * 1024 * 1024

# Entities are never expanded (no XXE: a SYSTEM entity naming a local file stays an unexpanded reference; no
# billion laughs), nothing is fetched from the network (DTDs, entities), and libxml2's limits on huge
# documents stay on.
_SAFE = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}
# An "&" not starting an entity or character reference: the commonest error in hand-rolled sitemaps
# (?a=1&b=2). libxml2's recover mode would silently drop "&b" from the address.
_BARE_AMPERSAND = re.compile(rb"&(?!(?:[A-Za-z][\w.-]*|#\d+|#x[0-9A-Fa-f]+);)")


class SitemapError(Exception):
    """The document is not a readable sitemap; the message says why, for the poll summary."""


@dataclass(frozen=True, slots=True)
class SitemapPage:
    items: list[FeedItem] = field(default_factory=list)  # a urlset's pages, in document order
    sitemaps: list[str] = field(default_factory=list)  # a sitemapindex's children, newest first


def parse_sitemap(
    body: bytes, url: str, now: datetime, max_age: timedelta | None, max_bytes: int = MAX_BYTES
) -> SitemapPage:
    """Read a sitemap (plain or gzip-compressed); raise SitemapError when it is not one or is too large."""
    if len(body) > max_bytes:
        raise SitemapError(f"sitemap larger than {max_bytes} bytes")
    if body[:2] == b"\x1f\x8b":
        # A .xml.gz file is gzip data whatever its Content-Type (application/x-gzip, octet-stream, none).
        # Content-Encoding: gzip is undone by the downloader before this, so only these bytes tell.
        body = _gunzip(body, max_bytes)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    cutoff = now - max_age if max_age is not None else None
    root = _parse_xml(body)
    if root is None:
        urls = _text_sitemap(body)
        if urls:
            return SitemapPage(items=[FeedItem(url=u) for u in urls])
        raise SitemapError("not a sitemap: not an XML document")
    kind = etree.QName(root).localname
    if kind == "urlset":
        return SitemapPage(items=_urlset(root, url, now, cutoff))
    if kind == "sitemapindex":
        return SitemapPage(sitemaps=_index(root, url, now, cutoff))
    if kind in ("rss", "feed", "RDF"):
        raise SitemapError(f"not a sitemap: the document is a feed (<{kind}>); use `kind: feed`")
    raise SitemapError(f"not a sitemap: the root element is <{kind}>, not <urlset> or <sitemapindex>")


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    """Decompress gzip data, every member of it, stopping past max_bytes of output (a gzip bomb).

    A corrupt or truncated end keeps what decompressed before it, as browsers do: a sitemap cut in transit
    still lists its first pages (the XML parser recovers the cut document).
    """
    out = bytearray()
    rest = data
    while rest:
        unzip = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip header and trailer
        try:
            out += unzip.decompress(rest, max_bytes + 1 - len(out))  # one byte over the cap is enough to know
        except zlib.error as exc:
            if out:
                break  # garbage after a member, or a corrupt end: keep what came before
            raise SitemapError(f"broken gzip data: {exc}") from None
        if len(out) > max_bytes:
            raise SitemapError(f"gzip sitemap larger than {max_bytes} bytes once decompressed")
        if not unzip.eof:
            if out:
                break  # truncated
            raise SitemapError("broken gzip data: truncated before any content")
        rest = unzip.unused_data.lstrip(b"\x00")  # another member may follow, after zero padding
    return bytes(out)


def _parse_xml(body: bytes) -> etree._Element | None:
    for data in (body, _BARE_AMPERSAND.sub(b"&amp;", body)):
        try:
            return etree.fromstring(data, etree.XMLParser(**_SAFE))
        except etree.XMLSyntaxError:
            continue  # well-formed XML parses on the first pass; repaired ampersands may help the second
    return None


def _urlset(root: etree._Element, base: str, now: datetime, cutoff: datetime | None) -> list[FeedItem]:
    items: dict[str, FeedItem] = {}
    for entry in _children(root, "url"):
        link = _loc(entry, base)
        if link is None or link in items:
            continue
        news = _child(entry, "news")
        published = _date(_text(_child(news, "publication_date")), now) or _date(
            _text(_child(entry, "lastmod")), now
        )
        if cutoff is not None and published is not None and published < cutoff:
            continue  # too old to be news; undated entries are kept, since nothing says they are old
        items[link] = FeedItem(url=link, title=_title(_text(_child(news, "title"))), published=published)
    return list(items.values())


def _index(root: etree._Element, base: str, now: datetime, cutoff: datetime | None) -> list[str]:
    dated: list[tuple[datetime, str]] = []
    undated: list[str] = []
    seen: set[str] = set()
    for entry in _children(root, "sitemap"):
        link = _loc(entry, base)
        if link is None or link in seen:
            continue
        seen.add(link)
        modified = _date(_text(_child(entry, "lastmod")), now)
        if modified is None:
            undated.append(link)
        elif cutoff is None or modified >= cutoff:
            dated.append((modified, link))  # a child last changed before the cutoff holds only old pages
    # Newest first: the child sitemap that changed last holds the new articles. Undated children follow, in
    # document order, since nothing says how old they are.
    dated.sort(key=lambda pair: pair[0], reverse=True)
    return [link for _when, link in dated] + undated


def _children(parent: etree._Element | None, name: str) -> list[etree._Element]:
    # By local name: sitemaps in the wild use the http or https sitemaps.org namespace, or none at all.
    if parent is None:
        return []
    return [el for el in parent if isinstance(el.tag, str) and etree.QName(el).localname == name]


def _child(parent: etree._Element | None, name: str) -> etree._Element | None:
    found = _children(parent, name)
    return found[0] if found else None


def _text(el: etree._Element | None) -> str:
    # XPath string() leaves unexpanded (external) entity references out, where itertext() would give "&xxe;".
    return str(el.xpath("string()")).strip() if el is not None else ""


def _loc(entry: etree._Element, base: str) -> str | None:
    loc = _text(_child(entry, "loc"))
    # Locations must be absolute; a relative one is resolved rather than lost. urljoin is not applied to
    # absolute ones: it would drop an empty ";" parameter part.
    link = loc if loc.startswith(("http://", "https://")) or not loc else urljoin(base, loc)
    return link if link.startswith(("http://", "https://")) else None


def _title(text: str) -> str | None:
    return " ".join(text.split()) or None


def _date(text: str, now: datetime) -> datetime | None:
    """A W3C datetime (2024, 2024-03, 2024-03-05, 2024-03-05T14:30:00+01:00) as aware UTC, or None."""
    if not text:
        return None
    if re.fullmatch(r"\d{4}(-\d{2})?", text):
        text = text + "-01" * (2 - text.count("-"))  # a year or a month: its first day
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    # A time without an offset breaks the W3C format; UTC is the likeliest meaning.
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    # A date far in the future is a broken sitemap, not news from tomorrow: treated as no date.
    return when if when <= now + timedelta(days=1) else None


def _text_sitemap(body: bytes) -> list[str]:
    """The sitemaps.org text format: one URL a line, UTF-8. Anything else in it means it is not one."""
    try:
        lines = [line.strip() for line in body.decode("utf-8-sig").splitlines() if line.strip()]
    except UnicodeDecodeError:
        return []
    if lines and all(re.fullmatch(r"https?://\S+", line) for line in lines):
        return list(dict.fromkeys(lines))
    return []
