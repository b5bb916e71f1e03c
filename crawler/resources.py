"""The long-lived parts a poll needs (index, downloader, worker processes, writer thread), opened and closed
in one place and in a fixed order, so that `crawler run`, `crawler poll` and the demo share them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from crawler import dedup
from crawler.archive import reconcile
from crawler.config import Config
from crawler.models import FetchResult
from crawler.store import STALE_CLAIM, Store
from crawler.topics import TopicMatcher, compile_topics
from crawler.workers import Workers

# The longest pause a Retry-After imposes on a host for all workers; a longer one is the scheduler's business
# (the source's next poll), as in the embedded downloader.
MAX_SHARED_PAUSE = 3600.0

if TYPE_CHECKING:
    # Imported when the downloader starts (open_resources), not with this module: the worker processes
    # import the pipeline to run its CPU stages, and Scrapy and Twisted would cost each of them ~45 MiB and a
    # second of start-up for nothing.
    from crawler.fetch import Fetcher
    from crawler.hostlimit import HostLimiter

T = TypeVar("T")
log = logging.getLogger(__name__)


class ShuttingDown(Exception):
    """Raised to a poll that asks for a download once the service has begun to stop.

    The poll ends there, before saving the source's health, so the next start polls the source again in
    full; the articles it already downloaded are still extracted and filed.
    """


class Activity:
    """How many steps are under way for polls: downloads, extractions, filing steps (what a stop waits for).

    Touched only on the event loop. An item moves from one step to the next without yielding to the loop in
    between, so a count of zero seen by another task means no item is between steps either.
    """

    def __init__(self) -> None:
        self.count = 0

    @contextmanager
    def step(self) -> Iterator[None]:
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1


class FetchGate:
    """The downloader as the polls see it. At shutdown its door closes first: polls in flight start no new
    download, while the articles already downloaded are extracted and filed.

    With a host limiter (a worker sharing a queue with others), every download first takes a slot on its
    host in the limiter, so the per-host limits hold across machines, and a Retry-After pauses the host for
    every worker.
    """

    def __init__(self, fetcher: Fetcher, activity: Activity, limiter: HostLimiter | None = None):
        self.fetcher = fetcher
        self.activity = activity
        self.limiter = limiter
        self.closed = False

    async def fetch(
        self, url: str, *, obey_robots: bool = True, headers: dict[str, str] | None = None
    ) -> FetchResult:
        if self.closed:
            raise ShuttingDown(f"{url}: not fetched: shutting down")
        with self.activity.step():
            if self.limiter is None:
                return await self.fetcher.fetch(url, obey_robots=obey_robots, headers=headers)
            return await self._limited(self.limiter, url, obey_robots, headers)

    async def _limited(
        self, limiter: HostLimiter, url: str, obey_robots: bool, headers: dict[str, str] | None
    ) -> FetchResult:
        from redis.exceptions import RedisError

        host = urlsplit(url).hostname or ""
        try:
            async with limiter.slot(host):
                result = await self.fetcher.fetch(url, obey_robots=obey_robots, headers=headers)
            if result.retry_after:
                until = min(result.retry_after, MAX_SHARED_PAUSE)
                await limiter.pause(host, until)
                log.info("%s: paused for every worker for %g s (Retry-After)", host, until)
        except RedisError as error:
            # Not downloaded (rather than downloaded impolitely): the item is tried again at the next poll.
            return FetchResult(url=url, error=f"host limiter unreachable: {error}")
        return result


class WorkerGate:
    """The worker processes as the polls see them: the same `run`, counted in the activity."""

    def __init__(self, workers: Workers, activity: Activity):
        self.workers = workers
        self.activity = activity

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        with self.activity.step():
            return await self.workers.run(fn, *args)


@dataclass
class Resources:
    config: Config  # replaced as a whole by a config reload
    store: Store
    fetcher: FetchGate
    workers: WorkerGate
    writer: ThreadPoolExecutor
    matcher: TopicMatcher  # replaced by a reload that changes topics; read for each article filed
    activity: Activity = field(default_factory=Activity)

    _data_dir: tuple[Config, Path] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def data_dir(self) -> Path:
        # Config.data_dir resolves the path on disk (a system call per component) and filing asks for it
        # several times per article: resolved once per config (a reload replaces the config).
        if self._data_dir is None or self._data_dir[0] is not self.config:
            self._data_dir = (self.config, self.config.data_dir)
        return self._data_dir[1]

    def today(self) -> str:
        return datetime.now(self.config.tz).date().isoformat()

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a filing step on the single writer thread: serialised, and off the event loop (fsync)."""
        with self.activity.step():
            return await asyncio.get_running_loop().run_in_executor(self.writer, fn, *args)


