"""`crawler run` as a real background process: scheduled polls of a growing feed, SIGTERM, restart; the
persistent schedule; a graceful stop at random moments."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from conftest import Site, archived, article_html, crawler_cmd, lorem, rss, write_config
from service_helpers import (
    BigFeed,
    check_archive,
    disk_state,
    filed_urls,
    index_paths,
    kill_group,
    log_text,
    start_service,
    stop,
    wait_for,
    wait_for_lock,
)

from crawler.config import load_config
from crawler.resources import Resources
from crawler.schedule import (
    CATCH_UP_WINDOW,
    DIGEST_JOB,
    SCHEDULE_FILE,
    persistent_scheduler,
    poll_job_id,
    start_scheduler,
)
from crawler.service import POLL_JOB, Service
from crawler.store import PollRow, Store
from crawler.topics import compile_topics


class GrowingFeed:
    """A feed that gains one story each time it is polled."""

    def __init__(self, site: Site, initial: int):
        self.site = site
        self.entries: list[tuple[str, str]] = []
        for _ in range(initial):
            self.add()

    def add(self) -> None:
        i = len(self.entries)
        path, title = f"/news/{i}.html", f"Story number {i} from Havana"
        self.site.set(path, article_html(title, lorem(f"event {i} in Havana and Pyongyang")))
        self.entries.insert(0, (path, title))
        self.site.set("/feed.xml", rss(self.site, self.entries), content_type="application/rss+xml")


def _urls_filed(data: Path) -> list[str]:
    return [json.loads(p.with_suffix(".json").read_text("utf-8"))["url"] for p in archived(data)]


def test_service_polls_on_schedule_files_each_item_once_and_stops_on_sigterm(
    site: Site, tmp_path: Path
) -> None:
    feed = GrowingFeed(site, initial=2)
    cfg = write_config(
        tmp_path / "config", [{"name": "growing", "url": site.url("/feed.xml"), "every": "2s"}]
    )
    data = cfg / "data"
    proc = start_service(cfg, tmp_path / "run.log")
    try:
        for poll in range(1, 4):
            wait_for(lambda n=poll: site.hits_of("/feed.xml") >= n, 60, f"poll {poll}")  # type: ignore[misc]
            feed.add()  # the next poll finds one more story
        # Poll 3 saw the story added after poll 2; wait until it is filed.
        wait_for(lambda: len(archived(data)) >= 4, 60, "the fourth item to be filed")
        code, took = stop(proc)
    finally:
        kill_group(proc)
    log = (tmp_path / "run.log").read_text("utf-8")
    assert code == 0, log
    assert took < 10, f"SIGTERM took {took:.1f} s"
    assert "stopped" in log
    urls = _urls_filed(data)
    assert len(urls) == len(set(urls)), "an item was filed twice"
    assert set(urls) >= {site.url(p) for p, _ in feed.entries[-4:]}
    assert not list((data / "archive").rglob("*.tmp"))
    store = Store(data / "index.sqlite3")
    assert store.count_items() == len(urls)  # the index and the files agree

    # A restart files nothing twice: the stories already archived are known.
    filed_before = len(urls)
    hits_before = site.hits_of("/feed.xml")
    proc = start_service(cfg, tmp_path / "run2.log")
    try:
        wait_for(lambda: site.hits_of("/feed.xml") >= hits_before + 1, 60, "a poll after restart")
        wait_for(lambda: "already known" in (tmp_path / "run2.log").read_text("utf-8"), 30, "the poll to end")
        code, _took = stop(proc)
    finally:
        kill_group(proc)
    urls = _urls_filed(data)
    assert code == 0
    assert len(urls) == len(set(urls))
    # Only the story added after the last poll of the first run can be new.
    assert filed_before <= len(urls) <= filed_before + 1


def test_service_writes_missed_digests_when_it_starts(site: Site, tmp_path: Path) -> None:
    site.set("/feed.xml", rss(site, []))
    cfg = write_config(tmp_path / "config", [{"name": "quiet", "url": site.url("/feed.xml"), "every": "1h"}])
    data = cfg / "data"
    store = Store(data / "index.sqlite3")
    # The service was down on the evening of a past day when it had polled: that digest was never written.
    store.record_poll("2026-01-05", PollRow("quiet", 0, 0, 0, "HTTP 503", []))
    store.close()
    proc = start_service(cfg, tmp_path / "run.log")
    try:
        wait_for(lambda: (data / "digests" / "2026-01-05.md").exists(), 60, "the missed digest")
        code, _ = stop(proc)
    finally:
        kill_group(proc)
    assert code == 0
    text = (data / "digests" / "2026-01-05.md").read_text("utf-8")
    assert text.startswith("# Digest for 2026-01-05")
    assert "- quiet: HTTP 503" in text


def _stored_jobs(data: Path) -> dict[str, object]:
    """The jobs in DATA/schedule.sqlite3, as the next process would load them."""
    store = SQLAlchemyJobStore(url=f"sqlite:///{data / SCHEDULE_FILE}")
    store.start(AsyncIOScheduler(), "default")  # type: ignore[no-untyped-call]
    try:
        return {job.id: job for job in store.get_all_jobs()}  # type: ignore[no-untyped-call]
    finally:
        store.shutdown()  # type: ignore[no-untyped-call]


def test_schedule_persists_in_the_data_folder_and_overdue_sources_are_spread_at_start(tmp_path: Path) -> None:
    sources = [{"name": f"s{i}", "url": f"http://127.0.0.1:9/{i}.xml", "every": "1h"} for i in range(6)]
    sources.append({"name": "gone", "url": "http://127.0.0.1:9/gone.xml"})
    config = load_config(write_config(tmp_path / "config", sources))
    data = config.data_dir
    index = Store(data / "index.sqlite3")
    now = datetime.now(UTC)
    # The service was down for a day: every source is overdue. One answered 410 Gone before.
    for src in config.sources:
        index.save_source_state(src.name, url=src.url, next_poll=(now - timedelta(days=1)).isoformat())
    index.save_source_state("gone", disabled="410 Gone")

    async def start_once(extra_job: bool) -> dict[str, object]:
        scheduler = persistent_scheduler(asyncio.get_running_loop(), config)
        scheduler.start(paused=True)
        if extra_job:  # left by an earlier config that had a source "removed"
            scheduler.add_job(POLL_JOB, IntervalTrigger(hours=1), args=["removed"], id=poll_job_id("removed"))
        res = Resources(config, index, None, None, None, compile_topics(config.topics))  # type: ignore[arg-type]
        Service(res, scheduler, config.config_dir).install_schedule()
        jobs = {job.id: job for job in scheduler.get_jobs()}
        scheduler.shutdown(wait=False)
        return jobs

    asyncio.run(start_once(extra_job=True))
    jobs = _stored_jobs(data)
    index.close()
    names = [f"s{i}" for i in range(6)]
    # Explicit ids; the stale job and the gone source's job are not there.
    assert set(jobs) == {poll_job_id(n) for n in names} | {DIGEST_JOB}
    for name in names:
        job = jobs[poll_job_id(name)]
        assert job.func_ref == POLL_JOB and job.args == (name,)  # type: ignore[attr-defined]
        assert job.coalesce is True and job.max_instances == 1  # type: ignore[attr-defined]
        assert job.misfire_grace_time >= 3600  # type: ignore[attr-defined]
    assert jobs[DIGEST_JOB].func_ref == "crawler.service:run_digest_job"  # type: ignore[attr-defined]
    # Each overdue source once, spread over the catch-up window, not all at once.
    starts = sorted(jobs[poll_job_id(n)].next_run_time for n in names)  # type: ignore[attr-defined]
    assert starts[0] - now < timedelta(seconds=30)
    assert starts[-1] - now < CATCH_UP_WINDOW + timedelta(seconds=30)
    assert all(b - a > timedelta(seconds=10) for a, b in itertools.pairwise(starts))


def test_sigterm_at_random_moments_stops_in_order_and_leaves_index_and_files_in_agreement(
    site: Site, tmp_path: Path
) -> None:
    _sigterm_runs(site, tmp_path, runs=10)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_sigterm_many_times(site: Site, tmp_path: Path) -> None:
    _sigterm_runs(site, tmp_path, runs=50)


def _sigterm_runs(site: Site, tmp_path: Path, runs: int) -> None:
    """Runs on one data folder, each stopped with SIGTERM at a random moment of its work.

    The first run is stopped just after its first item is filed: at least one stop finds articles under way.
    """
    seed = int(os.environ.get("CRAWLER_TEST_SEED") or int.from_bytes(os.urandom(4), "big"))
    rng = random.Random(seed)
    feed = BigFeed(site, 60)
    cfg = write_config(tmp_path / "config", [{"name": "big", "url": site.url("/feed.xml"), "every": "2s"}])
    data = cfg / "data"
    times = []
    finished_after_stop = 0  # items under way at SIGTERM, filed before the process ended
    for run in range(1, runs + 1):
        feed.grow(6)
        where = f"run {run} (seed {seed})"
        log = tmp_path / f"run{run}.log"
        proc = start_service(cfg, log)
        try:
            wait_for_lock(data, proc)
            if run == 1:
                try:
                    wait_for(lambda log=log: ": filed " in log_text(log), 60, "the first item filed")
                except AssertionError as exc:
                    raise AssertionError(f"{where}: {exc}\n{log_text(log)[-3000:]}") from None
            else:
                time.sleep(rng.uniform(0, 3.0))
            code, took = stop(proc)
        finally:
            kill_group(proc)
        times.append(took)
        text = log_text(log)
        if "stopping: no new polls" in text:
            finished_after_stop += text.split("stopping: no new polls", 1)[1].count(": filed ")
        assert code == 0, f"{where}: exit {code}\n{log_text(log)[-3000:]}"
        assert took < 10, f"{where}: SIGTERM took {took:.1f} s"
        assert "Traceback" not in log_text(log), f"{where}: {log_text(log)[-3000:]}"
        # Exactly, without any recovery: the index lists every complete item on disk and nothing else.
        complete, temps, orphans = disk_state(data)
        assert not temps and not orphans, f"{where}: {temps} {orphans}"
        assert index_paths(data) == complete, f"{where}: the index and the files disagree"
        urls = filed_urls(data)
        assert len(urls) == len(set(urls)), f"{where}: an item was filed twice"
        check_archive(data)
    print(
        f"SIGTERM to exit: max {max(times):.2f} s, mean {sum(times) / len(times):.2f} s; "
        f"{finished_after_stop} item(s) finished after the signal (seed {seed})"
    )
    assert finished_after_stop, "no run was stopped while items were under way"
    assert set(_stored_jobs(data)) == {poll_job_id("big"), DIGEST_JOB}
    # Whatever a stop interrupted is filed by the next poll, once.
    out = crawler_cmd("poll", "--config", str(cfg))
    assert out.returncode == 0, out.stderr[-3000:]
    urls = filed_urls(data)
    assert len(urls) == len(set(urls)) and set(urls) == feed.urls()


def test_an_unreadable_job_store_is_set_aside_and_started_afresh(tmp_path: Path) -> None:
    config = load_config(
        write_config(tmp_path / "config", [{"name": "a", "url": "http://127.0.0.1:9/a.xml"}])
    )
    config.data_dir.mkdir(parents=True)
    (config.data_dir / SCHEDULE_FILE).write_bytes(b"this is not an SQLite database, " * 100)

    async def scenario() -> list[str]:
        scheduler = start_scheduler(asyncio.get_running_loop(), config)
        scheduler.add_job(POLL_JOB, IntervalTrigger(hours=1), args=["a"], id=poll_job_id("a"))
        ids = [job.id for job in scheduler.get_jobs()]
        scheduler.shutdown(wait=False)
        return ids

    assert asyncio.run(scenario()) == [poll_job_id("a")]
    assert (config.data_dir / (SCHEDULE_FILE + ".broken")).exists()
    assert set(_stored_jobs(config.data_dir)) == {poll_job_id("a")}
