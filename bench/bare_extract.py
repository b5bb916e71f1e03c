"""Bare trafilatura on pages already in memory, in a process pool the size of the crawler's: the floor.

This is the extraction the crawler cannot avoid, with the options crawler/extract.py passes to trafilatura,
and nothing else: no download, no not-an-article check, no dedup, no topics, no filing.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import trafilatura

from crawler import extract

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# crawler.extract runs trafilatura's fast pass, and the full cascade too when the fast pass finds less than
# this; the floor makes the same calls (None: an extract.py without the fast pass, one full pass).
SHORT_FAST: int | None = getattr(extract, "_SHORT_FAST", None)
# Rounds of warm-up jobs before giving up on reaching every worker (a worker still importing takes none).
WARM_ROUNDS = 100


def _trafilatura(body: bytes, url: str, fast: bool) -> int:
    doc = trafilatura.bare_extraction(
        body, url=url, include_comments=False, include_tables=True, with_metadata=True, fast=fast
    )
    text = getattr(doc, "text", None) if doc is not None else None
    return len(text or "")


def bare(body: bytes, url: str) -> int:
    """Extract one page with the trafilatura calls crawler.extract makes; the length of the text found."""
    if SHORT_FAST is None:
        return _trafilatura(body, url, fast=False)
    found = _trafilatura(body, url, fast=True)
    return found if found >= SHORT_FAST else max(found, _trafilatura(body, url, fast=False))


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def warmed(fn: Callable[..., Any], *args: Any) -> int:
    """Run one warm-up job in a worker; the worker's pid, so the caller knows which workers are warm."""
    fn(*args)
    return os.getpid()


def warm_every_worker(submit: Callable[[], Any], size: int) -> set[int]:
    """Warm-up jobs until each of the `size` workers has run one: the pids of the workers reached.

    A spawned pool starts its processes on demand, and the first one ready takes every short job while the
    others are still importing: a warm-up of a fixed number of jobs often leaves a worker cold, and its
    imports (and first-call caches, the compiled topic rules) then count as work done under the clock.
    `submit` sends one `warmed` job and returns something with .result().
    """
    seen: set[int] = set()
    for _ in range(WARM_ROUNDS):
        seen.update(job.result() for job in [submit() for _ in range(2 * size)])
        if len(seen) >= size:
            break
        time.sleep(0.05)  # let the cold worker finish its imports
    return seen


def run_bare(pages: list[tuple[str, bytes]], size: int, warm_page: bytes) -> dict[str, float]:
    """Wall and CPU time to extract every page once; the pool is spawned and warmed before the clock."""
    pool = ProcessPoolExecutor(max_workers=size, mp_context=multiprocessing.get_context("spawn"))
    try:
        warm_every_worker(lambda: pool.submit(warmed, bare, warm_page, "http://127.0.0.1/warm"), size)
        pids = list(pool._processes)  # the bench reads their CPU time from /proc
        cpu0 = sum(_cpu(p) for p in pids)
        began = time.perf_counter()
        futures = [pool.submit(bare, body, f"http://127.0.0.2/{name}") for name, body in pages]
        lengths = [f.result() for f in futures]
        wall = time.perf_counter() - began
        cpu = sum(_cpu(p) for p in pids) - cpu0
    finally:
        pool.shutdown(wait=True)
    return {
        "pages": len(pages),
        "with_text": sum(1 for n in lengths if n),
        "wall_s": wall,
        "cpu_s": cpu,
        "pages_per_s": len(pages) / wall,
    }
