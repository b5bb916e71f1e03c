"""The downloader the rest of the crawler awaits: ``await fetcher.fetch(url) -> FetchResult``."""

from __future__ import annotations

import asyncio
import logging

from scrapy import Request
from scrapy.crawler import AsyncCrawlerRunner, Crawler

from crawler.config import FetchSettings
from crawler.fetch.settings import scrapy_settings
from crawler.fetch.spider import QueueSpider
from crawler.models import FetchResult

log = logging.getLogger(__name__)


class Fetcher:
    """Owns the one spider of the process. Must be started inside the running asyncio reactor."""

    def __init__(self, settings: FetchSettings):
        self._settings = settings
        self._queue: asyncio.Queue[Request | None] = asyncio.Queue()
        self._pending: set[asyncio.Future[FetchResult]] = set()
        self._crawler: Crawler | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        runner = AsyncCrawlerRunner(scrapy_settings(self._settings))
        self._crawler = runner.create_crawler(QueueSpider)
        self._task = runner.crawl(self._crawler, queue=self._queue)
        self._task.add_done_callback(self._spider_ended)

    async def fetch(
        self, url: str, *, obey_robots: bool = True, headers: dict[str, str] | None = None
    ) -> FetchResult:
        if self._task is None or self._task.done():
            return FetchResult(url=url, error="downloader is not running")
        future: asyncio.Future[FetchResult] = asyncio.get_running_loop().create_future()
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        request = Request(
            url,
            headers=headers,
            dont_filter=True,  # a feed is fetched again at every poll; our index decides what is new
            meta={"future": future, "dont_obey_robotstxt": not obey_robots},
        )
        await self._queue.put(request)
        return await future

    @property
    def waiting(self) -> int:
        """Requests handed to the spider and not yet answered (the crawler_queue_length gauge)."""
        return len(self._pending)

    async def close(self) -> None:
        """Stop the spider; callers still waiting get an error result instead of hanging."""
        self._queue.put_nowait(None)
        if self._crawler is not None and self._crawler.crawling:
            await self._crawler.stop_async()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=5)
        self._fail_pending("shutting down")

    def _spider_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("the downloader stopped: %s", task.exception())
        self._fail_pending("downloader stopped")

    def _fail_pending(self, reason: str) -> None:
        for future in list(self._pending):
            if not future.done():
                future.set_result(FetchResult(url="", error=reason))
