"""APScheduler jobs: one poll job per source and the daily digest, on the service's event loop."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
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


def first_runs(
    config: Config, last_polls: Mapping[str, datetime | None], now: datetime
) -> dict[str, datetime]:
    """When each interval source polls first: on its schedule if it is not due, overdue ones spread out."""
    out: dict[str, datetime] = {}
    overdue: list[Source] = []
    for src in config.sources:
        if not src.enabled or src.cron:
            continue
        last = last_polls.get(src.name)
        due = last + config.interval(src) if last else None
        if due is not None and due > now:
            out[src.name] = due
        else:
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
    last_polls: Mapping[str, datetime | None],
    now: datetime,
) -> None:
    starts = first_runs(config, last_polls, now)
    for src in config.sources:
        if not src.enabled:
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
        if src.name in starts:  # cron sources keep the first run their trigger computes
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


def next_runs(scheduler: AsyncIOScheduler) -> dict[str, datetime | None]:
    return {job.id: job.next_run_time for job in scheduler.get_jobs()}
