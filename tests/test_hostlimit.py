"""The per-host limiter in Redis (crawler/hostlimit.py) against a real, throwaway redis-server.

Workers are separate processes (or limiters with connections of their own). Spacing and pauses are checked on
the start times the limiter granted, which are the Redis server's clock, so a loaded machine cannot make them
flaky; concurrency is checked on the intervals each worker recorded inside its slots, which lie within the
real holding times, so overlaps among them can only undercount, never invent, a breach.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys

import pytest
from conftest import ROOT
from redis_server import redis_prefix_fixture, redis_server_fixture, redis_url_fixture  # noqa: F401

# The client is an optional dependency until the queue is wired in: without it these tests skip.
pytest.importorskip("redis", reason="the redis client is not installed: pip install 'redis>=5'")

from crawler.hostlimit import HostLimiter

WORKER = """
import asyncio, json, sys, time
from crawler.hostlimit import HostLimiter

async def one(limiter, out):
    async with limiter.slot("news.example.org") as lease:
        start = time.time()
        await asyncio.sleep(float(sys.argv[5]))
        out.append({"granted": lease.started, "start": start, "end": time.time()})

async def main():
    per_host, delay = int(sys.argv[3]), float(sys.argv[4])
    limiter = HostLimiter(sys.argv[1], per_host=per_host, delay=delay, prefix=sys.argv[2])
    out = []
    # Several requests at once from this worker, so every worker competes for the host from the start.
    await asyncio.gather(*(one(limiter, out) for _ in range(int(sys.argv[6]))))
    await limiter.close()
    print(json.dumps(out))

asyncio.run(main())
"""


def _run_workers(
    url: str, prefix: str, workers: int, per_host: int, delay: float, hold: float, each: int
) -> list[dict[str, float]]:
    args = [url, prefix, str(per_host), str(delay), str(hold), str(each)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        for _ in range(workers)
    ]
    records: list[dict[str, float]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        records.extend(json.loads(out))
    return records


def _max_overlap(records: list[dict[str, float]]) -> int:
    events = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records])
    # At equal times an end sorts before a start (-1 < 1): touching intervals do not overlap.
    current = peak = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def test_per_host_and_delay_hold_across_three_processes(redis_url: str, redis_prefix: str) -> None:
    delay = 0.1
    records = _run_workers(redis_url, redis_prefix, workers=3, per_host=2, delay=delay, hold=0.25, each=4)
    assert len(records) == 12
    assert _max_overlap(records) == 2  # never more than per_host at once, and the limit was actually reached
    granted = sorted(r["granted"] for r in records)
    gaps = [b - a for a, b in itertools.pairwise(granted)]
    assert min(gaps) >= delay * 1000  # server times in ms: exact, whatever the load on this machine


def test_pause_holds_off_every_worker_until_it_ends(redis_url: str, redis_prefix: str) -> None:
    async def scenario() -> tuple[int, list[int], int]:
        limiters = [HostLimiter(redis_url, per_host=4, delay=0, prefix=redis_prefix) for _ in range(3)]
        try:
            until = await limiters[0].pause("Slow.example.org", 0.6)
            # A shorter Retry-After seen later by another worker does not cut the pause short.
            assert await limiters[1].pause("slow.example.org", 0.1) == until
            other = await limiters[2].acquire("other.example.org")  # other hosts are not paused
            leases = await asyncio.wait_for(
                asyncio.gather(*(limiter.acquire("slow.example.org") for limiter in limiters)), timeout=10
            )
            for lease in [*leases, other]:
                await limiters[0].release(lease)
            return until, [lease.started for lease in leases], other.started
        finally:
            for limiter in limiters:
                await limiter.close()

    until, starts, other = asyncio.run(scenario())
    assert all(start >= until for start in starts)
    assert other < until


HOLDER = """
import asyncio, sys, time
from crawler.hostlimit import HostLimiter

async def main():
    limiter = HostLimiter(sys.argv[1], per_host=1, delay=0, prefix=sys.argv[2], lease=float(sys.argv[3]))
    async with limiter.slot("news.example.org") as lease:
        print(lease.started, flush=True)
        await asyncio.sleep(60)  # killed here, holding the slot

asyncio.run(main())
"""


def test_a_dead_holders_lease_expires(redis_url: str, redis_prefix: str) -> None:
    lease_seconds = 0.5
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, redis_url, redis_prefix, str(lease_seconds)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        held_since = int(holder.stdout.readline())
    finally:
        holder.kill()
        holder.wait(timeout=10)

    async def next_start() -> int:
        limiter = HostLimiter(redis_url, per_host=1, delay=0, prefix=redis_prefix)
        try:
            lease = await asyncio.wait_for(limiter.acquire("news.example.org"), timeout=10)
            await limiter.release(lease)
            return lease.started
        finally:
            await limiter.close()

    # The holder renewed every lease/3 while alive; dead, its last renewal lapses within one lease.
    assert asyncio.run(next_start()) >= held_since + lease_seconds * 1000


def test_a_live_holder_keeps_its_slot_past_the_lease(redis_url: str, redis_prefix: str) -> None:
    async def scenario() -> tuple[int, int, int]:
        holder = HostLimiter(redis_url, per_host=1, delay=0, prefix=redis_prefix, lease=0.3)
        waiter = HostLimiter(redis_url, per_host=1, delay=0, prefix=redis_prefix, lease=0.3)
        try:
            async with holder.slot("news.example.org") as held:
                waiting = asyncio.create_task(waiter.acquire("news.example.org"))
                await asyncio.sleep(1.0)  # over three leases long: only renewal keeps the slot
                assert not waiting.done()
                seconds, micros = await holder._redis.time()
                released = seconds * 1000 + micros // 1000  # server time just before the release
            lease = await asyncio.wait_for(waiting, timeout=10)
            await waiter.release(lease)
            return held.started, released, lease.started
        finally:
            await holder.close()
            await waiter.close()

    _, released, next_started = asyncio.run(scenario())
    assert next_started >= released


def test_per_host_must_be_positive(redis_url: str) -> None:
    with pytest.raises(ValueError, match="per_host"):
        HostLimiter(redis_url, per_host=0)


def test_many_more_waiters_than_connections_all_get_their_turn(redis_url: str, redis_prefix: str) -> None:
    """A worker with hundreds of downloads waiting on one host: they queue for a connection, none fails."""
    from crawler.hostlimit import MAX_CONNECTIONS

    async def scenario() -> tuple[int, int]:
        limiter = HostLimiter(redis_url, per_host=2, delay=0, prefix=redis_prefix)
        busy = 0
        most = 0

        async def one() -> None:
            nonlocal busy, most
            async with limiter.slot("busy.example.org"):
                busy += 1
                most = max(most, busy)
                await asyncio.sleep(0.001)
                busy -= 1

        try:
            waiters = MAX_CONNECTIONS * 5
            await asyncio.wait_for(asyncio.gather(*(one() for _ in range(waiters))), timeout=60)
            return waiters, most
        finally:
            await limiter.close()

    waiters, most = asyncio.run(scenario())
    assert waiters > 100  # more than redis-py's default pool would have allowed
    assert most == 2
