"""The feed stage: the bytes of a downloaded feed -> the items it lists (feedparser, and JSON Feed).

feedparser is handed the bytes and the response headers, never a URL: it must not download anything itself,
and with the Content-Type header it resolves the encoding the way RFC 3023 says. feedparser 6 reads no JSON
Feed (https://jsonfeed.org), so those are read here with the json module: the format is small and strict.

Hostile documents are stopped before feedparser sees them:
- XML entities: a feed whose DOCTYPE declares an external entity (`<!ENTITY x SYSTEM "file:///etc/passwd">`)
  or entities built from other entities (the "billion laughs") is refused. feedparser strips such
  declarations itself, but only from the text before the first tag-like `<x`: a comment holding one hides
  the DOCTYPE from it, and expat then expands the entities up to its amplification limit (a second of CPU
  and tens of MB per poll) before giving up. External entities are never read either way (expat's default).
- Size: a feed of more than MAX_FEED_ENTRIES entries is cut to its newest ones before parsing; feedparser
  takes 0.4 ms and 2 KB per entry, so 100,000 entries would hold a worker for 40 s and 200 MB.
"""

from __future__ import annotations

import calendar
import codecs
import contextlib
import hashlib
import html
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin
from xml.sax import SAXException

import feedparser
from lxml import html as lxml_html

from crawler.models import FeedItem

# Entries taken from one feed at one poll, the newest. News feeds list 10 to 100 entries, the busiest a few
# hundred, a podcast's whole back catalogue some hundreds more (730 in the real-world test corpus); a feed
# listing many thousands is an archive dump or an attack, and every entry taken may cost a page download.
MAX_FEED_ENTRIES = 1000


class FeedError(Exception):
    """The document yields no entries; the message says why, for the poll summary."""


@dataclass(frozen=True)
class FeedRead:
    items: list[FeedItem]
    listed: int  # entries the document lists (before MAX_FEED_ENTRIES), for the log


def parse_feed(body: bytes, url: str, headers: Mapping[str, str] | None = None) -> list[FeedItem]:
    """Return the feed's entries in document order (at most MAX_FEED_ENTRIES, the newest); raise FeedError
    when there are none to take."""
    return read_feed(body, url, headers).items


def read_feed(body: bytes, url: str, headers: Mapping[str, str] | None = None) -> FeedRead:
    """parse_feed, also saying how many entries the document listed before the cap."""
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    content_type = response_headers.get("content-type", "")
    if _is_json(body, content_type):
        return _capped(_parse_json_feed(body, url))
    if problem := entity_problem(body):
        raise FeedError(problem)
    body, listed = _trim_entries(body)
    response_headers.setdefault("content-location", url)
    parsed = feedparser.parse(io.BytesIO(body), response_headers=response_headers)
    entries = parsed.get("entries") or []
    reason = parsed.get("bozo_exception")
    if not entries and not parsed.get("version"):
        raise FeedError(f"not a feed: {_not_a_feed(body, content_type, reason)}")
    base = parsed.get("href") or url
    items: list[FeedItem] = []
    for entry in entries:
        link = _entry_link(entry, base)
        if not link:
            continue  # an entry without a link has no article to fetch
        items.append(
            FeedItem(
                url=link,
                guid=(entry.get("id") or "").strip() or None,
                title=_clean_title(entry.get("title"), entry.get("title_detail")),
                published=_entry_date(entry),
                version=_version(entry),
            )
        )
    if not items and isinstance(reason, SAXException):
        # bozo alone is only a warning (many real feeds are slightly broken, or lack a Content-Type); an
        # ill-formed document with nothing usable in it, such as a download cut short, is a failure. A
        # well-formed feed listing no entries today is not.
        raise FeedError(f"broken feed, no entries could be read: {_short(reason)}")
    read = _capped(items)
    return FeedRead(read.items, max(listed, read.listed))


