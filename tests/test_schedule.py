"""Scheduling decisions: when each source polls first, and the jobs the service installs."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from conftest import write_config

from crawler.config import load_config
from crawler.schedule import (
    CATCH_UP_WINDOW,
    DIGEST_JOB,
    first_runs,
    install_jobs,
    poll_job_id,
    source_trigger,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _config(tmp_path: Path, n: int = 6):  # type: ignore[no-untyped-def]
    sources = [{"name": f"s{i}", "url": f"http://127.0.0.1:9/{i}.xml", "every": "1h"} for i in range(n)]
    sources.append({"name": "cronned", "url": "http://127.0.0.1:9/c.xml", "cron": "0 */3 * * *"})
    sources.append({"name": "off", "url": "http://127.0.0.1:9/o.xml", "enabled": False})
    return load_config(write_config(tmp_path / "config", sources, {"digest": {"at": "06:30"}}))


def test_overdue_sources_are_spread_over_the_catch_up_window(tmp_path: Path) -> None:
    config = _config(tmp_path)
    starts = first_runs(config, {}, NOW)  # never polled: all overdue
    times = sorted(starts.values())
    assert set(starts) == {f"s{i}" for i in range(6)}  # cron and disabled sources are not in it
    assert times[0] == NOW  # the first goes right away
    assert all(NOW <= t < NOW + CATCH_UP_WINDOW for t in times)
    assert len(set(times)) == len(times)  # not all at once
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) > timedelta(seconds=10)


def test_sources_not_yet_due_keep_their_saved_next_poll(tmp_path: Path) -> None:
    config = _config(tmp_path, n=2)
    due = {
        "s0": NOW + timedelta(minutes=40),
        "s1": NOW - timedelta(hours=5),
        "cronned": NOW + timedelta(hours=9),
    }
    starts = first_runs(config, due, NOW)
    assert starts["s0"] == NOW + timedelta(minutes=40)
    assert starts["s1"] == NOW  # overdue, and the only one: right away
    assert starts["cronned"] == NOW + timedelta(hours=9)  # a backoff beyond the crontab's next run is kept


def test_triggers_and_installed_jobs(tmp_path: Path) -> None:
    config = _config(tmp_path, n=1)
    interval = source_trigger(config, config.source("s0"))
    assert isinstance(interval, IntervalTrigger)
    assert interval.interval == timedelta(hours=1)
    assert interval.jitter == 360  # 10% of the interval
    assert isinstance(source_trigger(config, config.source("cronned")), CronTrigger)

    async def scenario() -> dict[str, object]:
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=config.tz)

        async def poll(name: str) -> None: ...

        async def digest() -> None: ...

        install_jobs(scheduler, config, poll, digest, {}, NOW)
        scheduler.start(paused=True)
        jobs = {job.id: job for job in scheduler.get_jobs()}
        scheduler.shutdown(wait=False)
        return jobs

    jobs = asyncio.run(scenario())
    assert set(jobs) == {poll_job_id("s0"), poll_job_id("cronned"), DIGEST_JOB}
    job = jobs[poll_job_id("s0")]
    assert job.coalesce is True and job.max_instances == 1  # type: ignore[attr-defined]
    assert job.misfire_grace_time == 3600  # type: ignore[attr-defined]
    assert job.next_run_time == NOW  # type: ignore[attr-defined]
    digest_trigger = jobs[DIGEST_JOB].trigger  # type: ignore[attr-defined]
    assert str(digest_trigger) == "cron[hour='6', minute='30', second='0']"
