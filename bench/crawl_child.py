"""The crawler side of bench/pipeline_bench.py, in a process of its own so its memory and CPU are its own.

Usage: python bench/crawl_child.py CONFIG_DIR   (driven over stdin/stdout by pipeline_bench.py)

It opens the crawler's resources once, through the public entry points (crawler.runtime, open_resources,
poll_source), then answers one command per stdin line with one JSON line on stdout:

    warm   run the extraction step on a small page in every worker (spawn, imports, topic rules compiled)
    poll   poll every source concurrently, as `crawler poll` does; report counts, wall and CPU time, RSS
    quit   close the resources and exit
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from bare_extract import WARM_ROUNDS, warmed

from crawler import runtime
from crawler.config import load_config
from crawler.filing import topic_rules
from crawler.pipeline import PollReport, extract_for_filing, poll_source
from crawler.resources import Resources, open_resources
from crawler.workers import pool_size

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WARM_PAGE = (
    b"<html><head><title>Warm up</title></head><body><article><h1>Warm up</h1>"
    + b"<p>The workers import the extraction code and trafilatura once before the clock starts.</p>" * 8
    + b"</article></body></html>"
)


def children(pid: int) -> list[int]:
    """Direct children of a process (the worker processes), read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def status_kb(pid: int, field: str) -> int:
    """A VmRSS / VmHWM line of /proc/<pid>/status, in kB (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory() -> dict[str, int]:
    me, kids = os.getpid(), children(os.getpid())
    return {
        "rss_kb": status_kb(me, "VmRSS"),
        "rss_workers_kb": sum(status_kb(k, "VmRSS") for k in kids),
        "hwm_kb": status_kb(me, "VmHWM"),
        "hwm_workers_kb": sum(status_kb(k, "VmHWM") for k in kids),  # peaks of each: an upper bound
        "workers": len(kids),
    }


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of each thread of this process, by Python thread name (the event loop runs on
    MainThread, filing on the writer thread; the pool's manager and queue feeder threads move the work)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # Numbered pool threads ("ThreadPoolExecutor-0_0") are counted by pool.
        name = names.get(int(tid), "other").rsplit("_", 1)[0]
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


def cpu() -> tuple[float, float]:
    """CPU seconds so far of this process and of its worker processes."""
    me = os.getpid()
    return cpu_seconds(me), sum(cpu_seconds(k) for k in children(me))


async def warm(res: Resources) -> dict[str, Any]:
    # Also compiles the topic rules in each worker, as the first article of a service does.
    rules = topic_rules(res.config.topics)
    args = (WARM_PAGE, "http://127.0.0.1/warm", "text/html", None, 200, 10, rules, ())
    # Until every worker has run one (see bare_extract.warm_every_worker: a fixed number of jobs often all go
    # to the first worker ready, and the other's imports and topic compilation then count as polling work).
    seen: set[int] = set()
    for _ in range(WARM_ROUNDS):
        jobs = [res.workers.run(warmed, extract_for_filing, *args) for _ in range(2 * pool_size())]
        seen.update(await asyncio.gather(*jobs))
        if len(seen) >= pool_size():
            break
        await asyncio.sleep(0.05)
    return {"pool_size": pool_size(), "warmed": len(seen), **memory()}


async def poll_all(res: Resources) -> dict[str, Any]:
    archive = res.data_dir / "archive"
    cpu0, threads0, began, wall0 = cpu(), thread_cpu(), time.perf_counter(), time.time()
    reports: list[PollReport] = await asyncio.gather(
        *(poll_source(res, s) for s in res.config.sources if s.enabled)
    )
    wall = time.perf_counter() - began
    main, workers = (b - a for a, b in zip(cpu0, cpu(), strict=True))
    threads = {k: round(v - threads0.get(k, 0.0), 2) for k, v in thread_cpu().items()}
    last_file = max((p.stat().st_mtime for p in archive.glob("*/*.json")), default=wall0)
    return {
        "wall_s": wall,
        "cpu_s": main + workers,
        "cpu_main_s": main,
        "cpu_workers_s": workers,
        "cpu_main_threads_s": {k: v for k, v in sorted(threads.items()) if v},
        "to_last_file_s": max(0.0, last_file - wall0),
        "new": sum(r.new for r in reports),
        "duplicate": sum(r.duplicate for r in reports),
        "failed": sum(r.failed for r in reports),
        "known": sum(r.known for r in reports),
        "old": sum(r.old for r in reports),
        "unchanged": sum(r.unchanged for r in reports),
        "errors": [f"{r.source}: {r.error}" for r in reports if r.error],
        "failures": [f for r in reports for f in r.failures][:20],
        **memory(),
    }


async def serve(config_dir: Path, out: TextIO) -> None:
    config = load_config(config_dir)
    async with open_resources(config) as res:
        while True:
            line = (await asyncio.to_thread(sys.stdin.readline)).strip()
            if line in ("", "quit"):
                break
            answer = await (warm(res) if line == "warm" else poll_all(res))
            out.write(json.dumps(answer) + "\n")
            out.flush()


def main() -> int:
    # The protocol has stdout to itself: anything a library prints goes to stderr.
    out = os.fdopen(os.dup(1), "w")
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="child %(levelname)s %(message)s")
    runtime.run(lambda: serve(Path(sys.argv[1]), out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
