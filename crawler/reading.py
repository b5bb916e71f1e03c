"""Reading a source: its document(s) fetched and turned into entries, whatever its kind.

feed     the feed itself (RSS, Atom, RDF, JSON Feed), conditionally: a 304, or a body equal to the last one,
         costs no parsing
listing  an HTML index page; its `links:` rule picks the article links
sitemap  a sitemap, a sitemap index (its newest child sitemaps are read) or a Google News sitemap
auto     the home page: the feed it advertises, once found, is read as a feed from then on; with none, the
         page is read as a listing with the default link rule
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from crawler.config import Source
from crawler.discover import discover_feed
from crawler.feeds import MAX_FEED_ENTRIES, FeedError, read_feed
from crawler.health import failure_weight, feed_ttl, server_hint
from crawler.listing import ListingError, parse_listing
from crawler.models import FeedItem, FetchResult
from crawler.resources import Resources
from crawler.sitemaps import SitemapError, parse_sitemap

log = logging.getLogger(__name__)

# A sitemap index can list thousands of sitemaps; the newest few hold what is new.
MAX_CHILD_SITEMAPS = 5


@dataclass
class SourceRead:
    items: list[FeedItem] = field(default_factory=list)
    error: str | None = None
    weight: float = 0.0  # how much this failure counts towards backoff (see crawler.health)
    status: int = 0
    unchanged: bool = False  # 304, or the same body as last time: nothing to parse
    hint: timedelta | None = None  # the server asks not to be polled again before this
    permanent_redirect: str | None = None
    discovered: str | None = None  # for `auto`: the feed in use
    validators: dict[str, Any] = field(default_factory=dict)  # etag, last_modified, body_sha256 to keep


async def read_source(res: Resources, source: Source, state: dict[str, Any]) -> SourceRead:
    if source.kind == "feed":
        return await _read_feed(res, source.name, source.url, state)
    if source.kind == "sitemap":
        return await _read_sitemap(res, source)
    if source.kind == "auto" and state.get("discovered"):
        read = await _read_feed(res, source.name, state["discovered"], state)
        read.discovered = None if read.error else state["discovered"]  # rediscover once it breaks
        return read
    page = await res.fetcher.fetch(source.url, obey_robots=source.robots)
    failed = _failure(page)
    if failed:
        return failed
    ctype = page.headers.get("content-type")
    if source.kind == "auto":
        feed_url = await res.workers.run(discover_feed, page.body, page.url, ctype)
        if feed_url:
            read = await _read_feed(res, source.name, feed_url, {})
            read.discovered = None if read.error else feed_url
            return read
    try:
        items = await res.workers.run(parse_listing, page.body, page.url, source.links, ctype)
    except ListingError as exc:
        return SourceRead(error=str(exc), weight=1.0, status=page.status)
    return _done(page, items)


async def _read_feed(res: Resources, name: str, url: str, state: dict[str, Any]) -> SourceRead:
    # The feed is not subject to robots.txt: subscribing to it is what a feed reader is for.
    headers = {}
    if state.get("url") in (None, url) and state.get("etag"):
        headers["If-None-Match"] = state["etag"]
    if state.get("url") in (None, url) and state.get("last_modified"):
        headers["If-Modified-Since"] = state["last_modified"]
    result = await res.fetcher.fetch(url, obey_robots=False, headers=headers or None)
    if result.status == 304:
        return _done(result, [], unchanged=True)
    failed = _failure(result)
    if failed:
        return failed
    digest = hashlib.sha256(result.body).hexdigest()
    if digest == state.get("body_sha256"):
        return _done(result, [], unchanged=True)
    try:
        feed = await res.workers.run(read_feed, result.body, result.url, result.headers)
    except FeedError as exc:
        return SourceRead(error=str(exc), weight=1.0, status=result.status)
    if feed.listed > len(feed.items):
        log.warning(
            "%s: the feed lists %d entries: took the %d newest (at most %d per poll), left %d",
            name,
            feed.listed,
            len(feed.items),
            MAX_FEED_ENTRIES,
            feed.listed - len(feed.items),
        )
    read = _done(result, feed.items, ttl=feed_ttl(result.body))
    read.validators["body_sha256"] = digest
    return read


async def _read_sitemap(res: Resources, source: Source) -> SourceRead:
    now = datetime.now(UTC)
    max_age = res.config.settings.max_age
    result = await res.fetcher.fetch(source.url, obey_robots=source.robots)
    failed = _failure(result)
    if failed:
        return failed
    try:
        limit = res.config.settings.fetch.max_bytes
        page = await res.workers.run(parse_sitemap, result.body, result.url, now, max_age, limit)
        items = list(page.items)
        # Children are newest first; an index of indexes is not followed further (no unbounded crawl).
        for child_url in page.sitemaps[:MAX_CHILD_SITEMAPS]:
            child = await res.fetcher.fetch(child_url, obey_robots=source.robots)
            if _failure(child) is None:
                found = await res.workers.run(parse_sitemap, child.body, child.url, now, max_age, limit)
                items += found.items
    except SitemapError as exc:
        return SourceRead(error=str(exc), weight=1.0, status=result.status)
    return _done(result, items)


def _failure(result: FetchResult) -> SourceRead | None:
    problem = result.error
    if problem is None and not 200 <= result.status < 300:
        problem = f"HTTP {result.status}"
    if problem is None and not result.body.strip():
        problem = "empty response"
    if problem is None:
        return None
    hint = server_hint(result.headers, None, datetime.now(UTC)) if result.status in (429, 503) else None
    return SourceRead(
        error=problem, weight=failure_weight(result.status, result.error), status=result.status, hint=hint
    )


def _done(
    result: FetchResult, items: list[FeedItem], unchanged: bool = False, ttl: timedelta | None = None
) -> SourceRead:
    # The address to adopt is where the leading run of permanent redirects led; a temporary hop after it
    # (a login wall, a CDN) is not the source's new home.
    permanent = None
    for status, url in result.redirects:
        if status not in (301, 308):
            break
        permanent = url
    validators = {
        "etag": result.headers.get("etag"),
        "last_modified": result.headers.get("last-modified"),
    }
    return SourceRead(
        items=items,
        status=result.status,
        unchanged=unchanged,
        hint=server_hint(result.headers, ttl, datetime.now(UTC)),
        permanent_redirect=permanent if permanent and not unchanged else None,
        validators={k: v for k, v in validators.items() if v} if not unchanged else {},
    )
