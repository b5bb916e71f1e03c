"""APScheduler jobs: one poll job per source and the daily digest, on the service's event loop.

The jobs live in an SQLite job store in the data folder (DATA/schedule.sqlite3, apart from the index so the
two never wait on each other's locks). A job in a persistent store names its function by reference
("crawler.service:run_poll_job" with the source's name as argument), never a closure, so it can be loaded
by the next process. At start the jobs are installed again from the config, each with an explicit next run
computed from the saved next polls (see first_runs), and jobs of sources no longer configured are removed:
the store and the index then agree, and a service started after downtime polls each overdue source once,
spread out, never all at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from crawler.config import Config, Source

log = logging.getLogger(__name__)

DIGEST_JOB = "digest"
# Overdue sources at start-up are spread over this window (or their interval, if shorter) instead of all
# firing at once.
CATCH_UP_WINDOW = timedelta(minutes=5)
SCHEDULE_FILE = "schedule.sqlite3"

PollFunc = Callable[[str], Awaitable[Any]] | str  # a coroutine function, or its textual reference
DigestFunc = Callable[[], Awaitable[Any]] | str


def persistent_scheduler(loop: asyncio.AbstractEventLoop, config: Config) -> AsyncIOScheduler:
    """A scheduler on `loop` whose jobs are kept in DATA/schedule.sqlite3."""
    store = SQLAlchemyJobStore(url=f"sqlite:///{config.data_dir / SCHEDULE_FILE}")
    return AsyncIOScheduler(event_loop=loop, timezone=config.tz, jobstores={"default": store})


def start_scheduler(loop: asyncio.AbstractEventLoop, config: Config) -> AsyncIOScheduler:
    """The persistent scheduler, started paused (jobs are installed before anything runs).

    The job store holds nothing the config and the index cannot give again, so an unreadable one (a file
    that is not SQLite, say) is set aside and a new one started, rather than keeping the service down.
    """
    scheduler = persistent_scheduler(loop, config)
    try:
        scheduler.start(paused=True)
    except SQLAlchemyError as exc:
        path = config.data_dir / SCHEDULE_FILE
        aside = path.with_name(path.name + ".broken")
        log.warning("schedule: %s is unreadable (%s); moved to %s, starting afresh", path, exc, aside.name)
        os.replace(path, aside)
        scheduler = persistent_scheduler(loop, config)
        scheduler.start(paused=True)
    return scheduler


def poll_job_id(name: str) -> str:
    return f"poll:{name}"


def schedule_key(config: Config, source: Source) -> tuple[Any, ...]:
    """What a source's job depends on: when it differs after a reload, the job is replaced."""
    if source.cron:
        return (source.url, source.kind, source.enabled, "cron", source.cron, config.settings.timezone)
    return (source.url, source.kind, source.enabled, "every", config.interval(source), source.every == "auto")


def digest_key(config: Config) -> tuple[Any, ...]:
    return (config.settings.digest.at, config.settings.timezone)


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
    poll: PollFunc,
    digest: DigestFunc | None,
    due: Mapping[str, datetime | None],
    now: datetime,
    skip: Collection[str] = (),
    only: Collection[str] | None = None,
) -> list[str]:
    """Install the digest job and a poll job per enabled source, except those in `skip` (gone: HTTP 410).

    With `only`, just those sources' jobs (a reload), overdue ones spread among themselves; with digest=None
    the digest job is left as it is. Jobs are replaced when they exist. Returns the ids of the jobs installed.
    """
    chosen = [
        s for s in config.sources if s.enabled and s.name not in skip and (only is None or s.name in only)
    ]
    starts = first_runs(dataclasses.replace(config, sources=tuple(chosen)), due, now)
    installed: list[str] = []
    for src in chosen:
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
        installed.append(options["id"])
    if digest is not None:
        at = config.settings.digest.at
        scheduler.add_job(
            digest,
            CronTrigger(hour=at.hour, minute=at.minute, second=at.second, timezone=config.tz),
            id=DIGEST_JOB,
            name="daily digest",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=3600,
        )
        installed.append(DIGEST_JOB)
    return installed


def sync_jobs(
    scheduler: AsyncIOScheduler,
    config: Config,
    poll: PollFunc,
    digest: DigestFunc,
    due: Mapping[str, datetime | None],
    now: datetime,
    skip: Collection[str] = (),
) -> list[str]:
    """At start: install every job from the config, and remove stored jobs nothing installs any more.

    The scheduler must be started (paused), so that its persistent store can be read. Returns the ids of
    the jobs removed (sources no longer configured, disabled, or gone).
    """
    installed = set(install_jobs(scheduler, config, poll, digest, due, now, skip))
    stale = [job.id for job in scheduler.get_jobs() if job.id not in installed]
    for job_id in stale:
        scheduler.remove_job(job_id)
    return stale


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
