"""Runs a coroutine on the one event loop shared by Twisted (Scrapy) and asyncio (APScheduler, our code).

Scrapy needs Twisted's asyncio reactor installed before anything imports ``twisted.internet.reactor``; the
reactor then drives the asyncio loop, so asyncio tasks, Scrapy downloads and scheduler jobs all share it.
A reactor can run only once per process, which suits a command-line program: one run per invocation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Install the asyncio reactor, run ``main()`` to completion on it, stop, and return its result."""
    from scrapy.utils.reactor import install_reactor

    install_reactor(ASYNCIO_REACTOR)
    from twisted.internet import reactor as _reactor

    reactor: Any = _reactor  # the installed reactor's real type is known only at run time

    outcome: dict[str, Any] = {}

    async def wrapper() -> None:
        try:
            outcome["value"] = await main()
        except BaseException as exc:  # re-raised below, outside the reactor
            outcome["error"] = exc
        finally:
            reactor.stop()

    def begin() -> None:
        outcome["task"] = asyncio.ensure_future(wrapper())

    reactor.callWhenRunning(begin)
    # Signals are ours to handle (graceful shutdown), not Twisted's immediate stop.
    reactor.run(installSignalHandlers=False)
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value
