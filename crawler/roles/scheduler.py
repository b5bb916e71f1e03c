"""`crawler run --role scheduler`: one leader schedules every poll and the digest; the others stand by.

Every scheduler node tries the PostgreSQL advisory lock (crawler.leader). The one holding it leads: it
installs a job per source from the config and each source's next poll saved in the index (so a new leader
carries on where the last one stopped, with backoffs and server hints), and its jobs put poll requests on the
queue instead of polling. Workers report each poll's outcome on the queue; the leader follows that stream and
moves the source's job to the next poll the worker computed, or removes it (410 Gone). The leader writes the
daily digest, and the digests the service missed, each claimed in the index first so it is written once.

A standby tries the lock every few seconds and takes over when the leader's session ends (it died, or was
stopped); a leader that cannot confirm its lock stops leading at once and stands by again. The job store is
in memory: everything a job holds is in the config and the index, and rebuilding it from them at takeover is
what makes any node able to lead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from crawler import runtime
from crawler.config import Config, ConfigError, load_config
from crawler.digest import DigestTemplateError, missed_days, write_digest_once, yesterday
from crawler.leader import DEFAULT_RETRY, LeaderLock
from crawler.observe import HttpError, HttpHandle, start_http
from crawler.reload import watch_config
from crawler.resources import open_store
from crawler.roles import poll_queue, sleep_unless
from crawler.roles.status import NodeStatus, SchedulerProbe, node_metrics
from crawler.schedule import poll_job_id, reschedule
from crawler.service import Scheduling
from crawler.store import Store
from crawler.workqueue import Outcome, PollQueue, default_consumer

log = logging.getLogger(__name__)

OUTCOME_BLOCK_MS = 1000


class Dispatcher(Scheduling):
    """The leader's work while it leads: jobs put poll requests; outcomes move the jobs; digests."""

    def __init__(
        self,
        config: Config,
        store: Store,
        queue: PollQueue,
        scheduler: AsyncIOScheduler,
        config_path: Path,
        owner: str,
    ):
        super().__init__(scheduler, config_path)
        self._config = config
        self._store = store
        self.queue = queue
        self.owner = owner
        self.put = 0  # requests queued while leading (for the log)
        self.poll_job = self.poll
        self.digest_job = self.digest

    @property
    def config(self) -> Config:
        return self._config

    @property
    def store(self) -> Store:
        return self._store

    def adopt(self, config: Config, topics_changed: bool) -> None:
        self._config = config  # workers reload the topics themselves

    async def poll(self, name: str) -> None:
        """A source fell due: queue a request (a no-op while one for it waits or runs)."""
        if self.stopping:
            return
        due = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            request_id = await asyncio.to_thread(self.queue.put, name, due)
        except RedisError as error:
            # The job fires again at its next interval; the source is polled late, not lost.
            log.error("%s: could not queue its poll: %s", name, error)
            return
        if request_id is None:
            log.info("%s: a poll request for it is still waiting or running; not queued again", name)
        else:
            self.put += 1

    def apply_outcome(self, outcome: Outcome) -> None:
        if outcome.source not in {s.name for s in self.config.sources}:
            return
        if outcome.disabled:
            log.error("%s: %s", outcome.source, outcome.disabled)
            reschedule(self.scheduler, self.config, outcome.source, None)
        elif outcome.next_poll:
            when = datetime.fromisoformat(outcome.next_poll)
            reschedule(self.scheduler, self.config, outcome.source, when)

    async def follow(self, after: str, stop: asyncio.Event) -> None:
        """Apply the workers' outcomes, from the id `after` on, until stop."""
        while not stop.is_set():
            try:
                found = await asyncio.to_thread(self.queue.outcomes, after, OUTCOME_BLOCK_MS)
            except RedisError as error:
                log.error("queue unreachable: %s; trying again in %g s", error, DEFAULT_RETRY)
                await sleep_unless(stop, DEFAULT_RETRY)
                continue
            for outcome in found:
                after = outcome.id
                if self.scheduler.get_job(poll_job_id(outcome.source)) is None:
                    continue
                try:
                    self.apply_outcome(outcome)
                except Exception:  # one bad report must not stop the following ones
                    log.exception("%s: could not apply a poll's outcome %r", outcome.source, outcome)

    async def digest(self) -> None:
        day = yesterday(datetime.now(self.config.tz))
        await self._write(day)
        await self.write_missed_digests()

    async def write_missed_digests(self) -> None:
        today = datetime.now(self.config.tz).date()
        days = await asyncio.to_thread(missed_days, self.store, self.config.data_dir, today)
        for day in days:
            log.info("writing the missed digest for %s", day)
            if not await self._write(day):
                return

    async def _write(self, day: str) -> bool:
        """Write day's digest if this node wins its claim; False when the rest should wait (a broken template,
        the index or the folder failing: the day stays unwritten and is tried again at the next digest)."""
        try:
            await asyncio.to_thread(write_digest_once, self.store, self.config, day, self.owner)
        except DigestTemplateError as exc:
            log.error("digest for %s: HTML not written: %s", day, exc)
            return False
        except Exception:
            log.exception("digest for %s: not written", day)
            return False
        return True


@dataclass
class _Node:
    """What a scheduler node keeps across leading and standing by."""

    owner: str
    queue: PollQueue
    leader: LeaderLock
    status: NodeStatus
    leading: list[Dispatcher] = field(default_factory=list)  # the dispatcher while this node leads

    async def observe(self) -> None:
        """Refresh the status the endpoint serves (the queue's depth, the database's last answer)."""
        status = self.status
        status.database_answered = self.leader.last_answer
        status.leading = bool(self.leading)
        if self.leading:
            dispatcher = self.leading[0]
            status.config = dispatcher.config
            jobs = [j for j in dispatcher.scheduler.get_jobs() if j.id.startswith(poll_job_id(""))]
            status.scheduled = len(jobs)
            times = [j.next_run_time.timestamp() for j in jobs if j.next_run_time is not None]
            status.next_due = min(times) if times else None
        with contextlib.suppress(RedisError):
            status.waiting, status.pending = await asyncio.to_thread(_depth, self.queue)


