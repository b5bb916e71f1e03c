"""The long-lived spider: it takes requests from an asyncio queue and hands each answer back to its caller.

The spider never parses anything: every response goes back, as a plain FetchResult, to the coroutine that
asked for it, so all the crawler's stages stay testable without Scrapy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from scrapy import Request, Spider
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.fetch.errors import describe_failure
from crawler.fetch.politeness import response_retry_after
from crawler.models import FetchResult


class QueueSpider(Spider):
    name = "crawler"

    def __init__(self, queue: asyncio.Queue[Request | None], **kwargs: Any):
        super().__init__(**kwargs)
        self.queue = queue

    async def start(self) -> AsyncIterator[Request]:
        # Runs for the life of the service: Scrapy keeps the spider open while start() has more to give.
        while True:
            request = await self.queue.get()
            if request is None:  # the fetcher is closing
                return
            request.errback = self.failed
            yield request

    async def parse(self, response: Response, **kwargs: Any) -> AsyncIterator[Any]:
        future: asyncio.Future[FetchResult] = response.meta["future"]
        if not future.done():
            future.set_result(
                FetchResult(
                    url=response.url,
                    status=response.status,
                    headers=_headers(response),
                    body=response.body,
                    redirects=_redirects(response.meta, response.url),
                    retry_after=response_retry_after(response.status, response.headers.get(b"Retry-After")),
                )
            )
        return
        yield  # an async generator that yields nothing: no items, no follow-up requests

    def failed(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        future: asyncio.Future[FetchResult] = request.meta["future"]
        if not future.done():
            future.set_result(
                FetchResult(
                    url=request.url,
                    error=describe_failure(failure, self.settings),
                    redirects=_redirects(request.meta, request.url),
                )
            )


def _headers(response: Response) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, values in response.headers.items():
        if values:
            out[key.decode("latin-1").lower()] = values[-1].decode("latin-1")
    return out


def _redirects(meta: dict[str, Any], final_url: str) -> tuple[tuple[int, str], ...]:
    """(status, URL it led to) per redirect followed, from what RedirectMiddleware leaves in meta."""
    sources: list[str] = meta.get("redirect_urls", [])
    reasons: list[Any] = meta.get("redirect_reasons", [])
    targets = [*sources[1:], final_url]
    return tuple((r if isinstance(r, int) else 0, url) for r, url in zip(reasons, targets, strict=False))