INDEX_FILE = "index.sqlite3"


def index_target(config: Config) -> Path | str:
    """Where the index lives: crawler.yaml `database:` (a URL), else the SQLite file in the data folder."""
    return config.settings.database or config.data_dir / INDEX_FILE


def open_store(config: Config) -> Store:
    return Store(index_target(config))


def migrate_index(config: Config) -> tuple[str | None, str]:
    """`crawler migrate`: upgrade the index to the current schema; (revision before, revision after)."""
    from crawler.migrations import upgrade

    store = Store(index_target(config), ready=False)
    try:
        return upgrade(store.engine)
    finally:
        store.close()


def recover(
    store: Store,
    data_dir: Path,
    days: int | None = 2,
    shared_after: timedelta | None = None,
    since: float | None = None,
) -> int:
    """Remove what a crash left half-done and index complete items the index lacks; returns how many.

    With days=None the whole archive is walked: that rebuilds an empty index (`crawler reindex`).

    `shared_after`: the archive and the index are shared with live processes, so only files and key claims
    older than this are a dead process's leftovers (newer ones may be another process's filing under way).
    None: this process is the only writer (the embedded mode's lock), and everything left is a leftover.
    `since` (a time.time()) skips files an earlier pass looked at.
    """
    # filing needs Resources: imported here to avoid a cycle
    from crawler.filing import content_key, index_item

    settled = None if shared_after is None else time.time() - shared_after.total_seconds()
    added = 0
    for path, sidecar in reconcile(data_dir, days, settled, since):
        if store.has_path(path):
            continue
        body = (data_dir / path).read_text("utf-8").split("\n", 2)[-1]
        keys = [dedup.url_key(sidecar["url"])]
        if sidecar.get("guid"):
            keys.append(dedup.guid_key(sidecar["source"], sidecar["guid"]))
        if sidecar.get("canonical_url"):
            keys.append(dedup.url_key(sidecar["canonical_url"]))
        keys += [dedup.url_key(r["url"]) for r in sidecar.get("also_reported_by") or []]
        if not sidecar.get("revision_of"):
            keys.append(content_key(sidecar["content_sha256"]))  # as file_article files it
        try:
            index_item(store, path, Path(path).parent.name, sidecar, body, keys)
        except IntegrityError:
            continue  # another process sharing the index recovered it at the same moment
        added += 1
    if added and days is not None:
        log.warning("re-indexed %d archived item(s) the index lacked (after a crash?)", added)
    released = store.release_stale_claims(shared_after or timedelta(0))
    if released:
        log.warning("released %d key claim(s) a process left unfiled (it died while filing?)", released)
    return added


def shared_after(config: Config, store: Store) -> timedelta | None:
    """How old a file or claim must be to be a dead process's leftover (see recover).

    The embedded SQLite index has one process (the data folder's lock): None, everything left is a
    leftover. Queue workers presume a process dead when its work is idle `queue_claim_after`, and its files
    and claims with it. Other users of a shared PostgreSQL index (`crawler poll`) allow STALE_CLAIM.
    """
    if store.dialect == "sqlite":
        return None
    return config.settings.queue_claim_after if config.settings.queue else STALE_CLAIM


def rebuild_index(config: Config) -> int:
    """A new index from the archive files alone: the archive is the source of truth.

    The new index is built beside the old one and moved into place when complete, so an interrupted rebuild
    leaves the old index as it was. Poll history and source health are not in the archive and start afresh.
    """
    target = index_target(config)
    if not isinstance(target, Path) and make_url(target).get_backend_name() == "postgresql":
        return rebuild_postgres(target, config.data_dir)
    final = target if isinstance(target, Path) else Path(make_url(target).database or "")
    building = final.with_name(final.name + ".rebuild")
    for leftover in building.parent.glob(building.name + "*"):
        leftover.unlink()
    store = Store(building)
    try:
        count = recover(store, config.data_dir, days=None)
    finally:
        store.close()
    for suffix in ("-wal", "-shm"):
        final.with_name(final.name + suffix).unlink(missing_ok=True)
    os.replace(building, final)
    return count


