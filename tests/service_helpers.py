"""Helpers for the tests that run `crawler run` as a real process and stop or kill it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from conftest import CHECK_ARCHIVE, ROOT, Site, article_html, lorem, rss


def start_service(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    """`crawler run` in a session of its own, so that `kill_group` can clean up whatever it leaves."""
    return subprocess.Popen(
        [sys.executable, "-m", "crawler", "run", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        cwd=ROOT,
        env={**os.environ},
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL what is left of the service's session (its worker processes, after a crash of the service)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_for_lock(data: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until the service holds the data folder (its PID in the lock file): it handles signals from then."""
    lock = data / "crawler.lock"

    def locked() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the service exited early with {proc.returncode}")
        try:
            return lock.read_text().split()[:1] == [str(proc.pid)]
        except OSError:
            return False

    wait_for(locked, timeout, "the service to take the lock")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> tuple[int, float]:
    began = time.monotonic()
    proc.send_signal(sig)
    code = proc.wait(timeout=30)
    return code, time.monotonic() - began


def log_text(path: Path) -> str:
    return path.read_text("utf-8", errors="replace") if path.exists() else ""


class BigFeed:
    """A feed of many small articles on a local site; `grow` adds more on top."""

    def __init__(self, site: Site, count: int):
        self.site = site
        self.entries: list[tuple[str, str]] = []
        self.grow(count)

    def grow(self, count: int) -> None:
        start = len(self.entries)
        for i in range(start, start + count):
            path, title = f"/big/{i}.html", f"Story {i} about trade between Havana and Caracas"
            self.site.set(path, article_html(title, lorem(f"big story {i}")))
            self.entries.insert(0, (path, title))
        self.site.set("/feed.xml", rss(self.site, self.entries), content_type="application/rss+xml")

    def urls(self) -> set[str]:
        return {self.site.url(p) for p, _ in self.entries}


def index_paths(data: Path) -> set[str]:
    """The paths in the index's items table, read with plain sqlite3 (no recovery, no schema changes)."""
    db = data / "index.sqlite3"
    if not db.exists():
        return set()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT path FROM items")}
    except sqlite3.OperationalError:  # killed before the tables were created
        return set()
    finally:
        conn.close()


def disk_state(data: Path) -> tuple[set[str], list[Path], list[Path]]:
    """(complete items as relative .txt paths, leftover temporary files, orphans: one half of a pair)."""
    root = data / "archive"
    complete: set[str] = set()
    orphans: list[Path] = []
    temps = sorted(root.rglob("*.tmp")) if root.exists() else []
    for path in sorted(root.rglob("*.txt")) if root.exists() else []:
        if path.with_suffix(".json").exists():
            complete.add(str(path.relative_to(data)))
        else:
            orphans.append(path)
    for path in sorted(root.rglob("*.json")) if root.exists() else []:
        if not path.with_suffix(".txt").exists():
            orphans.append(path)
    return complete, temps, orphans


def filed_urls(data: Path) -> list[str]:
    root = data / "archive"
    if not root.exists():
        return []
    return [json.loads(p.read_text("utf-8"))["url"] for p in sorted(root.rglob("*.json"))]


def check_archive(data: Path) -> None:
    """Every archive file passes ../shared/tools/check_archive.py (when it is there and anything is filed)."""
    root = data / "archive"
    if not CHECK_ARCHIVE.exists() or not root.exists() or not any(root.rglob("*.txt")):
        return
    out = subprocess.run(
        [sys.executable, str(CHECK_ARCHIVE), str(root)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
