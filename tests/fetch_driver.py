"""Runs the real Fetcher on Twisted's asyncio reactor for tests/test_fetch.py (a reactor runs once per
process, so every scenario is its own process).

Input, as JSON in argv[1] (or on stdin):
    {"settings": {FetchSettings fields},
     "fetches": [{"url": ..., "obey_robots": false, "headers": {...}}, ...],
     "concurrent": false,             # true: start every fetch at once; false: one after the other
     "treat_as_public": ["127.0.0.1"]} # test only: addresses the guard is told are public
Output: one JSON line per fetch, in the order given.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import sys
import time
from typing import Any

from crawler.config import FetchSettings
from crawler.fetch import Fetcher, guard
from crawler.models import FetchResult
from crawler.runtime import run

SHOWN_HEADERS = ("content-type", "content-encoding", "content-length", "retry-after", "location")


def as_json(index: int, result: FetchResult, elapsed: float) -> str:
    return json.dumps(
        {
            "index": index,
            "url": result.url,
            "status": result.status,
            "error": result.error,
            "redirects": [list(hop) for hop in result.redirects],
            "retry_after": result.retry_after,
            "body_len": len(result.body),
            "headers": {k: v for k, v in result.headers.items() if k in SHOWN_HEADERS},
            "elapsed": round(elapsed, 3),
        }
    )


def treat_as_public(addresses: list[str]) -> None:
    """Lets a test on loopback see the guard judge a hop: the listed addresses count as public."""
    public = {ipaddress.ip_address(a) for a in addresses}
    real = guard._kind

    def kind(ip: Any) -> str | None:
        return None if ip in public else real(ip)

    guard._kind = kind


async def main(spec: dict[str, Any]) -> None:
    fetcher = Fetcher(FetchSettings(**spec.get("settings", {})))
    await fetcher.start()

    async def one(index: int, item: dict[str, Any]) -> str:
        started = time.monotonic()
        result = await fetcher.fetch(
            item["url"], obey_robots=item.get("obey_robots", False), headers=item.get("headers")
        )
        return as_json(index, result, time.monotonic() - started)

    try:
        fetches = spec["fetches"]
        if spec.get("concurrent"):
            lines = await asyncio.gather(*(one(i, item) for i, item in enumerate(fetches)))
        else:
            lines = [await one(i, item) for i, item in enumerate(fetches)]
        for line in lines:
            print(line, flush=True)
    finally:
        await fetcher.close()


if __name__ == "__main__":
    spec = json.loads(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read())
    treat_as_public(spec.get("treat_as_public", []))
    run(lambda: main(spec))
