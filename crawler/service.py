"""The service: one event loop running the scheduler, the spider and the pool, until SIGTERM or Ctrl-C.

Start: open the resources (the index is reconciled with the archive after a crash), write missed digests,
install the jobs in the persistent job store, watch the config folder. Run: jobs poll sources; a config
edit is applied without a restart (or, if invalid, reported and ignored). Stop, in order: pause the
scheduler, let polls in flight finish (bounded; an article being filed is always finished), stop the extras
(the HTTP endpoint), stop the spider, the writer, the worker processes, and close the index last.

Also the one-shot poll used by `crawler poll` and the demo, which share everything but the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from crawler import runtime
from crawler.config import Config, ConfigError, load_config
from crawler.digest import DigestTemplateError, missed_days, write_digest_for, yesterday
from crawler.pipeline import PollReport, poll_source
from crawler.reload import ConfigChanges, diff_configs, effective_config, watch_config
from crawler.resources import Resources, ShuttingDown, open_resources
from crawler.schedule import (
    DigestFunc,
    PollFunc,
    install_jobs,
    poll_job_id,
    reschedule,
    start_scheduler,
    sync_jobs,
)
from crawler.store import Store
from crawler.topics import compile_topics

log = logging.getLogger(__name__)

# SIGTERM must stop the service within 10 s: polls in flight get this long to finish, then they are
# cancelled (an article already handed to the writer is still filed completely), and the downloader, the
# writer and the pool are closed in order.
DRAIN_SECONDS = 4.0

# The jobs in the persistent store name these module-level functions, never closures: the next process
# must be able to load them.
POLL_JOB = "crawler.service:run_poll_job"
DIGEST_JOB = "crawler.service:run_digest_job"

# Something to run beside the service for its lifetime (the HTTP endpoint of crawler.observe, say): entered
# once the scheduler runs, exited after polls in flight have drained, before the resources close.
Extra = Callable[["Service"], AbstractAsyncContextManager[Any]]

_current: Service | None = None


def current_service() -> Service | None:
    """The service running in this process, if any (what the jobs of the persistent store call into)."""
    return _current


async def run_poll_job(name: str) -> None:
    """The poll job of the job store: poll one source on the running service."""
    service = _current
    if service is None:
        log.warning("%s: poll job ran with no service running; ignored", name)
        return
    await service.poll(name)


async def run_digest_job() -> None:
    service = _current
    if service is None:
        log.warning("digest job ran with no service running; ignored")
        return
    await service.digest()


class Scheduling:
    """What every scheduler keeps: its jobs from the config, and config reloads applied to them.

    The embedded Service runs its poll jobs itself; the scheduler role (crawler.roles.scheduler) puts them
    on the work queue. Subclasses say where the config and the index are, which functions the jobs call,
    and how a new config is adopted.
    """

    poll_job: PollFunc = POLL_JOB
    digest_job: DigestFunc = DIGEST_JOB

    def __init__(self, scheduler: AsyncIOScheduler, config_path: Path):
        self.scheduler = scheduler
        self.config_path = config_path  # as the user gave it, so reload errors read like `crawler check`
        self.stopping = False
        self._generation: dict[str, int] = {}  # bumped when a reload replaces a source's job
        self._reload_lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def config(self) -> Config:
        raise NotImplementedError

    @property
    def store(self) -> Store:
        raise NotImplementedError

    def adopt(self, config: Config, topics_changed: bool) -> None:
        """Run on `config` from now on (a reload that is valid)."""
        raise NotImplementedError

    def install_schedule(self) -> None:
        """At start: every job from the config, first runs from the saved next polls; stale jobs removed."""
        config = self.config
        now = datetime.now(config.tz)
        due, gone = self._due(config, now)
        for name in sorted(gone):
            log.warning("%s: not polled: %s", name, self.store.source_states()[name]["disabled"])
        stale = sync_jobs(self.scheduler, config, self.poll_job, self.digest_job, due, now, skip=gone)
        if stale:
            log.info("schedule: removed job(s) no longer configured: %s", ", ".join(sorted(stale)))

    def _due(self, config: Config, now: datetime) -> tuple[dict[str, datetime | None], set[str]]:
        states = self.store.source_states()
        gone = {s.name for s in config.sources if _disabled(states.get(s.name), s.url)}
        return _saved_next_polls(config, states, now), gone

    # -- reload -----------------------------------------------------------------------------------------
    def request_reload(self) -> None:
        """Reload soon (SIGHUP); reloads run one at a time."""
        task = asyncio.get_running_loop().create_task(self.reload())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def reload(self) -> ConfigChanges | None:
        """Load the config folder again and apply it; if it is invalid, say why and keep the running one."""
        async with self._reload_lock:
            if self.stopping:
                return None
            try:
                new = await asyncio.to_thread(load_config, self.config_path)
            except ConfigError as exc:
                for line in exc.problems:  # the very lines `crawler check` prints
                    log.error("%s", line)
                log.error(
                    "config not reloaded: %d problem(s); still running on the previous config",
                    len(exc.problems),
                )
                return None
            try:
                return self.apply(new)
            except Exception:
                log.exception("config reload failed; still running on the previous config")
                return None

    def apply(self, new: Config) -> ConfigChanges:
        """Apply a valid config: jobs of added, removed and rescheduled sources, topics, settings."""
        old = self.config
        changes = diff_configs(old, new)
        if not changes:
            log.info("config files changed; nothing to apply")
            return changes
        config = effective_config(old, new)
        self.adopt(config, bool(changes.topics))
        for name in changes.removed + changes.rescheduled:
            self._generation[name] = self._generation.get(name, 0) + 1
            if self.scheduler.get_job(poll_job_id(name)) is not None:
                self.scheduler.remove_job(poll_job_id(name))
        now = datetime.now(config.tz)
        due, gone = self._due(config, now)
        install_jobs(
            self.scheduler,
            config,
            self.poll_job,
            self.digest_job if changes.digest else None,
            due,
            now,
            skip=gone,
            only=changes.added + changes.rescheduled,
        )
        log.info("config reloaded: %s", changes.describe())
        for what in changes.need_restart:
            log.warning("config: %s changed: needs a restart; the running value is kept until then", what)
        return changes


class Service(Scheduling):
    """The running service: its resources, its scheduler, the polls in flight, and config reloads."""

    def __init__(self, res: Resources, scheduler: AsyncIOScheduler, config_path: Path):
        super().__init__(scheduler, config_path)
        self.res = res
        self.in_flight: set[asyncio.Task[Any]] = set()
        self.started_at = time.time()
        self.last_poll_started: float | None = None  # time.time() of the latest poll job (health checks)
        self.last_poll_finished: float | None = None
        self.on_poll: list[Callable[[PollReport], None]] = []  # called with every poll's report (metrics)
        self._polling: dict[str, asyncio.Lock] = {}  # per source: held while it is polled

    @property
    def config(self) -> Config:
        return self.res.config

    @property
    def store(self) -> Store:
        return self.res.store

    def adopt(self, config: Config, topics_changed: bool) -> None:
        # Polls read res.config when they start, and the writer reads res.matcher for each article: from
        # here on, new polls use the new sources and the next article filed uses the new topics.
        self.res.matcher = compile_topics(config.topics) if topics_changed else self.res.matcher
        self.res.config = config

    # -- jobs -------------------------------------------------------------------------------------------
    async def poll(self, name: str) -> PollReport | None:
        if self.stopping:
            return None
        task = asyncio.current_task()
        assert task is not None
        self.in_flight.add(task)
        lock = self._polling.setdefault(name, asyncio.Lock())
        try:
            # Never two polls of one source at once: a job replaced by a reload may fire while the old one
            # still runs; it waits for it, then polls with the new settings.
            async with lock:
                try:
                    source = self.res.config.source(name)
                except KeyError:
                    log.info("%s: no longer configured; not polled", name)
                    return None
                generation = self._generation.get(name, 0)
                self.last_poll_started = time.time()
                report = await poll_source(self.res, source)
                if self._generation.get(name, 0) == generation:  # else a reload has rescheduled it already
                    when = None if report.disabled else report.next_poll
                    reschedule(self.scheduler, self.res.config, name, when)
                self._tell(report)
                return report
        except (ShuttingDown, asyncio.CancelledError):
            # Shutdown: the poll's health is not saved, so the next start polls the source again in full.
            log.info("%s: poll interrupted by shutdown; it is done again at the next start", name)
            return None
        except Exception:  # one source's bug must not stop the others
            log.exception("%s: poll crashed", name)
            return None
        finally:
            self.last_poll_finished = time.time()
            self.in_flight.discard(task)

    def _tell(self, report: PollReport) -> None:
        for listener in self.on_poll:
            try:
                listener(report)
            except Exception:  # metrics must never break polling
                log.exception("%s: a poll listener failed", report.source)

    async def digest(self) -> None:
        res = self.res
        day = yesterday(datetime.now(res.config.tz))
        task = asyncio.current_task()
        assert task is not None
        self.in_flight.add(task)
        try:
            await res.write(write_digest_for, res.store, res.config, day)
        except DigestTemplateError as exc:  # the Markdown digest is written; the HTML waits for a fix
            log.error("digest for %s: HTML not written: %s", day, exc)
            return
        except asyncio.CancelledError:
            return  # the writer finishes it; missed digests are written again at the next start anyway
        finally:
            self.in_flight.discard(task)
        await _write_missed_digests(res)

    # -- stop -------------------------------------------------------------------------------------------
    async def drain(self, timeout: float) -> None:
        """Let the polls in flight wind down: no new downloads; the articles already downloading are
        downloaded, extracted and filed. After `timeout`, what is left is cancelled (a filing step that has
        begun still finishes: the writer thread is not interrupted).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self.res.fetcher.closed = True
        tasks = list(self.in_flight)
        busy = self.res.activity.count
        if not tasks and not busy:
            return
        log.info("stopping: letting %d poll(s) finish the items under way (up to %g s)", len(tasks), timeout)
        pending: set[asyncio.Task[Any]] = set()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
        # A poll ends at its first refused download; the items it had under way go on without it.
        while self.res.activity.count and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if self.res.activity.count:
            log.warning(
                "stopping: %d step(s) still under way after %g s: abandoned", self.res.activity.count, timeout
            )
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2.0)


