"""The feed stage: the bytes of a downloaded feed -> the items it lists (feedparser).

feedparser is handed the bytes and the response headers, never a URL: it must not download anything itself,
and with the Content-Type header it resolves the encoding the way RFC 3023 says.
"""

from __future__ import annotations

import calendar
import contextlib
import html
import io
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
            # A date far in the future is a broken feed, not news from tomorrow.
            if when <= datetime.now(UTC) + timedelta(days=1):
                return when
    return None


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