def _capped(items: list[FeedItem]) -> FeedRead:
    """At most MAX_FEED_ENTRIES items, the newest (undated ones rank after dated ones, in document order),
    kept in document order."""
    if len(items) <= MAX_FEED_ENTRIES:
        return FeedRead(items, len(items))
    order = sorted(range(len(items)), key=lambda i: _newest_first(items[i].published, i))
    keep = sorted(order[:MAX_FEED_ENTRIES])
    return FeedRead([items[i] for i in keep], len(items))


def _newest_first(when: datetime | None, index: int) -> tuple[bool, float, int]:
    return (when is None, -when.timestamp() if when else 0.0, index)


def _not_a_feed(body: bytes, content_type: str, reason: Any) -> str:
    """Why a document is not a feed, in terms of what the server sent when that says more than expat."""
    media = content_type.split(";")[0].strip().lower()
    sent = f" (Content-Type: {media})" if media else ""
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html")) or media in ("text/html", "application/xhtml+xml"):
        return f"an HTML page{sent}, not RSS, Atom or RDF"
    if _looks_binary(body[:1024]):
        return f"binary data{sent}, not XML"
    return _short(reason) if reason else "no RSS, Atom or RDF root element"


def _looks_binary(head: bytes) -> bool:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False  # UTF-16 text is full of NUL bytes
    # Text, in any 8-bit encoding, has no C0 controls but tab, CR and LF; images, archives and PDFs do.
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    return controls > len(head) // 50


def _entry_link(entry: Mapping[str, Any], base: str) -> str | None:
    link = (entry.get("link") or "").strip()
    if not link and entry.get("guidislink"):
        # Some feeds put the article address only in a permalink GUID. A GUID marked isPermaLink="false"
        # is an opaque identifier, even when it looks like a URL (RSS 2.0).
        link = (entry.get("id") or "").strip()
    if not link:
        return None
    absolute = urljoin(base, link)
    return absolute if absolute.startswith(("http://", "https://")) else None


