"""APScheduler jobs: one poll job per source and the daily digest, on the service's event loop."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from crawler.config import Config, Source

DIGEST_JOB = "digest"
# Overdue sources at start-up are spread over this window (or their interval, if shorter) instead of all
# firing at once.
CATCH_UP_WINDOW = timedelta(minutes=5)


def poll_job_id(name: str) -> str:
    return f"poll:{name}"


def source_trigger(config: Config, source: Source) -> BaseTrigger:
    if source.cron:
        return CronTrigger.from_crontab(source.cron, timezone=config.tz)
    interval = config.interval(source)
    # Up to 10% of the interval of jitter, so sources with equal intervals do not fire together.
    return IntervalTrigger(seconds=interval.total_seconds(), jitter=interval.total_seconds() * 0.1)


def first_runs(config: Config, due: Mapping[str, datetime | None], now: datetime) -> dict[str, datetime]:
    """When each source polls first: at its saved next poll if that is still ahead, overdue ones spread out.

    Cron sources are left to their trigger unless a saved next poll (a backoff) is later than now.
    """
    out: dict[str, datetime] = {}
    overdue: list[Source] = []
    for src in config.sources:
        if not src.enabled:
            continue
        when = due.get(src.name)
        if when is not None and when > now:
            out[src.name] = when
        elif not src.cron:
            overdue.append(src)
    for i, src in enumerate(overdue):
        window = min(CATCH_UP_WINDOW, config.interval(src))
        # Evenly spaced with a little randomness; the first one goes right away.
        share = 1 / len(overdue)
        offset = window * (i * share + random.uniform(0, share / 2)) if i else timedelta()
        out[src.name] = now + offset
    return out


def install_jobs(
    scheduler: AsyncIOScheduler,
    config: Config,
    poll: Callable[[str], Awaitable[Any]],
    digest: Callable[[], Awaitable[Any]],
    due: Mapping[str, datetime | None],
    now: datetime,
    skip: Collection[str] = (),
) -> None:
    """Install the digest job and a poll job per enabled source, except those in `skip` (gone: HTTP 410)."""
    starts = first_runs(config, due, now)
    for src in config.sources:
        if not src.enabled or src.name in skip:
            continue
        options: dict[str, Any] = {
            "id": poll_job_id(src.name),
            "name": f"poll {src.name}",
            "replace_existing": True,
            "coalesce": True,  # after a stall, one poll, not one per missed interval
            "max_instances": 1,
            # The 1 s default silently drops runs when the loop is busy; a late poll is still worth doing.
            "misfire_grace_time": int(max(config.interval(src).total_seconds(), 60)),
        }
        if src.name in starts:  # otherwise (cron sources) the trigger computes the first run
            options["next_run_time"] = starts[src.name]
        scheduler.add_job(poll, source_trigger(config, src), args=[src.name], **options)
    at = config.settings.digest.at
    scheduler.add_job(
        digest,
        CronTrigger(hour=at.hour, minute=at.minute, timezone=config.tz),
        id=DIGEST_JOB,
        name="daily digest",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=3600,
    )


def reschedule(scheduler: AsyncIOScheduler, config: Config, name: str, when: datetime | None) -> None:
    """After a poll: the next one at `when` (backoff, server hints, adaptive interval), or none at all."""
    job = scheduler.get_job(poll_job_id(name))
    if job is None:
        return
    if when is None:
        job.remove()
        return
    src = config.source(name)
    if src.cron and job.next_run_time is not None and job.next_run_time >= when:
        return  # the crontab's own next run is later anyway
    job.modify(next_run_time=when)
