"""Crash safety: `crawler run` killed with SIGKILL at random moments loses nothing and files nothing twice.

Each run starts the service on the same data folder, lets it work for a random moment (starting up,
reading the feed, downloading, extracting, filing) and kills it without warning. After every few kills a
`crawler poll` (a restart) must find: no temporary file, no text without its sidecar, the index and the
files in agreement, no URL filed twice, and every item the feed offers filed.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
from conftest import Site, crawler_cmd, write_config
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
    wait_for_lock,
)

from crawler.lock import DataLock


def _seed() -> int:
    return int(os.environ.get("CRAWLER_TEST_SEED") or int.from_bytes(os.urandom(4), "big"))


def _check_after_restart(data: Path, feed: BigFeed, where: str) -> None:
    complete, temps, orphans = disk_state(data)
    assert not temps, f"{where}: temporary files left: {temps}"
    assert not orphans, f"{where}: half items left: {orphans}"
    assert index_paths(data) == complete, f"{where}: the index and the files disagree"
    urls = filed_urls(data)
    assert len(urls) == len(set(urls)), f"{where}: an item was filed twice"
    missing = feed.urls() - set(urls)
    assert not missing, (
        f"{where}: {len(missing)} item(s) the feed offers were not filed: {sorted(missing)[:5]}"
    )
    check_archive(data)


def _kill_runs(site: Site, tmp_path: Path, runs: int, restart_every: int) -> None:
    seed = _seed()
    rng = random.Random(seed)
    feed = BigFeed(site, 60)
    cfg = write_config(tmp_path / "config", [{"name": "big", "url": site.url("/feed.xml"), "every": "2s"}])
    data = cfg / "data"
    for run in range(1, runs + 1):
        feed.grow(6)
        where = f"run {run} (seed {seed})"
        log = tmp_path / "run.log"
        proc = start_service(cfg, log)
        try:
            wait_for_lock(data, proc)
            time.sleep(rng.uniform(0, 3.0))
            code, _took = stop(proc, signal.SIGKILL)
        finally:
            # What a supervisor does before a restart; worker processes should be gone already.
            kill_group(proc)
        assert code == -signal.SIGKILL, f"{where}: {log_text(log)[-3000:]}"
        # The kernel released the lock with the process: no stale lock to clean up.
        lock = DataLock(data, "test")
        lock.acquire(wait=0)
        lock.release()
        urls = filed_urls(data)
        assert len(urls) == len(set(urls)), f"{where}: an item was filed twice"
        if run % restart_every == 0:
            out = crawler_cmd("poll", "--config", str(cfg))
            assert out.returncode == 0, out.stderr[-3000:]
            _check_after_restart(data, feed, where)
    assert "Traceback" not in log_text(tmp_path / "run.log"), log_text(tmp_path / "run.log")[-5000:]


def test_sigkill_at_random_moments_loses_nothing_and_files_nothing_twice(site: Site, tmp_path: Path) -> None:
    _kill_runs(site, tmp_path, runs=10, restart_every=5)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_sigkill_many_times(site: Site, tmp_path: Path) -> None:
    _kill_runs(site, tmp_path, runs=100, restart_every=4)
