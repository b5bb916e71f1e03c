"""Runs a coroutine on the one event loop shared by Twisted (Scrapy) and asyncio (APScheduler, our code).

Scrapy needs Twisted's asyncio reactor installed before anything imports ``twisted.internet.reactor``; the
reactor then drives the asyncio loop, so asyncio tasks, Scrapy downloads and scheduler jobs all share it.
A reactor can run only once per process, which suits a command-line program: one run per invocation.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"

# Set by a SIGTERM or SIGINT that arrives before the service has its own handlers on the loop (while the
# program imports Scrapy, opens the index, ...): the service then stops as soon as it has started, cleanly,
# instead of dying half-started with the signal's default action.
stop_requested = threading.Event()


def catch_stop_signals() -> None:
    """From now on SIGTERM and SIGINT only set `stop_requested`, until the service installs its handlers."""

    def note(_signum: int, _frame: object) -> None:
        stop_requested.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, note)
    # A reload request before the service runs: the config is being read anyway (the default would kill).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT from now on (handlers on the running loop), or already set when one
    came while the program was starting."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if stop_requested.is_set():
        stop.set()
    return stop


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
