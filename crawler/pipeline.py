"""One poll of one source, top to bottom: read the feed, drop known items, fetch, extract, dedup, flag, file.


This is the one place that reads as the whole flow. Each step is a stage module with plain data in and out;
this module only decides the order, what runs where (downloads on the loop through Scrapy, CPU work in the
worker processes, filing on the single writer thread) and how each outcome is counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from crawler import dedup
from crawler.archive import write_item
from crawler.config import Source
from crawler.extract import extract_article
from crawler.health import adaptive_interval, next_poll
from crawler.models import Article, FeedItem, FetchResult
from crawler.reading import SourceRead, read_source
from crawler.resources import Resources
from crawler.store import PollRow, utcnow
from crawler.topics import flag_topics

log = logging.getLogger(__name__)

# Articles of one source fetched and extracted at once. Politeness per host is Scrapy's job; this only bounds
# how many response bodies one poll holds in memory.
ITEMS_IN_FLIGHT = 8
SNIPPET_CHARS = 300

# Article pages answering with these are gone for good: remember them so they are not fetched at every poll.
PERMANENT_STATUSES = {404, 410, 451}

# Less body text than this is a navigation page, a teaser or an error page, not an article.
MIN_BODY_CHARS = 200


@dataclass
class PollReport:
    source: str
    new: int = 0
    duplicate: int = 0
    known: int = 0  # entries seen at an earlier poll, skipped before fetching
    failed: int = 0
    error: str | None = None  # the source itself failed: no entries could be read
    failures: list[str] = field(default_factory=list)  # "url: reason" for each item that failed
    unchanged: bool = False  # the source answered 304 or sent the same document as last time
    redirected_to: str | None = None  # the source's URL moved permanently here
    disabled: str | None = None  # polling stopped, and why (HTTP 410 Gone)
    next_poll: datetime | None = None


Outcome = tuple[Literal["new", "duplicate", "failed"], str]


async def poll_source(res: Resources, source: Source) -> PollReport:
    report = PollReport(source.name)
    state = await res.write(_current_state, res, source)
    read = await read_source(res, source, state)
    if read.error is not None:
        report.error = read.error
        log.warning("%s: poll failed: %s", source.name, read.error)
    elif read.unchanged:
        report.unchanged = True
        log.info("%s: unchanged since the last poll", source.name)
    else:
        await _file_entries(res, source, read.items, report)
    if read.permanent_redirect:
        report.redirected_to = read.permanent_redirect
        log.warning(
            "%s: %s has moved permanently to %s: update its url in sources.yaml",
            source.name,
            source.url,
            read.permanent_redirect,
        )
    report.next_poll, report.disabled = await res.write(_save_health, res, source, state, read, report)
    if report.disabled:
        log.error("%s: %s", source.name, report.disabled)
    row = PollRow(source.name, report.new, report.duplicate, report.failed, report.error, report.failures)
    await res.write(res.store.record_poll, res.today(), row)
    return report


async def _file_entries(res: Resources, source: Source, entries: list[FeedItem], report: PollReport) -> None:
    fresh = _drop_known(res, source, entries)
    report.known = len(entries) - len(fresh)
    gate = asyncio.Semaphore(ITEMS_IN_FLIGHT)

    async def one(entry: FeedItem) -> Outcome:
        async with gate:
            return await _file_entry(res, source, entry)

    for kind, detail in await asyncio.gather(*(one(e) for e in fresh)):
        if kind == "new":
            report.new += 1
        elif kind == "duplicate":
            report.duplicate += 1
        else:
            report.failed += 1
            report.failures.append(detail)
            log.warning("%s: %s", source.name, detail)
    log.info(
        "%s: %d new, %d duplicate, %d failed, %d already known",
        source.name,
        report.new,
        report.duplicate,
        report.failed,
        report.known,
    )


def _current_state(res: Resources, source: Source) -> dict[str, Any]:
    state = res.store.source_state(source.name)
    if state.get("url") not in (None, source.url):
        # The user changed the URL: validators, discoveries and a 410 of the old address no longer apply.
        res.store.reset_source_state(source.name, source.url)
        state = res.store.source_state(source.name)
    return state


def _save_health(
    res: Resources, source: Source, state: dict[str, Any], read: SourceRead, report: PollReport
) -> tuple[datetime, str | None]:
    """Persist the source's health and return when it is polled next (and why it stopped, if it did)."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {"url": source.url, "last_poll": now.isoformat(timespec="seconds")}
    disabled = None
    if read.error is not None:
        failures, weight = (
            int(state.get("failures") or 0) + 1,
            float(state.get("failure_weight") or 0) + read.weight,
        )
        values.update(failures=failures, failure_weight=weight, last_error=read.error)
        if read.status == 410:
            disabled = f"{source.url} answered 410 Gone: polling stopped; give the source a new url to resume"
            values["disabled"] = disabled
    else:
        weight = 0.0
        values.update(failures=0, failure_weight=0.0, last_error=None, last_success=values["last_poll"])
        values.update(read.validators)
    if source.kind == "auto":
        values["discovered"] = read.discovered
    if read.permanent_redirect:
        values["redirected_to"] = read.permanent_redirect
    interval = res.config.interval(source)
    if source.every == "auto":
        bounds = res.config.settings.adaptive
        week_ago = (now - timedelta(days=7)).isoformat(timespec="seconds")
        filed, _last = res.store.source_activity(week_ago).get(source.name, (0, None))
        interval = adaptive_interval(filed, bounds.min, bounds.max)
    when = next_poll(now, interval, read.hint, weight)
    values.update(interval=int(max(interval, read.hint or interval).total_seconds()))
    values["next_poll"] = when.isoformat(timespec="seconds")
    res.store.save_source_state(source.name, **values)
    return when, disabled


