"""Prometheus metrics of the service, in a registry of their own (not prometheus-client's global one).

The pipeline reports each poll once, with its PollReport, and each extraction's duration; everything else is
derived here. Label values are bounded: `source` is a configured source name, `outcome` and `reason_kind`
come from the small fixed sets below, never from free text.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

if TYPE_CHECKING:
    from crawler.pipeline import PollReport

log = logging.getLogger(__name__)

# Extraction takes ~20-35 ms of CPU per page; the time measured includes waiting for a free worker.
EXTRACTION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# First match wins. The reasons are the short texts of crawler.fetch.errors, crawler.reading, the feed,
# listing and sitemap parsers and crawler.quality; an unknown text counts as "other".
_REASON_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        ("internal", r"^internal error"),
        ("not_an_article", r"^not an article"),
        ("http_4xx", r"^HTTP 4\d\d"),
        ("http_5xx", r"^HTTP 5\d\d"),
        ("http_other", r"^HTTP \d+"),
        ("timeout", r"timed out"),
        ("dns", r"^DNS"),
        ("connection", r"^connection |^download failed"),
        ("robots", r"robots\.txt"),
        ("too_large", r"^response over|larger than"),
        ("not_a_feed", r"^(not a feed|broken feed|broken JSON Feed|not a sitemap|broken gzip)|^links: "),
        ("empty", r"^empty response"),
        ("refused", r"^refused|scheme"),
        ("redirect", r"redirect"),
        ("shutdown", r"shutting down|downloader (stopped|is not running)|download cancelled"),
    )
)


def reason_kind(reason: str) -> str:
    """The kind of a failure reason, for the `reason_kind` label: "timeout", "http_4xx", "not_a_feed"..."""
    for kind, pattern in _REASON_KINDS:
        if pattern.search(reason):
            return kind
    return "other"


def item_reason(failure: str) -> str:
    """The reason part of a PollReport failure, which reads "URL: reason" (a URL holds no ": ")."""
    _url, sep, reason = failure.partition(": ")
    return reason if sep else failure


class Metrics:
    """The service's counters, histogram and gauges; `render()` is the body of /metrics."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.polls = Counter(
            "crawler_polls",
            "Polls of a source by outcome: ok, unchanged, failed.",
            ["source", "outcome"],
            registry=r,
        )
        self.filed = Counter("crawler_items_filed", "Articles filed in the archive.", ["source"], registry=r)
        self.duplicates = Counter(
            "crawler_duplicates",
            "Articles not filed because they were already archived.",
            ["source"],
            registry=r,
        )
        self.failures = Counter(
            "crawler_failures",
            "Failures: a source that could not be read, or an article that could not be filed.",
            ["source", "reason_kind"],
            registry=r,
        )
        self.extraction = Histogram(
            "crawler_extraction_seconds",
            "Time to extract one article page (including the wait for a worker process).",
            buckets=EXTRACTION_BUCKETS,
            registry=r,
        )
        self.queue = Gauge(
            "crawler_queue_length", "Requests waiting for the downloader or being downloaded.", registry=r
        )
        self.last_poll = Gauge(
            "crawler_last_poll_timestamp_seconds",
            "When the source's last poll ended (Unix time).",
            ["source"],
            registry=r,
        )
        self._queue_length: Callable[[], float] | None = None
        self.queue.set_function(self._read_queue_length)

    # -- what the service calls ------------------------------------------------------------------------
    def poll_done(self, report: PollReport, now: float | None = None) -> None:
        """Count one finished poll: its outcome, articles filed, duplicates and failures."""
        name = report.source
        outcome = "failed" if report.error else "unchanged" if report.unchanged else "ok"
        self.polls.labels(name, outcome).inc()
        if report.new:
            self.filed.labels(name).inc(report.new)
        if report.duplicate:
            self.duplicates.labels(name).inc(report.duplicate)
        if report.error:
            self.failures.labels(name, reason_kind(report.error)).inc()
        for failure in report.failures:
            self.failures.labels(name, reason_kind(item_reason(failure))).inc()
        # failures without a recorded reason (none today) still count
        unexplained = report.failed - len(report.failures)
        if unexplained > 0:
            self.failures.labels(name, "other").inc(unexplained)
        self.last_poll.labels(name).set(time.time() if now is None else now)

    def extraction_time(self, seconds: float) -> None:
        self.extraction.observe(seconds)

    def queue_length_from(self, read: Callable[[], float] | None) -> None:
        """Report `read()` as crawler_queue_length at each scrape (None: report 0)."""
        self._queue_length = read

    def forget_source(self, name: str) -> None:
        """Drop a removed source's series, so a reload does not leave them behind forever."""
        for metric, kinds in (
            (self.polls, ("ok", "unchanged", "failed")),
            (self.failures, (*(k for k, _p in _REASON_KINDS), "other")),
        ):
            for kind in kinds:
                with contextlib.suppress(KeyError):
                    metric.remove(name, kind)
        for single in (self.filed, self.duplicates, self.last_poll):
            with contextlib.suppress(KeyError):
                single.remove(name)

    # -- what the endpoint calls -----------------------------------------------------------------------
    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition (Prometheus text, or OpenMetrics when the scraper asks for it) and its type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def _read_queue_length(self) -> float:
        if self._queue_length is None:
            return 0.0
        try:
            return float(self._queue_length())
        except Exception:  # a scrape must not fail because the downloader is closing
            log.debug("queue length unavailable", exc_info=True)
            return 0.0


# The service's metrics. Tests make their own Metrics() so they never share counters.
METRICS = Metrics()
