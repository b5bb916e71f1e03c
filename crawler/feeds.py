"""The feed stage: the bytes of a downloaded feed -> the items it lists (feedparser, and JSON Feed).

feedparser is handed the bytes and the response headers, never a URL: it must not download anything itself,
and with the Content-Type header it resolves the encoding the way RFC 3023 says. feedparser 6 reads no JSON
Feed (https://jsonfeed.org), so those are read here with the json module: the format is small and strict.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import html
import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin
from xml.sax import SAXException

import feedparser
from lxml import html as lxml_html

from crawler.models import FeedItem


class FeedError(Exception):
    """The document yields no entries; the message says why, for the poll summary."""


def parse_feed(body: bytes, url: str, headers: Mapping[str, str] | None = None) -> list[FeedItem]:
    """Return the feed's entries in document order; raise FeedError when there are none to take."""
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    if _is_json(body, response_headers.get("content-type", "")):
        return _parse_json_feed(body, url)
    response_headers.setdefault("content-location", url)
    parsed = feedparser.parse(io.BytesIO(body), response_headers=response_headers)
    entries = parsed.get("entries") or []
    reason = parsed.get("bozo_exception")
    if not entries and not parsed.get("version"):
        raise FeedError(f"not a feed: {_short(reason) if reason else 'no RSS, Atom or RDF root element'}")
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
    return items


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
