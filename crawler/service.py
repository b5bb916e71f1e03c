"""The service: one event loop running the scheduler, the spider and the pool, until SIGTERM or Ctrl-C.

Also the one-shot poll used by `crawler poll` and the demo, which share everything but the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from crawler.config import Config
from crawler.digest import DigestTemplateError, missed_days, write_digest_for, yesterday
from crawler.pipeline import PollReport, poll_source
from crawler.resources import Resources, open_resources
from crawler.schedule import install_jobs, reschedule

log = logging.getLogger(__name__)

# SIGTERM must stop the service within 10 s: polls in flight get this long to finish filing, then the
# downloader, the writer and the pool are closed in order.
DRAIN_SECONDS = 4.0


async def serve(config: Config) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with open_resources(config) as res:
        await _write_missed_digests(res)
        in_flight: set[asyncio.Task[object]] = set()

        async def poll_job(name: str) -> None:
            task = asyncio.current_task()
            assert task is not None
            in_flight.add(task)
            try:
                report = await poll_source(res, res.config.source(name))
                reschedule(scheduler, config, name, None if report.disabled else report.next_poll)
            except Exception:  # one source's bug must not stop the others
                log.exception("%s: poll crashed", name)
            finally:
                in_flight.discard(task)

        async def digest_job() -> None:
            day = yesterday(datetime.now(config.tz))
            try:
                await res.write(write_digest_for, res.store, config, day)
            except DigestTemplateError as exc:  # the Markdown digest is written; the HTML waits for a fix
                log.error("digest for %s: HTML not written: %s", day, exc)
                return
            await _write_missed_digests(res)

        scheduler = AsyncIOScheduler(event_loop=loop, timezone=config.tz)
        states = res.store.source_states()
        due = _saved_next_polls(config, states, datetime.now(config.tz))
        gone = {s.name for s in config.sources if _disabled(states.get(s.name), s.url)}
        for name in sorted(gone):
            log.warning("%s: not polled: %s", name, states[name]["disabled"])
        install_jobs(scheduler, config, poll_job, digest_job, due, datetime.now(config.tz), skip=gone)
        scheduler.start()
        enabled = [s.name for s in config.sources if s.enabled]
        log.info("service started: %d source(s), data in %s", len(enabled), res.data_dir)
        await stop.wait()

        log.info("stopping: no new polls; waiting up to %g s for polls in flight", DRAIN_SECONDS)
        scheduler.shutdown(wait=False)
        if in_flight:
            _done, pending = await asyncio.wait(list(in_flight), timeout=DRAIN_SECONDS)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
    log.info("stopped")
    return 0


def _saved_next_polls(
    config: Config, states: dict[str, dict[str, Any]], now: datetime
) -> dict[str, datetime | None]:
    """Saved next polls; a healthy source waits at most one interval, so a shortened `every:` applies."""
    due: dict[str, datetime | None] = {}
    for src in config.sources:
        state = states.get(src.name)
        if not state or not state.get("next_poll") or state.get("url") != src.url:
            due[src.name] = None
            continue
        when = datetime.fromisoformat(state["next_poll"])
        if not state.get("failures") and not src.cron and src.every != "auto":
            when = min(when, now + config.interval(src))
        due[src.name] = when
    return due


def _disabled(state: dict[str, Any] | None, url: str) -> bool:
    return bool(state and state.get("disabled") and state.get("url") == url)


async def poll_once(
    config: Config, names: Sequence[str], on_done: Callable[[PollReport], None] | None = None
) -> list[PollReport]:
    """Poll the named sources (all enabled ones when empty) concurrently and return one report each.

    A source stopped by HTTP 410 is polled only when named, to check whether it is back.
    """
    async with open_resources(config) as res:
        if names:
            chosen = [config.source(n) for n in names]
        else:
            states = res.store.source_states()
            chosen = [s for s in config.sources if s.enabled and not _disabled(states.get(s.name), s.url)]

        async def one(name: str) -> PollReport:
            try:
                report = await poll_source(res, res.config.source(name))
            except Exception as exc:  # reported like any other failure; the other sources carry on
                log.exception("%s: poll crashed", name)
                report = PollReport(name, error=f"internal error: {exc}")
            if on_done is not None:
                on_done(report)
            return report

        return list(await asyncio.gather(*(one(s.name) for s in chosen)))


async def _write_missed_digests(res: Resources) -> None:
    today = datetime.now(res.config.tz).date()
    for day in missed_days(res.store, res.data_dir, today):
        log.info("writing the missed digest for %s", day)
        try:
            await res.write(write_digest_for, res.store, res.config, day)
        except DigestTemplateError as exc:
            # Every day would fail the same way: say it once; the days are written once the template is fixed.
            log.error("digest for %s: HTML not written: %s", day, exc)
            return
