"""`crawler run --role worker`: take poll requests from the queue, poll, extract and file, until stopped.

Any number of workers, on any machine, share the queue's consumer group, the PostgreSQL index and the archive
folder (shared storage). A worker polls up to `worker_polls` sources at once, each exactly as the embedded
service does (crawler.pipeline.poll_source), its downloads spaced per host across all workers by the Redis
host limiter. When a poll ends, the worker reports when the source is due next and acknowledges the request
in one step; the leading scheduler reschedules from that report.

A request stays pending from take to done: if this worker dies, another claims it after `queue_claim_after`
(nothing is lost), and while a poll runs long the worker touches its request so it is not taken for dead. A
poll that crashes is reported as failed and acknowledged (it is retried at its next poll, not at once); a
request that came back `max_deliveries` times (it killed every worker that took it) is dropped with an error.
On SIGTERM the worker stops taking requests, lets the polls in flight finish (bounded) and leaves the ones it
could not finish pending, to be claimed by another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from crawler import runtime
from crawler.config import Config, ConfigError, load_config
from crawler.hostlimit import HostLimiter
from crawler.metrics import METRICS
from crawler.observe import Health, HttpError, HttpHandle, start_http
from crawler.pipeline import PollReport, poll_source
from crawler.reload import diff_configs, effective_config, watch_config
from crawler.resources import Resources, ShuttingDown, open_resources, recover
from crawler.roles import poll_queue, sleep_unless
from crawler.topics import compile_topics
from crawler.workqueue import PollQueue, Request

log = logging.getLogger(__name__)

DRAIN_SECONDS = 4.0  # as the embedded service: polls in flight get this long after SIGTERM
# Requests taken per round trip: a few, so that when many fall due at once the workers share them out rather
# than the first to ask taking all its free slots' worth while the others wait.
TAKE_AT_ONCE = 2
TAKE_BLOCK_MS = 1000  # how long one take waits for a request; also how soon a stop is noticed
FULL_WAIT = 0.05  # seconds between looks at the polls in flight when all `worker_polls` slots are busy
RETRY_SECONDS = 5.0  # after the queue could not be reached
# /healthz says unhealthy when the worker has not heard from the queue for this long (Redis unreachable).
QUEUE_SILENCE = 30.0


class Worker:
    def __init__(self, res: Resources, queue: PollQueue, config_path: Path, opened_at: float | None = None):
        self.res = res
        self.queue = queue
        self.config_path = config_path
        self.in_flight: set[asyncio.Task[Any]] = set()
        self.polled = 0
        self.last_contact = time.time()  # the last successful take (for /healthz)
        self._reload_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        claim_after = res.config.settings.queue_claim_after.total_seconds()
        self.touch_every = max(claim_after / 3, 0.05)
        self.sweep_every = max(claim_after, 1.0)
        # Files modified before this were looked at: open_resources, which began at `opened_at`, recovered
        # everything settled then (older than claim_after); the first sweep starts there, less a second.
        self._horizon: float | None = (opened_at or time.time()) - claim_after - 1.0

    async def run(self, stop: asyncio.Event) -> None:
        limit = self.res.config.settings.worker_polls
        last_sweep = time.monotonic()
        while not stop.is_set():
            free = limit - len(self.in_flight)
            if free <= 0:
                await sleep_unless(stop, FULL_WAIT)
                continue
            try:
                taken = await asyncio.to_thread(self.queue.take, TAKE_BLOCK_MS, min(free, TAKE_AT_ONCE))
                self.last_contact = time.time()
            except RedisError as error:
                if "NOGROUP" in str(error) or "no longer exists" in str(error):
                    # Redis came back without its data (no persistence): make the stream and group again.
                    log.warning("queue: the work queue was lost (Redis restarted empty?); recreating it")
                    with contextlib.suppress(RedisError):
                        await asyncio.to_thread(self.queue.ensure_group)
                    continue
                log.error("queue unreachable: %s; trying again in %g s", error, RETRY_SECONDS)
                await sleep_unless(stop, RETRY_SECONDS)
                continue
            for request in taken:  # even when a stop came meanwhile: they are ours until done or claimed
                task = asyncio.get_running_loop().create_task(self.handle(request))
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)
            if time.monotonic() - last_sweep > self.sweep_every:
                last_sweep = time.monotonic()
                await self._sweep()

    async def handle(self, request: Request) -> None:
        name = request.source
        if request.deliveries > self.queue.max_deliveries:
            log.error(
                "%s: poll request %s dropped: handed out %d times and never finished (it may crash workers)",
                name,
                request.id,
                request.deliveries,
            )
            await self._finish(request, "", "")
            return
        source = next((s for s in self.res.config.sources if s.name == name and s.enabled), None)
        if source is None:
            log.warning("%s: poll request for a source not enabled in this worker's config; dropped", name)
            await self._finish(request, "", "")
            return
        if request.claimed:
            log.info("%s: took over a poll request a worker left unfinished", name)
        keeper = asyncio.get_running_loop().create_task(self._keep(request))
        try:
            report = await poll_source(self.res, source)
        except (ShuttingDown, asyncio.CancelledError):
            log.info("%s: poll interrupted by shutdown; left to another worker", name)
            return  # not acknowledged: claimed by another worker after queue_claim_after
        except Exception as exc:  # one source's bug must not stop the others
            log.exception("%s: poll crashed", name)
            report = PollReport(name, error=f"internal error: {exc}")
        finally:
            keeper.cancel()
        self.polled += 1
        METRICS.poll_done(report)
        when = "" if report.disabled or report.next_poll is None else report.next_poll.isoformat()
        await self._finish(request, when, report.disabled or "")

    async def _finish(self, request: Request, when: str, disabled: str) -> None:
        """Report the outcome and acknowledge the request; a failure here is logged, never raised."""
        name = request.source
        try:
            await asyncio.to_thread(self.queue.done, request, when, disabled)
        except RedisError as error:
            if "NOGROUP" in str(error):  # the queue was lost with Redis's data: nothing left to acknowledge
                log.warning("%s: poll done; the queue it came from is gone (Redis restarted empty?)", name)
                return
            # The poll's work is filed; the request will be claimed and polled again, which files nothing.
            log.error("%s: could not acknowledge its poll request: %s", name, error)

    async def _keep(self, request: Request) -> None:
        while True:
            await asyncio.sleep(self.touch_every)
            try:
                if not await asyncio.to_thread(self.queue.touch, request):
                    log.warning(
                        "%s: poll request taken over by another worker (this poll was slow)", request.source
                    )
                    return
            except RedisError as error:
                log.warning("%s: could not renew the poll request: %s", request.source, error)

    async def _sweep(self) -> None:
        """Recover what dead workers left: items on disk the index lacks, and their key claims.

        Only files and claims older than queue_claim_after count (newer ones may be a live worker's filing
        under way), and only files newer than the last sweep's horizon are looked at again.
        """
        claim_after = self.res.config.settings.queue_claim_after
        since = self._horizon
        self._horizon = time.time() - claim_after.total_seconds() - 1.0  # 1 s overlap with the next sweep
        try:
            await self.res.write(recover, self.res.store, self.res.data_dir, 2, claim_after, since)
        except Exception as error:  # the index briefly unreachable: the next sweep tries again
            log.warning("could not recover what other workers left: %s", error)
            self._horizon = since

    def request_reload(self) -> None:
        """Reload soon (SIGHUP); reloads run one at a time."""
        task = asyncio.get_running_loop().create_task(self.reload())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def reload(self) -> None:
        """Config edits: sources and topics apply to the next polls; settings that need a restart wait."""
        async with self._reload_lock:
            await self._reload()

    async def _reload(self) -> None:
        try:
            new = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as exc:
            for line in exc.problems:
                log.error("%s", line)
            log.error(
                "config not reloaded: %d problem(s); still running on the previous config", len(exc.problems)
            )
            return
        changes = diff_configs(self.res.config, new)
        if not changes:
            return
        config = effective_config(self.res.config, new)
        if changes.topics:
            self.res.matcher = compile_topics(config.topics)
        self.res.config = config
        log.info("config reloaded: %s", changes.describe())

    async def drain(self, timeout: float) -> None:
        self.res.fetcher.closed = True
        tasks = list(self.in_flight)
        if not tasks:
            return
        log.info("stopping: letting %d poll(s) finish (up to %g s)", len(tasks), timeout)
        _done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2.0)


class WorkerProbe:
    """The worker as the monitoring endpoint (`http:` in crawler.yaml) serves it."""

    def __init__(self, worker: Worker, clock: Callable[[], float] = time.time):
        self.worker = worker
        self.clock = clock

    def health(self) -> Health:
        w = self.worker
        silent = self.clock() - w.last_contact
        details = {
            "role": "worker",
            "consumer": w.queue.consumer,
            "polls_in_flight": len(w.in_flight),
            "polls_done": w.polled,
            "queue_silent_s": round(silent, 1),
        }
        if silent > QUEUE_SILENCE:
            return Health(False, f"no answer from the queue for {silent:.0f} s", details)
        return Health(True, "taking poll requests", details)

    def sources(self) -> dict[str, Any]:
        from crawler.status import source_rows

        now = datetime.now(UTC)
        rows = source_rows(self.worker.res.config, self.worker.res.store, now)
        return {"time": now.isoformat(timespec="seconds"), "sources": rows}


async def _endpoint(worker: Worker) -> HttpHandle | None:
    """The monitoring endpoint when crawler.yaml has `http:`; several workers on one machine need port 0
    (any free port, logged) or their own config, and one that cannot listen carries on without it."""
    settings = worker.res.config.settings.http
    if settings is None:
        return None
    try:
        return await start_http(settings, WorkerProbe(worker))
    except HttpError as exc:
        log.error("%s: this worker runs without the endpoint", exc)
        return None


async def work(config: Config, config_path: Path) -> int:
    """Run a worker until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = runtime.stop_event()
    settings = config.settings
    url = settings.queue
    assert url is not None  # checked by role_problem
    queue = poll_queue(config)
    limiter = HostLimiter(url, per_host=settings.fetch.per_host, delay=settings.fetch.delay)
    began_stop = 0.0
    try:
        await asyncio.to_thread(queue.ensure_group)
        opened_at = time.time()
        async with open_resources(config, limiter) as res:
            worker = Worker(res, queue, config_path, opened_at)
            watch_stop = asyncio.Event()
            watcher = loop.create_task(watch_config(config.config_dir, worker.reload, watch_stop))
            loop.add_signal_handler(signal.SIGHUP, worker.request_reload)
            log.info(
                "worker %s started: polls from %s, data in %s", queue.consumer, queue.stream, res.data_dir
            )
            endpoint = await _endpoint(worker)
            METRICS.queue_length_from(lambda: float(res.fetcher.fetcher.waiting))
            try:
                await worker.run(stop)
                began_stop = time.monotonic()
                log.info("stopping: no new poll requests taken")
                await worker.drain(DRAIN_SECONDS)
            finally:
                loop.remove_signal_handler(signal.SIGHUP)
                signal.signal(signal.SIGHUP, signal.SIG_IGN)  # not the default (death) while closing
                watch_stop.set()
                await asyncio.wait([watcher], timeout=2.0)
                if endpoint is not None:
                    await endpoint.close()
                METRICS.queue_length_from(None)
            log.info("worker %s: %d poll(s) done", queue.consumer, worker.polled)
    finally:
        await limiter.close()
        queue.close()
    log.info("stopped (%.1f s after the stop signal)", time.monotonic() - began_stop if began_stop else 0.0)
    return 0
