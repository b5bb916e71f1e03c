"""One poll of one source, top to bottom: read the feed, drop known items, fetch, extract, dedup, flag, file.


This is the one place that reads as the whole flow. Each step is a stage module with plain data in and out;
this module only decides the order, what runs where (downloads on the loop through Scrapy, CPU work in the
worker processes, filing on the single writer thread) and how each outcome is counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from crawler import dedup
from crawler.config import Source
from crawler.extract import decode_html, extract_decoded
from crawler.filing import (
    Candidate,
    Prepared,
    TopicRules,
    file_article,
    prepare,
    record_duplicate,
    topic_rules,
)
from crawler.filing import index_row as index_row  # re-exported for older callers
from crawler.health import adaptive_interval, next_poll
from crawler.metrics import METRICS
from crawler.models import Article, FeedItem, FetchResult
from crawler.quality import not_an_article
from crawler.reading import SourceRead, read_source
from crawler.resources import Resources
from crawler.store import PollRow

log = logging.getLogger(__name__)

# Articles of one source fetched and extracted at once. Politeness per host is Scrapy's job; this only bounds
# how many response bodies one poll holds in memory.
ITEMS_IN_FLIGHT = 8

# Failed items logged one by one per poll; the rest are one summary line (a feed of 1,000 dead links would
# otherwise write 1,000 warnings). Every failure is still in the poll's report and the digest.
FAILURES_LOGGED = 5

# Article pages answering with these are gone for good: remember them so they are not fetched at every poll.
PERMANENT_STATUSES = {404, 410, 451}


@dataclass
class PollReport:
    source: str
    new: int = 0
    duplicate: int = 0
    known: int = 0  # entries seen at an earlier poll, skipped before fetching
    failed: int = 0
    error: str | None = None  # the source itself failed: no entries could be read
    failures: list[str] = field(default_factory=list)  # "url: reason" for each item that failed
    old: int = 0  # new entries published before max_age: not filed (the source does not backfill)
    unchanged: bool = False  # the source answered 304 or sent the same document as last time
    redirected_to: str | None = None  # the source's URL moved permanently here
    disabled: str | None = None  # polling stopped, and why (HTTP 410 Gone)
    next_poll: datetime | None = None
    # Entries another process was filing when this poll saw them: if that process dies, the next poll must
    # look at them again, so the feed is not taken for unchanged (see _save_health).
    claimed_elsewhere: int = 0


Outcome = tuple[Literal["new", "duplicate", "known", "pending", "old", "failed"], str]
Seen = tuple[str, int | None, str | None]  # what the index records for a key: status, item id, version
# The decoded page is checked for block, consent and captcha markers near its start (characters).
QUALITY_PREFIX = 200_000


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
    idents = dedup.identity_keys(source.name, entries)
    # What the index knows of every entry, by identity and by URL: one query, off the event loop (on a
    # shared PostgreSQL index a query per entry would be a network round trip each, stalling the downloads).
    lookup = [*idents, *(dedup.url_key(entry.url) for entry in entries)]
    known = await asyncio.to_thread(res.store.seen_many, lookup)
    todo, versions = _to_fetch(entries, idents, known, report)
    if versions:  # on the writer thread, as every write to the index
        await res.write(res.store.set_versions, versions)
    gate = asyncio.Semaphore(ITEMS_IN_FLIGHT)

    async def one(entry: FeedItem, ident: str, revision_of: int | None) -> Outcome:
        async with gate:
            url_seen = known.get(dedup.url_key(entry.url))
            return await _file_entry(res, source, entry, ident, revision_of, url_seen)

    for kind, detail in await asyncio.gather(*(one(*job) for job in todo)):
        if kind == "new":
            report.new += 1
        elif kind == "duplicate":
            report.duplicate += 1
        elif kind == "known":
            report.known += 1
        elif kind == "pending":  # another process is filing it: known, unless that process dies
            report.known += 1
            report.claimed_elsewhere += 1
        elif kind == "old":
            report.old += 1
        else:
            report.failed += 1
            report.failures.append(detail)
            if report.failed <= FAILURES_LOGGED:
                log.warning("%s: %s", source.name, detail)
    if report.failed > FAILURES_LOGGED:
        log.warning(
            "%s: %d more items failed (%d in all; each is in the poll summary)",
            source.name,
            report.failed - FAILURES_LOGGED,
            report.failed,
        )
    log.info(
        "%s: %d new, %d duplicate, %d failed, %d already known%s",
        source.name,
        report.new,
        report.duplicate,
        report.failed,
        report.known,
        f", {report.old} too old" if report.old else "",
    )


def _to_fetch(
    entries: list[FeedItem],
    idents: list[str],
    known: dict[str, Seen],
    report: PollReport,
) -> tuple[list[tuple[FeedItem, str, int | None]], list[tuple[str, str | None]]]:
    """Entries to fetch, in feed order: the new ones, and filed ones whose feed entry was updated; and the
    versions to record for filed keys that have none yet.

    Everything else is dropped here, before any article page is requested.
    """
    todo: list[tuple[FeedItem, str, int | None]] = []
    versions: list[tuple[str, str | None]] = []
    listed: set[str] = set()
    for entry, ident in zip(entries, idents, strict=True):
        if ident in listed:
            continue  # listed twice in one feed
        listed.add(ident)
        seen = known.get(ident)
        if seen is None:
            todo.append((entry, ident, None))
        elif seen[0] == "filed" and entry.version and seen[2] != entry.version and seen[2] is not None:
            todo.append((entry, ident, seen[1]))  # the publisher updated it: maybe a revision
        else:
            # Known: filed, remembered (old, rejected, duplicate), or 'claimed' (another process sharing the
            # index is filing it now; a claim its process died with is released by resources.recover).
            if seen[0] == "filed" and seen[2] is None and entry.version:
                versions.append((ident, entry.version))
            if seen[0] == "claimed":
                report.claimed_elsewhere += 1
            report.known += 1
    return todo, versions


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
        if report.failed or report.claimed_elsewhere:
            # Some items failed in a way the next poll may get past (a 429, a 503, a timeout; permanent
            # failures are remembered as known), or are being filed by a process that may yet die: forget the
            # feed's validators, or an unchanged feed would answer "nothing new" and those items would wait
            # for the feed's next change.
            values.update(etag=None, last_modified=None, body_sha256=None)
        else:
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


async def _file_entry(
    res: Resources,
    source: Source,
    entry: FeedItem,
    ident: str,
    revision_of: int | None,
    hit: Seen | None,
) -> Outcome:
    """Fetch, extract and file one entry; `hit` is what the index knew of its URL when the poll began (a
    copy filed since is caught by filing's own checks, after the download)."""
    # The identity key, and the URL: a GUID the feed repeats must not make its entries one item.
    keys = list(dict.fromkeys([ident, dedup.url_key(entry.url)]))
    if revision_of is None:
        # The same article under another GUID, or from another source: a duplicate, without fetching it.
        if hit is not None and hit[0] == "filed" and hit[1] is not None:
            await res.write(record_duplicate, res, hit[1], source.name, entry.url, keys)
            return "duplicate", entry.url
        if not source.backfill and _feed_too_old(entry, res.config.settings.max_age):
            # The feed's date is the one filing would use (see _published): too old whatever the page says,
            # so the page is not downloaded. Entries without one are judged after extraction, below.
            await res.write(res.store.remember, keys, "old", source.name)
            return "old", entry.url
    page = await res.fetcher.fetch(entry.url, obey_robots=source.robots)
    problem = _http_problem(page)
    if problem:
        if page.status in PERMANENT_STATUSES:
            await res.write(res.store.remember, keys, "rejected", source.name)
        return "failed", f"{entry.url}: {problem}"
    began = time.perf_counter()
    article, reason, prepared = await res.workers.run(
        extract_for_filing,
        page.body,
        page.url,
        page.headers.get("content-type"),
        entry.title,
        page.status,
        res.config.settings.min_chars,
        topic_rules(res.config.topics),
        tuple(source.topics),
    )
    METRICS.extraction_time(time.perf_counter() - began)

    if article is None or reason:
        # Remembered, so a page that is not an article is not fetched again at every poll.
        await res.write(res.store.remember, keys, "rejected", source.name)
        return "failed", f"{entry.url}: not an article: {reason}"
    published = _published(entry, article)
    if revision_of is None and not source.backfill and _too_old(published, res.config.settings.max_age):
        # A new source's back catalogue is not news.
        await res.write(res.store.remember, keys, "old", source.name)
        return "old", entry.url
    keys += dedup.article_keys(page.url, article)
    candidate = Candidate(source, entry, page.url, article, keys, published, revision_of, prepared)
    return await res.write(file_article, res, candidate)


def extract_checked(
    body: bytes, url: str, content_type: str | None, title: str | None, status: int, min_chars: int
) -> tuple[Article | None, str | None]:
    """Extraction and the not-an-article check, together in a worker process (both read the page, which is
    decoded once for both)."""
    html = decode_html(body, content_type)
    article = extract_decoded(body, html, url, title)
    return article, not_an_article(article, html[:QUALITY_PREFIX], status, min_chars)


def extract_for_filing(
    body: bytes,
    url: str,
    content_type: str | None,
    title: str | None,
    status: int,
    min_chars: int,
    rules: TopicRules,
    source_topics: tuple[str, ...],
) -> tuple[Article | None, str | None, Prepared | None]:
    """extract_checked, then the article-only part of filing (hash, Simhash, topics), in one worker call.

    The service process keeps only what must be serial (the duplicate checks against the index, the files,
    the index), so it does not become the bottleneck as the worker pool grows with the cores.
    """
    article, reason = extract_checked(body, url, content_type, title, status, min_chars)
    if article is None or reason:
        return article, reason, None
    return article, reason, prepare(article, rules, source_topics)


def _published(entry: FeedItem, article: Article) -> str | None:
    # The feed's date first (the publisher states it for this entry), then the page's; never the future.
    latest = datetime.now(UTC) + timedelta(days=1)
    for when in (entry.published, article.published):
        if when is not None and when <= latest:
            return when.astimezone(UTC).isoformat(timespec="seconds")
    return None


def _feed_too_old(entry: FeedItem, max_age: timedelta) -> bool:
    # A date in the future is ignored by _published, but such a date is never too old either.
    return entry.published is not None and entry.published < datetime.now(UTC) - max_age


def _too_old(published: str | None, max_age: timedelta) -> bool:
    return published is not None and datetime.fromisoformat(published) < datetime.now(UTC) - max_age


def _http_problem(result: FetchResult) -> str | None:
    if result.error:
        return result.error
    if not 200 <= result.status < 300:
        return f"HTTP {result.status}"
    if not result.body.strip():
        return "empty response"
    return None
