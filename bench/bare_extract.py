"""Bare trafilatura on pages already in memory, in a process pool the size of the crawler's: the floor.

This is the extraction the crawler cannot avoid, with the options crawler/extract.py passes to trafilatura,
and nothing else: no download, no not-an-article check, no dedup, no topics, no filing.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, wait
from pathlib import Path

import trafilatura

from crawler import extract

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# crawler.extract runs trafilatura's fast pass, and the full cascade too when the fast pass finds less than
# this; the floor makes the same calls (None: an extract.py without the fast pass, one full pass).
SHORT_FAST: int | None = getattr(extract, "_SHORT_FAST", None)


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


def run_bare(pages: list[tuple[str, bytes]], size: int, warm_page: bytes) -> dict[str, float]:
    """Wall and CPU time to extract every page once; the pool is spawned and warmed before the clock."""
    pool = ProcessPoolExecutor(max_workers=size, mp_context=multiprocessing.get_context("spawn"))
    try:
        wait([pool.submit(bare, warm_page, "http://127.0.0.1/warm") for _ in range(2 * size)])
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