async def serve(config: Config, extras: Sequence[Extra] = (), config_path: Path | None = None) -> int:
    """Run the service until SIGTERM or SIGINT; SIGHUP reloads the config (as an edit does)."""
    global _current
    began_stop = 0.0
    loop = asyncio.get_running_loop()
    stop = runtime.stop_event()
    async with open_resources(config) as res:
        # Started paused: the store is read, and nothing runs before the jobs are installed again.
        scheduler = start_scheduler(loop, config)
        service = Service(res, scheduler, config_path or config.config_dir)
        _current = service
        watch_stop = asyncio.Event()
        watcher: asyncio.Task[None] | None = None
        try:
            await _write_missed_digests(res)
            service.install_schedule()
            loop.add_signal_handler(signal.SIGHUP, service.request_reload)
            watcher = loop.create_task(watch_config(config.config_dir, service.reload, watch_stop))
            async with AsyncExitStack() as stack:
                # --- extras (observability: HTTP endpoint, metrics) start here, stop after the drain ---
                for extra in extras:
                    await stack.enter_async_context(extra(service))
                if not stop.is_set():
                    scheduler.resume()
                    enabled = [s.name for s in config.sources if s.enabled]
                    log.info("service started: %d source(s), data in %s", len(enabled), res.data_dir)
                    await stop.wait()
                began_stop = time.monotonic()
                log.info("stopping: no new polls")
                service.stopping = True
                scheduler.pause()
                await service.drain(DRAIN_SECONDS)
        finally:
            loop.remove_signal_handler(signal.SIGHUP)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # not the default (death) while closing
            watch_stop.set()
            if watcher is not None:
                await asyncio.wait([watcher], timeout=2.0)
            if scheduler.running:
                scheduler.shutdown(wait=False)
            _current = None
        # Leaving open_resources: the spider, the writer, the worker processes, then the index.
    log.info("stopped (%.1f s after the stop signal)", time.monotonic() - began_stop if began_stop else 0.0)
    return 0


