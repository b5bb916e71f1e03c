"""The long-lived parts a poll needs (index, downloader, worker processes, writer thread), opened and closed
in one place and in a fixed order, so that `crawler run`, `crawler poll` and the demo share them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from crawler import dedup
from crawler.archive import reconcile
from crawler.config import Config
from crawler.fetch import Fetcher
from crawler.store import Store
from crawler.topics import TopicMatcher, compile_topics
from crawler.workers import Workers

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class Resources:
    config: Config
    store: Store
    fetcher: Fetcher
    workers: Workers
    writer: ThreadPoolExecutor
    matcher: TopicMatcher

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    def today(self) -> str:
        return datetime.now(self.config.tz).date().isoformat()

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a filing step on the single writer thread: serialised, and off the event loop (fsync)."""
        return await asyncio.get_running_loop().run_in_executor(self.writer, fn, *args)


INDEX_FILE = "index.sqlite3"


def open_store(config: Config) -> Store:
    return Store(config.data_dir / INDEX_FILE)


def recover(store: Store, data_dir: Path, days: int | None = 2) -> int:
    """Remove what a crash left half-done and index complete items the index lacks; returns how many.

    With days=None the whole archive is walked: that rebuilds an empty index (`crawler reindex`).
    """
    from crawler.filing import index_item  # filing needs Resources: imported here to avoid a cycle

    added = 0
    for path, sidecar in reconcile(data_dir, days):
        if store.has_path(path):
            continue
        body = (data_dir / path).read_text("utf-8").split("\n", 2)[-1]
        keys = [dedup.url_key(sidecar["url"])]
        if sidecar.get("guid"):
            keys.append(dedup.guid_key(sidecar["source"], sidecar["guid"]))
        if sidecar.get("canonical_url"):
            keys.append(dedup.url_key(sidecar["canonical_url"]))
        keys += [dedup.url_key(r["url"]) for r in sidecar.get("also_reported_by") or []]
        index_item(store, path, Path(path).parent.name, sidecar, body, keys)
        added += 1
    if added and days is not None:
        log.warning("re-indexed %d archived item(s) the index lacked (after a crash?)", added)
    return added


def rebuild_index(config: Config) -> int:
    """A new index from the archive files alone: the archive is the source of truth.

    The new index is built beside the old one and moved into place when complete, so an interrupted rebuild
    leaves the old index as it was. Poll history and source health are not in the archive and start afresh.
    """
    final = config.data_dir / INDEX_FILE
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


@asynccontextmanager
async def open_resources(config: Config) -> AsyncIterator[Resources]:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config)
    recover(store, config.data_dir)
    workers = Workers()
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-writer")
    fetcher = Fetcher(config.settings.fetch)
    await fetcher.start()
    res = Resources(config, store, fetcher, workers, writer, compile_topics(config.topics))
    try:
        yield res
    finally:
        # Order matters: stop downloading, let the item being filed finish, then stop the workers and
        # close the index last, since filing writes to it.
        await fetcher.close()
        writer.shutdown(wait=True)
        workers.close()
        store.close()