def _depth(queue: PollQueue) -> tuple[int, int]:
    return queue.waiting(), queue.pending()


async def schedule(config: Config, config_path: Path) -> int:
    """Run a scheduler node (leader or standby) until SIGTERM or SIGINT."""
    assert config.settings.queue is not None and config.settings.database is not None
    loop = asyncio.get_running_loop()
    stop = runtime.stop_event()
    owner = default_consumer()
    queue = poll_queue(config)
    leader = LeaderLock(config.settings.database)
    store = open_store(config)
    node = _Node(owner, queue, leader, NodeStatus(owner, config, store))
    # One SIGHUP handler for the node's whole life (removing it would restore the default: death): while
    # leading it reloads the config; a standby reads the config afresh when it takes over anyway.
    loop.add_signal_handler(signal.SIGHUP, lambda: _reload(node.leading))
    endpoint = await _endpoint(config, node.status)
    try:
        await asyncio.to_thread(queue.ensure_group)
        log.info("scheduler %s: standing by (another node leads, or none yet)", owner)
        while not stop.is_set():
            got = await asyncio.to_thread(leader.try_acquire)
            await node.observe()
            if not got:
                await sleep_unless(stop, DEFAULT_RETRY)
                continue
            config = await asyncio.to_thread(_fresh, config, config_path)
            log.info("scheduler %s: leading", owner)
            await _lead(config, config_path, store, node, stop)
            await asyncio.to_thread(leader.release)
            await node.observe()
            if not stop.is_set():
                log.info("scheduler %s: standing by", owner)
    finally:
        if endpoint is not None:
            await endpoint.close()
        await asyncio.to_thread(leader.close)
        queue.close()
        store.close()
        loop.remove_signal_handler(signal.SIGHUP)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the process exits
    log.info("scheduler %s: stopped", owner)
    return 0


async def _endpoint(config: Config, status: NodeStatus) -> HttpHandle | None:
    """The monitoring endpoint when crawler.yaml has `http:`; a node that cannot listen runs without it."""
    if config.settings.http is None:
        return None
    try:
        return await start_http(config.settings.http, SchedulerProbe(status), node_metrics(status))
    except HttpError as exc:
        log.error("%s: this scheduler runs without the endpoint", exc)
        return None


async def _lead(config: Config, config_path: Path, store: Store, node: _Node, stop: asyncio.Event) -> None:
    """Lead until stop, or until the lock cannot be confirmed. A database or Redis failure while taking over
    ends the lead (the caller unlocks, and this node or another tries again): it never ends the process."""
    loop = asyncio.get_running_loop()
    queue, owner = node.queue, node.owner
    scheduler = AsyncIOScheduler(event_loop=loop, timezone=config.tz)  # in memory: rebuilt at each takeover
    scheduler.start(paused=True)
    dispatcher = Dispatcher(config, store, queue, scheduler, config_path, owner)
    done_leading = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    node.leading.append(dispatcher)
    try:
        try:
            # The outcomes from here on are applied on top of the next polls read from the index just after.
            after = await asyncio.to_thread(queue.last_outcome)
            dispatcher.install_schedule()  # on the loop: APScheduler calls; one read of the index
        except (RedisError, DBAPIError) as error:
            log.error("scheduler %s: could not take over (%s); standing down", owner, _first_line(error))
            await sleep_unless(stop, DEFAULT_RETRY)
            return
        tasks.append(loop.create_task(dispatcher.follow(after, done_leading)))
        tasks.append(loop.create_task(watch_config(config.config_dir, dispatcher.reload, done_leading)))
        scheduler.resume()
        enabled = sum(1 for s in config.sources if s.enabled)
        log.info("scheduler %s: %d source(s) scheduled", owner, enabled)
        # Missed digests after the schedule runs: a day that cannot be written must not stop the polls.
        tasks.append(loop.create_task(dispatcher.write_missed_digests()))
        while not stop.is_set():
            await node.observe()
            await sleep_unless(stop, DEFAULT_RETRY)
            if tasks[0].done():  # the outcome follower died: a bug; lead again from a clean state
                log.error("scheduler %s: the outcome follower stopped; standing down to start afresh", owner)
                break
            if not stop.is_set() and not await asyncio.to_thread(node.leader.check):
                log.error("scheduler %s: could not confirm the leader lock; standing down", owner)
                break
    finally:
        dispatcher.stopping = True
        done_leading.set()
        node.leading.clear()
        scheduler.shutdown(wait=False)
        if tasks:
            _done, running = await asyncio.wait(tasks, timeout=OUTCOME_BLOCK_MS / 1000 + 2)
            for task in running:
                task.cancel()
            await asyncio.wait(tasks, timeout=2)
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    log.error("scheduler %s: %s", owner, task.exception())
        log.info("scheduler %s: %d poll request(s) queued while leading", owner, dispatcher.put)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _reload(leading: list[Dispatcher]) -> None:
    if leading:
        leading[0].request_reload()
    else:
        log.info("SIGHUP: standing by; the config is read afresh when this node takes over")


def _fresh(config: Config, config_path: Path) -> Config:
    """The config as it is on disk now (a standby may have waited for days), else the one it started with."""
    try:
        return load_config(config_path)
    except ConfigError as exc:
        for line in exc.problems:
            log.error("%s", line)
        log.error("config unreadable: leading on the config this node started with")
        return config
