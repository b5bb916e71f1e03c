"""One instance per data folder: the lock of `crawler run` and `crawler poll`, and what others see of it."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, Site, archived, article_html, crawler_cmd, lorem, rss, write_config
from service_helpers import kill_group, log_text, start_service, stop, wait_for, wait_for_lock

from crawler.cli import cmd_poll
from crawler.lock import LOCK_FILE, DataLock, Holder, LockHeld, read_holder


def test_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    first = DataLock(tmp_path / "data", "run")
    first.acquire()
    assert (tmp_path / "data" / LOCK_FILE).read_text() == f"{os.getpid()} run\n"
    second = DataLock(tmp_path / "data", "poll")
    with pytest.raises(LockHeld) as caught:
        second.acquire()
    assert caught.value.holder == Holder(os.getpid(), "run")
    assert f"in use by `crawler run` (PID {os.getpid()})" in str(caught.value)
    first.release()
    assert read_holder(tmp_path / "data") == Holder(None, None)
    with second:
        assert read_holder(tmp_path / "data") == Holder(os.getpid(), "poll")


def test_waiting_for_the_lock_says_for_whom_and_ends_when_it_is_released(tmp_path: Path) -> None:
    holder = DataLock(tmp_path, "poll")
    holder.acquire()
    told: list[Holder] = []
    began = time.monotonic()
    with pytest.raises(LockHeld):
        DataLock(tmp_path, "poll").acquire(wait=0.5, on_wait=told.append)
    assert 0.5 <= time.monotonic() - began < 2
    assert told == [Holder(os.getpid(), "poll")]  # said once, not at every retry

    threading.Timer(0.3, holder.release).start()
    waiter = DataLock(tmp_path, "poll")
    waiter.acquire(wait=10)
    assert waiter.held
    waiter.release()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _feed(site: Site) -> None:
    site.set("/a.html", article_html("Harbour works begin", lorem("harbour")))
    site.set("/feed.xml", rss(site, [("/a.html", "Harbour works begin")]), content_type="application/rss+xml")


def test_a_second_service_exits_1_naming_the_pid_and_a_poll_waits_then_gives_up(
    site: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _feed(site)
    port = _free_port()
    cfg = write_config(
        tmp_path / "config",
        [{"name": "a", "url": site.url("/feed.xml"), "every": "1h"}],
        {"http": {"listen": f"127.0.0.1:{port}"}},
    )
    data = cfg / "data"
    proc = start_service(cfg, tmp_path / "run.log")
    try:
        wait_for_lock(data, proc)
        # `crawler run` serves the monitoring endpoint it is configured with.
        wait_for(lambda: "http: serving" in log_text(tmp_path / "run.log"), 60, "the endpoint")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            assert answer.status == 200 and b"crawler_polls_total" in answer.read()
        second = crawler_cmd("run", "--config", str(cfg), timeout=60)
        assert second.returncode == 1
        assert f"in use by `crawler run` (PID {proc.pid})" in second.stderr

        args = argparse.Namespace(config=cfg, sources=[], wait=1.0)
        assert cmd_poll(args) == 1
        err = capsys.readouterr().err
        assert f"waiting up to 1 s for `crawler run` (PID {proc.pid})" in err
        assert "nothing polled" in err and "stop it to poll by hand" in err

        # Readers need no lock.
        assert crawler_cmd("sources", "--config", str(cfg)).returncode == 0
        code, _took = stop(proc)
    finally:
        kill_group(proc)
    assert code == 0, log_text(tmp_path / "run.log")


def test_a_killed_service_leaves_no_stale_lock(site: Site, tmp_path: Path) -> None:
    _feed(site)
    cfg = write_config(tmp_path / "config", [{"name": "a", "url": site.url("/feed.xml"), "every": "1h"}])
    proc = start_service(cfg, tmp_path / "run.log")
    try:
        wait_for_lock(cfg / "data", proc)
        stop(proc, signal.SIGKILL)
    finally:
        kill_group(proc)
    began = time.monotonic()
    out = crawler_cmd("poll", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    assert "waiting" not in out.stderr
    assert time.monotonic() - began < 30
    assert len(archived(cfg / "data")) == 1


def test_a_poll_waits_for_another_poll_and_then_polls(site: Site, tmp_path: Path) -> None:
    _feed(site)
    cfg = write_config(tmp_path / "config", [{"name": "a", "url": site.url("/feed.xml")}])
    other = DataLock(cfg / "data", "poll")  # another `crawler poll`, in this process
    other.acquire()
    err = tmp_path / "poll.err"
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler", "poll", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=err.open("wb"),
        cwd=ROOT,
    )
    try:
        wait_for(lambda: "waiting up to 60 s for `crawler poll`" in log_text(err), 60, "the poll to wait")
        assert not archived(cfg / "data")
        other.release()
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, log_text(err)
    assert b"a: 1 new" in out
    assert len(archived(cfg / "data")) == 1
