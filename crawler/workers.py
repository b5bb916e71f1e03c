"""CPU-bound stages (feed parsing, trafilatura) run in a pool of worker processes, never on the event loop.

Worker processes are spawned, not forked: forking a process that runs a Twisted reactor and SQLite
connections copies state the child must not touch. They ignore SIGINT so that Ctrl-C reaches only the
service, which then shuts the pool down in order.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")


def _quiet_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform == "linux":
        # If the service is killed (SIGKILL, OOM) its workers must not wait forever for work: the kernel
        # kills them with their parent. A parent gone before this line ran is caught by the check below.
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        parent = multiprocessing.parent_process()
        if parent is not None and os.getppid() != parent.pid:
            os._exit(1)


def pool_size() -> int:
    return max(1, min(len(os.sched_getaffinity(0)), 8))


class Workers:
    def __init__(self, size: int | None = None):
        self._size = size or pool_size()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_quiet_worker,
        )

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn, *args)
        except BrokenProcessPool:
            # A worker died (out of memory on a hostile page, say): replace the pool so the service goes on,
            # and let this one item fail.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
