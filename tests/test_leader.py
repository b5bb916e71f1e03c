"""Leader election on a real PostgreSQL (advisory lock) and the digest claim that fences two leaders."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from pg_server import pg_url_fixture, postgres_fixture  # noqa: F401  (fixtures used by name)
from sqlalchemy import create_engine, text

from crawler.leader import LeaderLock, lock_key
from crawler.migrations import upgrade
from crawler.store import Store


def test_one_leader_at_a_time_and_release_hands_over(pg_url: str) -> None:
    first, second = LeaderLock(pg_url), LeaderLock(pg_url)
    try:
        assert first.try_acquire()
        assert first.check()
        assert not second.try_acquire()
        assert not second.held
        assert first.try_acquire()  # asking again while leading confirms the lock, it does not stack it
        first.release()
        assert not first.held
        assert second.try_acquire()
        assert not first.try_acquire()
    finally:
        first.close()
        second.close()


def test_a_killed_leaders_lock_is_free_at_once(pg_url: str) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from crawler.leader import LeaderLock; "
            f"lock = LeaderLock({pg_url!r}); assert lock.try_acquire(); print('held', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    standby = LeaderLock(pg_url)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert not standby.try_acquire()
        holder.kill()
        holder.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not standby.try_acquire() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert standby.held
    finally:
        holder.kill()
        standby.close()


def test_a_leader_whose_session_is_ended_stops_leading(pg_url: str) -> None:
    lock, other = LeaderLock(pg_url), LeaderLock(pg_url)
    engine = create_engine(pg_url)
    try:
        assert lock.try_acquire()
        # The server ends the leader's session (a network cut, an administrator): the lock goes with it.
        with engine.connect() as conn:
            ended = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND objid::text::bigint = (CAST(:k AS bigint) & 4294967295)"
                ),
                {"k": lock_key()},
            ).all()
        assert ended == [(True,)]
        assert other.try_acquire()
        assert not lock.check()
        assert not lock.held
    finally:
        lock.close()
        other.close()
        engine.dispose()


def test_a_digest_day_is_claimed_once(pg_url: str, tmp_path: Path) -> None:
    setup = Store(pg_url, ready=False)
    upgrade(setup.engine)
    setup.close()
    a, b = Store(pg_url), Store(pg_url)
    try:
        assert a.claim_digest("2026-11-20", "a")
        assert not b.claim_digest("2026-11-20", "b")  # a is writing it
        a.digest_written("2026-11-20", "a")
        assert not b.claim_digest("2026-11-20", "b")
        assert b.digest_rows()["2026-11-20"][0] == "a"
        # A writer that died unwritten: its claim is taken over once stale, never while fresh.
        assert a.claim_digest("2026-11-21", "a")
        assert not b.claim_digest("2026-11-21", "b")
        assert b.claim_digest("2026-11-21", "b", stale=__import__("datetime").timedelta(0))
        b.digest_written("2026-11-21", "b")
        assert b.digest_rows()["2026-11-21"][0] == "b"
        # A failed writing gives the day back at once.
        assert a.claim_digest("2026-11-22", "a")
        a.release_digest("2026-11-22", "a")
        assert b.claim_digest("2026-11-22", "b")
    finally:
        a.close()
        b.close()
