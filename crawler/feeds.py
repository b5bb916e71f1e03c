"""The feed stage: the bytes of a downloaded feed -> the items it lists (feedparser).

feedparser is handed the bytes and the response headers, never a URL: it must not download anything itself,
and with the Content-Type header it resolves the encoding the way RFC 3023 says.
"""

from __future__ import annotations

import calendar
import io
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import feedparser

from crawler.models import FeedItem


class FeedError(Exception):
    """The document yields no entries; the message says why, for the poll summary."""


def parse_feed(body: bytes, url: str, headers: Mapping[str, str] | None = None) -> list[FeedItem]:
    """Return the feed's entries in document order; raise FeedError when there are none to take."""
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    response_headers.setdefault("content-location", url)
    parsed = feedparser.parse(io.BytesIO(body), response_headers=response_headers)
    entries = parsed.get("entries") or []
    if not entries:
        # bozo alone is only a warning (many real feeds are slightly broken); no entries is the failure.
        if parsed.get("bozo") and not parsed.get("version"):
            reason = parsed.get("bozo_exception")
            raise FeedError(f"not a feed: {_short(reason)}")
        return []
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
                title=_clean_title(entry.get("title")),
                published=_entry_date(entry),
            )
        )
    return items


def _entry_link(entry: Mapping[str, Any], base: str) -> str | None:
    link = (entry.get("link") or "").strip()
    if not link:
        # Some feeds put the article address only in a permalink GUID.
        guid = (entry.get("id") or "").strip()
        if entry.get("guidislink") or guid.startswith(("http://", "https://")):
            link = guid
    if not link:
        return None
    absolute = urljoin(base, link)
    return absolute if absolute.startswith(("http://", "https://")) else None


def _entry_date(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            try:
                when = datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
            # A date far in the future is a broken feed, not news from tomorrow.
            if when <= datetime.now(UTC) + timedelta(days=1):
                return when
    return None


def _clean_title(title: Any) -> str | None:
    if not isinstance(title, str):
        return None
    text = " ".join("".join(ch for ch in title if ch.isprintable() or ch.isspace()).split())
    return text or None


def _short(exc: Any) -> str:
    text = str(exc) if exc is not None else "unknown parse error"
    return text if len(text) <= 200 else text[:197] + "..."
