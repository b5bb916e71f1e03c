"""Politeness Scrapy does not give on its own: Retry-After pauses a host, robots.txt is re-read now and then.

Per-host concurrency (fetch.per_host) and spacing (fetch.delay) are Scrapy's download slots: the slot key is
the URL's host name (port ignored, www.example.com and example.com distinct), and one spider serves every
source, so the limits hold across all sources on a host. See settings.py.
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from time import monotonic
from typing import TYPE_CHECKING

from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.robotstxt import RobotParser

log = logging.getLogger(__name__)

PAUSING = (429, 503)  # the statuses whose Retry-After asks us to stay away


def retry_after(value: str | bytes | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks to wait (delta-seconds or HTTP date); None if absent, bad or past."""
    if value is None:
        return None
    text = (value.decode("latin-1") if isinstance(value, bytes) else value).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # HTTP dates are GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def response_retry_after(status: int, value: str | bytes | None) -> float | None:
    return retry_after(value) if status in PAUSING else None


class HostPause:
    """Downloader middleware: a 429 or 503 with Retry-After pauses that host for every later request.

    Requests to a paused host wait here, before they reach the host's download slot, until the pause is over
    (capped at MAX_PAUSE: a server's "come back in a week" is the scheduler's business, through
    FetchResult.retry_after, not the downloader's). Such a response is not retried by RetryMiddleware (this
    middleware's process_response runs before it): the next poll is the retry. 429 is not in
    RETRY_HTTP_CODES at all (settings.py), so a host that says "too many requests" never gets a quick second.
    """

    MAX_PAUSE = 3600.0
    TICK = 1.0  # how often a waiting request checks that the crawler is not shutting down

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self._until: dict[str, float] = {}  # host -> monotonic time the pause ends

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HostPause:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        host = urlparse_cached(request).hostname or ""
        # Request.replace() copies meta, so a redirect to another host would stay in its source's download
        # slot; the per-host limits must follow the host actually contacted. (The slot key is the host name.)
        slot = request.meta.get("download_slot")
        if slot is not None and slot != host:
            del request.meta["download_slot"]
        while (left := self._until.get(host, 0.0) - monotonic()) > 0:
            engine = self.crawler.engine
            if engine is not None and not engine.running:
                raise IgnoreRequest("shutting down")
            await asyncio.sleep(min(left, self.TICK))
        self._until.pop(host, None)

    def process_response(self, request: Request, response: Response) -> Response:
        seconds = response_retry_after(response.status, response.headers.get(b"Retry-After"))
        if seconds is None:
            return response
        request.meta["dont_retry"] = True
        host = urlparse_cached(request).hostname or ""
        pause = min(seconds, self.MAX_PAUSE)
        self._until[host] = max(self._until.get(host, 0.0), monotonic() + pause)
        log.info("%s answered %d, Retry-After %g s: host paused %g s", host, response.status, seconds, pause)
        return response


class ExpiringRobotsTxt(RobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, with each host's rules forgotten after a while.

    Scrapy keeps a host's robots.txt for the life of the process, right for a crawl of minutes, wrong for a
    service that runs for weeks: rules change, and a robots.txt that could not be read (unreachable, refused
    by the guard, a 5xx) would be "allow everything" forever. An unreadable robots.txt never blocks a fetch:
    the page is fetched as if there were none, and robots.txt is asked again after ERROR_TTL.
    """

    TTL = 24 * 3600.0  # Google's cache of robots.txt, RFC 9309 section 2.4
    ERROR_TTL = 3600.0

    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        self._expires: dict[str, float] = {}

    async def robot_parser(self, request: Request) -> RobotParser | None:
        netloc = urlparse_cached(request).netloc
        if (
            netloc in self._parsers
            and not isinstance(self._parsers[netloc], Deferred)  # not while it is being fetched
            and monotonic() >= self._expires.get(netloc, math.inf)
        ):
            del self._parsers[netloc]
        return await super().robot_parser(request)

    # The two hooks below are Scrapy's (private) ends of a robots.txt fetch; they only add an expiry.
    async def _parse_robots(self, response: Response, netloc: str, request: Request) -> None:
        failed = response.status >= 500 or response.status == 429
        self._expires[netloc] = monotonic() + (self.ERROR_TTL if failed else self.TTL)
        await super()._parse_robots(response, netloc, request)

    def _robots_error(self, exc: Exception, netloc: str) -> None:
        self._expires[netloc] = monotonic() + self.ERROR_TTL
        super()._robots_error(exc, netloc)