def _entry_date(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        # dict.get, not entry.get: feedparser's own get maps missing keys to others, with a warning.
        value = dict.get(entry, key)  # type: ignore[call-overload]
        if value:
            try:
                when = datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
            if _plausible(when):
                return when
    return None


def _version(entry: Mapping[str, Any]) -> str | None:
    updated = dict.get(entry, "updated")  # type: ignore[call-overload]
    if updated:
        return f"updated:{updated}"
    content = (
        " ".join(str(c.get("value", "")) for c in entry.get("content") or []) or entry.get("summary") or ""
    )
    return "sha:" + hashlib.sha256(content.encode("utf-8")).hexdigest()[:16] if content else None


def _json_version(entry: Mapping[str, Any]) -> str | None:
    if entry.get("date_modified"):
        return f"updated:{entry['date_modified']}"
    content = str(entry.get("content_html") or entry.get("content_text") or entry.get("summary") or "")
    return "sha:" + hashlib.sha256(content.encode("utf-8")).hexdigest()[:16] if content else None


def _plausible(when: datetime) -> bool:
    # A date far in the future is a broken feed, not news from tomorrow.
    return when <= datetime.now(UTC) + timedelta(days=1)


def _clean_title(title: Any, detail: Mapping[str, Any] | None) -> str | None:
    if not isinstance(title, str) or not title.strip():
        return None
    if detail and "html" in str(detail.get("type", "")):
        # An HTML title (Atom type="html", or markup in RSS): keep its text, not its tags.
        with contextlib.suppress(ValueError, lxml_html.etree.ParserError):
            title = lxml_html.fragment_fromstring(title, create_parent="div").text_content()
    # Entities left in CDATA or escaped twice ("Kim&#8217;s", "&amp;amp;") are still entities to a reader.
    title = html.unescape(title)
    text = " ".join("".join(ch for ch in title if ch.isprintable() or ch.isspace()).split())
    return text or None


def _short(exc: Any) -> str:
    text = str(exc) if exc is not None else "unknown parse error"
    return text if len(text) <= 200 else text[:197] + "..."


# -- hostile XML: entities, size ------------------------------------------------------------------------

_PROLOG_SKIP = re.compile(rb"\s+|<\?.*?\?>|<!--.*?-->", re.S)
_DOCTYPE = re.compile(rb"<!DOCTYPE\b(?:[^\[>\"']|\"[^\"]*\"|'[^']*')*(?:\[(.*?)\]\s*)?>", re.S)
_ENTITY = re.compile(
    rb"<!ENTITY\s+(%\s+)?([^\s\"'>]+)\s+(?:(SYSTEM|PUBLIC)\b([^>]*)|(\"[^\"]*\"|'[^']*'))", re.S
)
# A reference inside an entity's value, other than a character reference or one of XML's five entities.
_NESTED = re.compile(rb"[&%](?!#|(?:amp|lt|gt|quot|apos);)[\w.:-]+;")
_URL_IN = re.compile(rb"[\"']([^\"']*)[\"']\s*$")


def entity_problem(body: bytes) -> str | None:
    """Why the document's DOCTYPE is refused (an external entity, or entities built from entities), or None.

    Only the prolog is read: an entity declared anywhere else is not a declaration but text.
    """
    subset = _internal_subset(_as_utf8_head(body))
    if not subset:
        return None
    for decl in _ENTITY.finditer(subset):
        parameter, name, external, ident, value = decl.groups()
        label = ("%" if parameter else "&") + name.decode("utf-8", "replace")[:40] + ";"
        if external is not None:
            target = _URL_IN.search(ident)
            where = target.group(1).decode("utf-8", "replace")[:100] if target else ""
            # A parameter entity naming an http(s) entity set (XHTML's latin-1 names, say) is declared by some
            # real feeds; nobody fetches it (feedparser strips it, expat reads no external DTD).
            if parameter and where.lower().startswith(("http://", "https://")):
                continue
            return f"refused: the feed declares an external XML entity {label} ({where}); it is never read"
        if _NESTED.search(value):
            return (
                f"refused: the feed declares XML entity {label} built from other entities "
                "(exponential expansion, the billion laughs); entities are not expanded"
            )
    return None


def _as_utf8_head(body: bytes) -> bytes:
    """The document's start as UTF-8 bytes, for the prolog checks (UTF-16 and UTF-32 feeds exist)."""
    head = body[:1_048_576]
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if head.startswith(bom):
            return head.decode(codec, "ignore").encode("utf-8")
    for pattern, codec in (
        (b"<\0\0\0", "utf-32-le"),
        (b"\0\0\0<", "utf-32-be"),
        (b"<\0", "utf-16-le"),
        (b"\0<", "utf-16-be"),
    ):
        if head.startswith(pattern):
            return head.decode(codec, "ignore").encode("utf-8")
    return head.removeprefix(codecs.BOM_UTF8)


def _internal_subset(head: bytes) -> bytes | None:
    """The internal subset ([...]) of the DOCTYPE in the prolog, or None when there is none."""
    pos = 0
    while match := _PROLOG_SKIP.match(head, pos):  # the XML declaration, processing instructions, comments
        pos = match.end()
    if not head.startswith(b"<!DOCTYPE", pos):
        return None
    doctype = _DOCTYPE.match(head, pos)
    if doctype is None:
        # An unterminated DOCTYPE (or one longer than the head): read what there is.
        return head[pos:]
    return doctype.group(1)


_ENTRY_START = re.compile(rb"<(?:[\w.-]+:)?(?:item|entry)[\s>/]")
_ENTRY_END = re.compile(rb"</(?:[\w.-]+:)?(?:item|entry)\s*>")
_ENTRY_DATE = re.compile(
    rb"<(?:[\w.-]+:)?(?:pubDate|published|updated|date|issued|modified)\b[^>]*>\s*([^<]{4,60}?)\s*<"
)


def _trim_entries(body: bytes) -> tuple[bytes, int]:
    """The document with at most MAX_FEED_ENTRIES entries, the newest, and the number it listed.

    Entries are found as byte ranges from an <item> or <entry> start tag to its end tag (they never nest),
    so this costs one regular-expression pass instead of a parse of every entry. Only feeds over the cap
    are rewritten, and only between their first entry and the end of their last one.
    """
    ends = [m.end() for m in _ENTRY_END.finditer(body)]
    if len(ends) <= MAX_FEED_ENTRIES:
        return body, len(ends)
    spans: list[tuple[int, int]] = []
    pos = 0
    for end in ends:
        start = _ENTRY_START.search(body, pos, end)
        if start is None:
            return body, len(ends)  # not the shape expected: feedparser reads it whole, _capped cuts after
        spans.append((start.start(), end))
        pos = end
    dates = [_chunk_date(body, start, end) for start, end in spans]
    order = sorted(range(len(spans)), key=lambda i: _newest_first(dates[i], i))
    keep = sorted(order[:MAX_FEED_ENTRIES])
    parts = [body[: spans[0][0]], *(body[spans[i][0] : spans[i][1]] for i in keep), body[spans[-1][1] :]]
    return b"".join(parts), len(spans)


def _chunk_date(body: bytes, start: int, end: int) -> datetime | None:
    match = _ENTRY_DATE.search(body, start, end)
    if match is None:
        return None
    text = match.group(1).decode("ascii", "ignore").strip()
    try:
        when = parsedate_to_datetime(text) if text[:1].isalpha() else datetime.fromisoformat(text)
    except (TypeError, ValueError, IndexError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


# -- JSON Feed 1.0 / 1.1 ------------------------------------------------------------------------------------

_JSON_TYPES = {"application/feed+json", "application/json"}


def _is_json(body: bytes, content_type: str) -> bool:
    start = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if start.startswith((b"{", b"[")):
        return True
    # A body served as JSON that does not look like XML either is reported as broken JSON, which says more
    # than "no RSS root element"; an XML feed mislabelled as JSON still goes to feedparser.
    media = content_type.split(";")[0].strip().lower()
    return media in _JSON_TYPES and not start.startswith(b"<")


def _parse_json_feed(body: bytes, url: str) -> list[FeedItem]:
    doc = _load_json(body)
    if not isinstance(doc, dict) or "jsonfeed.org/version/" not in str(doc.get("version", "")):
        raise FeedError('not a feed: JSON without a JSON Feed "version" (https://jsonfeed.org/version/1.1)')
    entries = doc.get("items", [])
    if not isinstance(entries, list):
        raise FeedError(f'broken JSON Feed: "items" is a {type(entries).__name__}, not a list')
    items: list[FeedItem] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        # Relative item URLs are against the spec but seen: resolved against the address the feed came from.
        link = _json_link(entry, url)
        if link is None:
            continue  # no page to fetch (a status update with only content_text)
        ident = entry.get("id")
        # The spec: an id given as a number must be read as a string.
        guid = str(ident).strip() if isinstance(ident, str | int) and not isinstance(ident, bool) else ""
        items.append(
            FeedItem(
                url=link,
                guid=guid or None,
                title=_clean_title(entry.get("title"), None),
                published=_json_date(entry.get("date_published")) or _json_date(entry.get("date_modified")),
                version=_json_version(entry),
            )
        )
    return items


def _load_json(body: bytes) -> Any:
    try:
        try:
            return json.loads(body)  # from bytes, json detects UTF-8/16/32 and a BOM itself
        except UnicodeDecodeError:
            # The spec says UTF-8; a stray invalid byte should not cost the whole feed.
            return json.loads(body.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError) as exc:
        raise FeedError(f"not a feed: invalid JSON: {_short(exc)}") from None


def _json_link(entry: Mapping[str, Any], base: str) -> str | None:
    # `url` is the item's own page; `external_url` is what a link-blog post points at: the article to fetch
    # when the post has no page of its own.
    for key in ("url", "external_url"):
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            absolute = urljoin(base, value.strip())
            if absolute.startswith(("http://", "https://")):
                return absolute
    return None


def _json_date(value: Any) -> datetime | None:
    """An RFC 3339 date as aware UTC; None when missing, unreadable or implausibly far in the future."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    # RFC 3339 requires an offset; a feed that leaves it out most likely means UTC.
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when if _plausible(when) else None
