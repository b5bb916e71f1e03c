"""`crawler run` as a real background process: scheduled polls of a growing feed, SIGTERM, restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, Site, archived, article_html, lorem, rss, write_config

from crawler.store import PollRow, Store


def _start(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "crawler", "run", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        cwd=ROOT,
        env={**os.environ},
    )


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _stop(proc: subprocess.Popen[bytes]) -> tuple[int, float]:
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    return code, time.monotonic() - start


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
    proc = _start(cfg, tmp_path / "run.log")
    try:
        for poll in range(1, 4):
            _wait_for(lambda n=poll: site.hits_of("/feed.xml") >= n, 60, f"poll {poll}")  # type: ignore[misc]
            feed.add()  # the next poll finds one more story
        # Poll 3 saw the story added after poll 2; wait until it is filed.
        _wait_for(lambda: len(archived(data)) >= 4, 60, "the fourth item to be filed")
        code, took = _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
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
    proc = _start(cfg, tmp_path / "run2.log")
    try:
        _wait_for(lambda: site.hits_of("/feed.xml") >= hits_before + 1, 60, "a poll after restart")
        _wait_for(
            lambda: "already known" in (tmp_path / "run2.log").read_text("utf-8"), 30, "the poll to end"
        )
        code, _took = _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
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
    proc = _start(cfg, tmp_path / "run.log")
    try:
        _wait_for(lambda: (data / "digests" / "2026-01-05.md").exists(), 60, "the missed digest")
        code, _ = _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0
    text = (data / "digests" / "2026-01-05.md").read_text("utf-8")
    assert text.startswith("# Digest for 2026-01-05")
    assert "- quiet: HTTP 503" in text