REBUILD_SCHEMA = "crawler_rebuild"
OLD_SCHEMA = "crawler_replaced"


def rebuild_postgres(url: str, data_dir: Path) -> int:
    """`crawler reindex` on PostgreSQL: build a complete index in a schema of its own, then swap it in.

    The new tables are made by the migrations in the schema `crawler_rebuild` and filled from the archive
    while the service may still read the old ones; then one transaction moves the old tables aside and the new
    ones into their place and drops the old. An interrupted rebuild leaves the live index as it was (the next
    rebuild starts by dropping the half-built schema). Poll history and source health start afresh, as on
    SQLite.
    """
    from crawler.migrations import upgrade

    admin = Store(url, ready=False)
    try:
        with admin.engine.begin() as conn:
            live = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {REBUILD_SCHEMA} CASCADE")
            conn.exec_driver_sql(f"CREATE SCHEMA {REBUILD_SCHEMA}")
        building = Store(_in_schema(url, REBUILD_SCHEMA), ready=False)
        try:
            upgrade(building.engine)
            count = recover(building, data_dir, days=None)
        finally:
            building.close()
        with admin.engine.begin() as conn:
            _swap(conn, live)
    finally:
        admin.close()
    return count


def _in_schema(url: str, schema: str) -> str:
    """The URL with its connections' search_path set to `schema` (unqualified names resolve there)."""
    parsed = make_url(url)
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


def _swap(conn: Any, live: str) -> None:
    tables = [
        r[0]
        for r in conn.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = %(s)s", {"s": REBUILD_SCHEMA}
        )
    ]
    conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {OLD_SCHEMA} CASCADE")
    conn.exec_driver_sql(f"CREATE SCHEMA {OLD_SCHEMA}")
    for table in tables:  # owned sequences and indexes move with their table
        if conn.exec_driver_sql("SELECT to_regclass(%(t)s)", {"t": f'"{live}"."{table}"'}).scalar():
            conn.exec_driver_sql(f'ALTER TABLE "{live}"."{table}" SET SCHEMA {OLD_SCHEMA}')
        conn.exec_driver_sql(f'ALTER TABLE {REBUILD_SCHEMA}."{table}" SET SCHEMA "{live}"')
    conn.exec_driver_sql(f"DROP SCHEMA {OLD_SCHEMA} CASCADE")
    conn.exec_driver_sql(f"DROP SCHEMA {REBUILD_SCHEMA}")


@asynccontextmanager
async def open_resources(config: Config, limiter: HostLimiter | None = None) -> AsyncIterator[Resources]:
    """Everything a poll needs. With `limiter` (a queue worker), the per-host spacing is the limiter's, kept
    across all workers, and the local downloader adds no delay of its own on top."""
    from crawler.fetch import Fetcher

    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config)
    recover(store, config.data_dir, shared_after=shared_after(config, store))
    workers = Workers()
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-writer")
    fetch_settings = config.settings.fetch
    if limiter is not None:
        fetch_settings = fetch_settings.model_copy(update={"delay": 0.0})
    fetcher = Fetcher(fetch_settings)
    await fetcher.start()
    activity = Activity()
    res = Resources(
        config,
        store,
        FetchGate(fetcher, activity, limiter),
        WorkerGate(workers, activity),
        writer,
        compile_topics(config.topics),
        activity,
    )
    try:
        yield res
    finally:
        # Order matters: stop downloading, let the item being filed finish, then stop the workers and
        # close the index last, since filing writes to it.
        res.fetcher.closed = True
        began = time.monotonic()
        await fetcher.close()
        log.debug("downloader stopped (%.2f s)", time.monotonic() - began)
        # Off the loop, so the loop stays responsive; an article being filed is always finished.
        await asyncio.to_thread(writer.shutdown, wait=True)
        log.debug("writer stopped (%.2f s)", time.monotonic() - began)
        await asyncio.to_thread(workers.close)
        log.debug("worker processes stopped (%.2f s)", time.monotonic() - began)
        store.close()