def _saved_next_polls(
    config: Config, states: dict[str, dict[str, Any]], now: datetime
) -> dict[str, datetime | None]:
    """Saved next polls; a healthy source waits at most one interval, so a shortened `every:` applies."""
    due: dict[str, datetime | None] = {}
    for src in config.sources:
        state = states.get(src.name)
        if not state or not state.get("next_poll") or state.get("url") != src.url:
            due[src.name] = None
            continue
        when = datetime.fromisoformat(state["next_poll"])
        if not state.get("failures") and not src.cron and src.every != "auto":
            when = min(when, now + config.interval(src))
        due[src.name] = when
    return due


def _disabled(state: dict[str, Any] | None, url: str) -> bool:
    return bool(state and state.get("disabled") and state.get("url") == url)


async def poll_once(
    config: Config, names: Sequence[str], on_done: Callable[[PollReport], None] | None = None
) -> list[PollReport]:
    """Poll the named sources (all enabled ones when empty) concurrently and return one report each.

    A source stopped by HTTP 410 is polled only when named, to check whether it is back.
    """
    async with open_resources(config) as res:
        if names:
            chosen = [config.source(n) for n in names]
        else:
            states = res.store.source_states()
            chosen = [s for s in config.sources if s.enabled and not _disabled(states.get(s.name), s.url)]

        async def one(name: str) -> PollReport:
            try:
                report = await poll_source(res, res.config.source(name))
            except Exception as exc:  # reported like any other failure; the other sources carry on
                log.exception("%s: poll crashed", name)
                report = PollReport(name, error=f"internal error: {exc}")
            if on_done is not None:
                on_done(report)
            return report

        return list(await asyncio.gather(*(one(s.name) for s in chosen)))


async def _write_missed_digests(res: Resources) -> None:
    today = datetime.now(res.config.tz).date()
    for day in missed_days(res.store, res.data_dir, today):
        log.info("writing the missed digest for %s", day)
        try:
            await res.write(write_digest_for, res.store, res.config, day)
        except DigestTemplateError as exc:
            # Every day would fail the same way: say it once; the days are written once the template is fixed.
            log.error("digest for %s: HTML not written: %s", day, exc)
            return