def _drop_known(res: Resources, source: Source, entries: list[FeedItem]) -> list[FeedItem]:
    """Entries not seen before, in feed order; an entry listed twice in one feed counts once."""
    fresh: list[FeedItem] = []
    listed: set[str] = set()
    for entry in entries:
        keys = dedup.feed_keys(source.name, entry)
        if listed.intersection(keys) or res.store.known(keys) is not None:
            continue
        listed.update(keys)
        fresh.append(entry)
    return fresh


async def _file_entry(res: Resources, source: Source, entry: FeedItem) -> Outcome:
    page = await res.fetcher.fetch(entry.url)
    keys = dedup.feed_keys(source.name, entry)
    problem = _http_problem(page)
    if problem:
        if page.status in PERMANENT_STATUSES:
            await res.write(res.store.remember, keys, "rejected", source.name)
        return "failed", f"{entry.url}: {problem}"
    article = await res.workers.run(
        extract_article, page.body, page.url, page.headers.get("content-type"), entry.title
    )
    if article is None or len(article.body) < MIN_BODY_CHARS:
        # Remembered, so a page without article text is not fetched again at every poll.
        await res.write(res.store.remember, keys, "rejected", source.name)
        found = f" (only {len(article.body)} characters)" if article else ""
        return "failed", f"{entry.url}: no article text in the page{found}"
    keys += dedup.article_keys(page.url, article)
    return await res.write(_file_article, res, source, entry, page, article, keys)


def _file_article(
    res: Resources, source: Source, entry: FeedItem, page: FetchResult, article: Article, keys: list[str]
) -> Outcome:
    """Runs on the writer thread, one item at a time, so the duplicate check and the filing cannot race."""
    store = res.store
    sha = dedup.content_hash(article)
    existing = store.item_for_keys(keys) or store.item_with_content(sha)
    if existing is not None:
        store.remember(keys, "duplicate", source.name, existing)
        return "duplicate", page.url
    flags = flag_topics(article.title, article.body, res.matcher, source.topics)
    published = _published(entry, article)
    fetched_at = utcnow()
    day = res.today()
    sidecar = {
        "url": page.url,
        "source": source.name,
        "title": article.title,
        "published": published,
        "fetched_at": fetched_at,
        "topics": list(flags.topics),
        "evidence": flags.evidence,
        "language": article.language,
        "content_sha256": sha,
        "guid": entry.guid,
        "feed_url": entry.url if entry.url != page.url else None,
        "canonical_url": article.canonical_url,
    }
    filed = write_item(res.data_dir, day, dedup.url_digest(page.url), article.text, sidecar)
    store.add_item(index_row(filed.relative, day, sidecar, article.body), keys)
    log.info("%s: filed %s (%s)", source.name, filed.relative, article.title[:80])
    return "new", filed.relative


def index_row(path: str, day: str, sidecar: Mapping[str, Any], body: str) -> dict[str, Any]:
    """The index's row for a filed item, from its sidecar (also used to re-index files after a crash)."""
    return {
        "path": path,
        "url": sidecar["url"],
        "source": sidecar["source"],
        "guid": sidecar.get("guid"),
        "title": sidecar["title"],
        "published": sidecar.get("published"),
        "fetched_at": sidecar["fetched_at"],
        "filed_day": day,
        "content_sha256": sidecar["content_sha256"],
        "topics": sidecar.get("topics") or [],
        "language": sidecar.get("language"),
        "snippet": snippet(body),
    }


def snippet(body: str, limit: int = SNIPPET_CHARS) -> str:
    text = " ".join(body.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


def _published(entry: FeedItem, article: Article) -> str | None:
    # The feed's date first (the publisher states it for this entry), then the page's; never the future.
    latest = datetime.now(UTC) + timedelta(days=1)
    for when in (entry.published, article.published):
        if when is not None and when <= latest:
            return when.astimezone(UTC).isoformat(timespec="seconds")
    return None


def _http_problem(result: FetchResult) -> str | None:
    if result.error:
        return result.error
    if not 200 <= result.status < 300:
        return f"HTTP {result.status}"
    if not result.body.strip():
        return "empty response"
    return None
