"""The Redis poll queue (crawler/workqueue.py) against a real, throwaway redis-server (tests/redis_server.py).

Consumers are separate PollQueue objects with their own connections, as separate workers would be; the dead
worker is a real process that takes a request and exits without acknowledging it.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import ROOT
from redis_server import redis_prefix_fixture, redis_server_fixture, redis_url_fixture  # noqa: F401

# The client is an optional dependency until the queue is wired in: without it these tests skip.
pytest.importorskip("redis", reason="the redis client is not installed: pip install 'redis>=5'")

from crawler.workqueue import PollQueue, Request

DUE = "2026-01-02T03:04:05+00:00"


@pytest.fixture
def queues() -> Iterator[list[PollQueue]]:
    """The queues a test made (with _make), closed after it."""
    made: list[PollQueue] = []
    yield made
    for queue in made:
        queue.close()


def _make(
    queues: list[PollQueue], url: str, prefix: str, consumer: str, claim_idle: float = 60.0
) -> PollQueue:
    queue = PollQueue(url, stream=f"{prefix}polls", consumer=consumer, claim_idle=claim_idle)
    queue.ensure_group()
    queues.append(queue)
    return queue


def test_put_take_ack_round_trip(queues: list[PollQueue], redis_url: str, redis_prefix: str) -> None:
    queue = _make(queues, redis_url, redis_prefix, "w1")
    queue.ensure_group()  # a second call (another role starting) is harmless
    request_id = queue.put("alpha", DUE)
    assert request_id is not None
    assert queue.waiting() == 1 and queue.pending() == 0
    [request] = queue.take(block_ms=100)
    assert request == Request(id=request_id, source="alpha", due=DUE, claimed=False)
    assert queue.pending() == 1
    assert queue.ack(request) is True
    assert queue.ack(request) is False  # a second ack (a redelivered copy) changes nothing
    assert queue.pending() == 0 and queue.waiting() == 0
    assert queue.take(block_ms=50) == []


def test_put_dedupes_a_source_until_its_request_is_acknowledged(
    queues: list[PollQueue], redis_url: str, redis_prefix: str
) -> None:
    queue = _make(queues, redis_url, redis_prefix, "w1")
    first = queue.put("alpha", DUE)
    assert first is not None
    assert queue.put("alpha", "2026-01-02T04:04:05+00:00") is None  # still waiting: not queued again
    assert queue.put("beta", DUE) is not None  # other sources are not affected
    taken = {r.source: r for r in queue.take(block_ms=100, count=10)}
    assert set(taken) == {"alpha", "beta"}
    assert queue.put("alpha", DUE) is None  # running counts as waiting: the running poll covers it
    queue.ack(taken["alpha"])
    again = queue.put("alpha", DUE)
    assert again is not None and again != first
    assert queue.waiting() == 2  # the new alpha request and the unacknowledged beta one


def test_two_consumers_share_the_requests_without_duplicates(
    queues: list[PollQueue], redis_url: str, redis_prefix: str
) -> None:
    producer = _make(queues, redis_url, redis_prefix, "scheduler")
    workers = [_make(queues, redis_url, redis_prefix, f"w{i}") for i in (1, 2)]
    sources = [f"source-{n:02d}" for n in range(40)]
    for name in sources:
        assert producer.put(name, DUE) is not None
    seen: dict[str, list[str]] = {"w1": [], "w2": []}

    def work(queue: PollQueue) -> None:
        deadline = time.monotonic() + 10  # bounded: the test never hangs on a lost request
        while time.monotonic() < deadline:
            batch = queue.take(block_ms=100, count=3)
            if not batch:
                return
            for request in batch:
                seen[queue.consumer].append(request.source)
                time.sleep(0.002)  # some work, so both workers get a share
                assert queue.ack(request)

    threads = [threading.Thread(target=work, args=(q,)) for q in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=15)
    every = seen["w1"] + seen["w2"]
    assert sorted(every) == sources  # each exactly once
    assert seen["w1"] and seen["w2"]  # and both took part
    assert producer.pending() == 0 and producer.waiting() == 0


DEAD_WORKER = """
import os, sys
from crawler.workqueue import PollQueue
queue = PollQueue(sys.argv[1], stream=sys.argv[2], consumer="doomed")
queue.ensure_group()
taken = queue.take(block_ms=2000)
print(",".join(r.id for r in taken), flush=True)
os._exit(0)  # dies holding the request: no ack
"""


def test_a_request_a_dead_worker_took_is_claimed_after_claim_idle(
    queues: list[PollQueue], redis_url: str, redis_prefix: str
) -> None:
    producer = _make(queues, redis_url, redis_prefix, "scheduler")
    request_id = producer.put("alpha", DUE)
    done = subprocess.run(
        [sys.executable, "-c", DEAD_WORKER, redis_url, f"{redis_prefix}polls"],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == request_id  # the dead worker had it
    assert producer.pending() == 1

    survivor = _make(queues, redis_url, redis_prefix, "survivor", claim_idle=0.5)
    taken_at = time.monotonic()
    deadline = taken_at + 5
    claimed: list[Request] = []
    while not claimed and time.monotonic() < deadline:
        claimed = survivor.take(block_ms=100)
    assert [r.id for r in claimed] == [request_id]
    assert claimed[0].claimed and claimed[0].source == "alpha"
    assert survivor.ack(claimed[0])
    assert survivor.pending() == 0 and survivor.waiting() == 0
    assert survivor.put("alpha", DUE) is not None  # the ack cleared the source's marker


def test_a_request_is_not_claimed_before_claim_idle(
    queues: list[PollQueue], redis_url: str, redis_prefix: str
) -> None:
    first = _make(queues, redis_url, redis_prefix, "w1")
    second = _make(queues, redis_url, redis_prefix, "w2", claim_idle=30.0)
    first.put("alpha", DUE)
    assert len(first.take(block_ms=100)) == 1
    assert second.take(block_ms=100) == []  # still w1's: it may be working on it
    assert second.pending() == 1


def test_pending_is_zero_before_the_group_exists(redis_url: str, redis_prefix: str) -> None:
    queue = PollQueue(redis_url, stream=f"{redis_prefix}nothing")
    try:
        assert queue.pending() == 0
    finally:
        queue.close()


def test_done_reports_the_outcome_and_acknowledges_together(
    queues: list[PollQueue], redis_url: str, redis_prefix: str
) -> None:
    worker = _make(queues, redis_url, redis_prefix, "w1")
    follower = _make(queues, redis_url, redis_prefix, "scheduler")
    start = follower.last_outcome()
    assert start == "0-0"
    worker.put("alpha", DUE)
    [request] = worker.take(block_ms=100)
    assert worker.done(request, "2026-01-02T05:00:00+00:00") is True
    assert worker.done(request, "2026-01-02T05:00:00+00:00") is False  # already acknowledged
    assert worker.pending() == 0 and worker.waiting() == 0
    assert worker.put("alpha", DUE) is not None  # its dedupe marker went with the ack
    outcomes = follower.outcomes(start, block_ms=100)
    # One report: a second done (a stale copy of a request another worker finished) must not overrule it.
    assert [(o.source, o.next_poll, o.disabled) for o in outcomes] == [
        ("alpha", "2026-01-02T05:00:00+00:00", ""),
    ]
    assert follower.last_outcome() == outcomes[-1].id
    assert follower.outcomes(outcomes[-1].id, block_ms=50) == []


def test_touch_keeps_a_long_poll_from_being_claimed(
    queues: list[PollQueue], redis_url: str, redis_prefix: str
) -> None:
    slow = _make(queues, redis_url, redis_prefix, "slow", claim_idle=0.3)
    other = _make(queues, redis_url, redis_prefix, "other", claim_idle=0.3)
    slow.put("alpha", DUE)
    [request] = slow.take(block_ms=100)
    for _ in range(4):  # 0.6 s in all, twice the claim timeout, touched every 0.15 s
        time.sleep(0.15)
        assert slow.touch(request) is True
        assert other.take(block_ms=1) == []
    time.sleep(0.4)  # no touch for longer than the timeout: presumed dead
    [claimed] = other.take(block_ms=1)
    assert claimed.id == request.id and claimed.claimed and claimed.deliveries == 2
    assert slow.touch(request) is False  # it has a new owner now, and keeps it
    assert other.touch(claimed) is True
