"""Scale-out throughput: the same crawl filed by 1, 2 and 4 `crawler run --role worker` processes.

Usage: python bench/scale_bench.py [--quick] [--workers 1,2,4] [--repeat R] [--sources N] [--articles M]
                                   [--hosts H] [--out FILE]

Everything is real and local: a throwaway PostgreSQL and Redis (tests/pg_server.py, tests/redis_server.py;
without them the bench prints "skipped: ..." and exits 0), the bench site of N sources x M corpus pages over H
loopback addresses (bench/benchsite.py), and the crawler's own processes: for each K, a fresh database (after
`crawler migrate`), a fresh Redis database number, a fresh data folder, one `crawler run --role scheduler` and
K `crawler run --role worker`. Fetch politeness is per_host 2 with delay 0, held across all workers by the
Redis host limiter, so the run is bound by CPU, not by waiting.

What is measured, per K:
  - seconds from the first request at the corpus site to the last corpus item filed (the bench polls
    `SELECT count(*) FROM items` every 50 ms), and articles filed per second over that time;
  - speed-up: articles/s against K=1;
  - CPU seconds of each worker's process tree (the worker and its extraction pool, from /proc/PID/stat) over
    the same window, and of the scheduler, PostgreSQL and Redis, so the table says where the cores went;
  - exactly once: items == distinct URLs == the polls' `new`, new + duplicate + failed == pages, and one
    archive file per indexed corpus item. (The default 240 pages hold one page the crawler's duplicate
    checks take for another's copy: 239 filed, 1 duplicate, at every K, as in bench/pipeline_bench.py.)

The default (24 sources x 10 pages over 6 hosts, K = 1, 2, 4) takes about 2 minutes; --quick (8 x 6 pages,
K = 1, 2) under 1. --repeat R runs the K in turn R times and adds medians: on a shared machine one run per K
moves by +-30% with the load, more than the differences between K. Results go under the "scale_out" key of
bench/results.json (the other keys are kept); the exit status is 1 if any run failed the exactly-once check.

Two things are arranged so that the figures are about throughput rather than start-up:
  - warm-up: before the clock, 3 sources per worker of synthetic pages (on addresses of their own) are polled
    and filed, so that every worker has started its extraction pool and imported trafilatura. Long-lived
    workers pay that once, not per crawl; the corpus site is not touched until the clock starts;
  - all at once: a never-polled source's first poll is spread over min(5 min, its interval), which would make
    a run measure the spread. The bench instead saves every corpus source's next poll, a few seconds ahead,
    in the index (as a running crawler's index holds it), then adds the sources to the config and sends
    SIGHUP, so the leader queues them all at that moment, as when many sources fall due together.

Why 2 cores cannot show much scaling: every worker, the scheduler, PostgreSQL, Redis and the site share the
same 2 cores, and each worker has its own extraction pool of pool_size() processes (2 here), so one worker
already keeps both cores busy with trafilatura; more workers add processes competing for the same cores (and
their own event loops, Redis and database round trips). On 2 cores the expected result is a speed-up near
1.0, or below it; what the run does show on any machine is that K workers file every page exactly once and
what each extra worker costs. Scaling needs workers on machines (or cores) of their own. The polls each
worker did are printed too: a worker takes at most two waiting requests per round trip to Redis (up to its
worker_polls free slots), so when every source falls due at once the workers share them out; the shares
still differ with how fast each worker gets through its polls.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import yaml
from benchsite import BenchSite, Entry, Feed, Host, corpus_pages, synthetic_page
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tests' throwaway servers
from pg_server import PgServer, _binaries, _run, _user  # noqa: E402
from pg_server import _start as start_postgres  # noqa: E402
from redis_server import RedisServer  # noqa: E402
from redis_server import _start as start_redis  # noqa: E402

from crawler.store import Store  # noqa: E402
from crawler.workers import pool_size  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
WARM_PER_WORKER = 3  # warm-up sources per worker (the queue hands them out in turn, not exactly evenly)
WARM_PAGES = 8  # synthetic pages per warm-up source, long enough that two extractions overlap and each
WARM_PARAGRAPHS = 20  # worker's pool starts its second process
WARM_EVERY = "4s"  # warm-up sources' interval: their first polls are spread over it
LEAD_TIME = 4.0  # seconds between saving the corpus sources' next poll and that poll
POLL_EVERY = 0.05  # seconds between counts of the filed items
START_TIMEOUT = 90.0  # seconds for the processes to start, the warm-up, a reload
CRAWL_TIMEOUT = 240.0  # seconds for the measured crawl
STOP_TIMEOUT = 15.0  # seconds a process gets after SIGTERM before its process group is killed


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run: 8 x 6 pages, K in 1, 2")
    p.add_argument("--workers", help="the K to run, comma-separated (default 1,2,4; --quick 1,2)")
    p.add_argument("--sources", type=int, help="N sources (default 24)")
    p.add_argument("--articles", type=int, help="M articles per source (default 10; N x M <= 271)")
    p.add_argument("--hosts", type=int, help="loopback addresses for the sources (default 6)")
    p.add_argument("--repeat", type=int, default=1, help="run the K in turn this many times (default 1)")
    p.add_argument("--out", type=Path, default=HERE / "results.json")
    args = p.parse_args(argv)
    quick = args.quick
    args.sources = args.sources or (8 if quick else 24)
    args.articles = args.articles or (6 if quick else 10)
    args.hosts = args.hosts or (4 if quick else 6)
    try:
        args.counts = [int(k) for k in (args.workers or ("1,2" if quick else "1,2,4")).split(",")]
    except ValueError:
        p.error("--workers takes numbers separated by commas, such as 1,2,4")
    if any(k < 1 for k in args.counts):
        p.error("--workers: each K must be at least 1")
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.sources * args.articles > 271:
        p.error("N x M must be at most 271: each corpus page is used once per run")
    return args


# -- the site ----------------------------------------------------------------------------------------------
class Clock:
    """When the corpus site got its first and last request (monotonic), counted from `reset`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.first: float | None = None
        self.last: float | None = None

    def reset(self) -> None:
        with self.lock:
            self.first = self.last = None

    def wrap(self, host: Host) -> None:
        answer = host.answer

        def timed(path: str, if_none_match: str | None) -> tuple[int, bytes, dict[str, str]]:
            now = time.monotonic()
            with self.lock:
                self.first = now if self.first is None else self.first
                self.last = now
            return answer(path, if_none_match)

        host.answer = timed  # type: ignore[method-assign]  # the handler calls it through the instance


def warm_hosts(count: int, first_address: int, words: list[str]) -> list[tuple[Host, Feed]]:
    """`count` warm-up sources of synthetic pages, each on a loopback address of its own."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    out = []
    for i in range(count):
        host = Host(f"127.0.0.{first_address + i}", counts, lock)
        feed = Feed(f"warm{i:02d}", host.base, size=WARM_PAGES)
        for k in range(WARM_PAGES):
            path = f"/warm{i:02d}/{k}.html"
            rng = random.Random(i * 1000 + k)  # random words: distinct texts, so none is a near-duplicate
            text = [" ".join(rng.choice(words) for _ in range(60)) + "." for _ in range(WARM_PARAGRAPHS)]
            host.pages[path] = synthetic_page(f"Warm-up story {i} {k}", text)
            feed.entries.append(Entry(path, f"Warm-up story {i} {k}", datetime.now(UTC)))
        feed.render(host.base)
        host.feeds[f"/warm{i:02d}/feed.xml"] = feed
        out.append((host, feed))
    return out


def vocabulary(pages: list[tuple[str, bytes]]) -> list[str]:
    """Words for distinct synthetic texts (taken from the corpus pages' markup-free runs of letters)."""
    found = Counter(w for _, body in pages[:20] for w in re.findall(rb"\b[a-z]{4,12}\b", body))
    return sorted(w.decode() for w, n in found.items() if n >= 2)[:2000]


# -- processes and CPU -------------------------------------------------------------------------------------
def proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of the process and of its children already reaped)."""
    out: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "; fields[1] is the parent
        out[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / TICK)
    return out


def tree(root: int, table: dict[int, tuple[int, float]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            found.append(pid)
            todo.extend(children.get(pid, []))
    return found


def is_pool_process(pid: int) -> bool:
    """An extraction pool process: spawned by multiprocessing (not its resource tracker)."""
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def tree_cpu(root: int, table: dict[int, tuple[int, float]]) -> float:
    return sum(table[pid][1] for pid in tree(root, table))


@dataclass
class Node:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text("utf-8", errors="replace") if self.log.exists() else ""


@dataclass
class Run:
    k: int
    folder: Path
    pg_url: str
    redis_url: str
    nodes: list[Node] = field(default_factory=list)

    @property
    def cfg(self) -> Path:
        return self.folder / "config"

    def start(self, name: str, role: str) -> Node:
        log = self.folder / f"{name}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "crawler", "run", "--role", role, "--config", str(self.cfg)],
            stdout=subprocess.DEVNULL,
            stderr=log.open("ab"),
            cwd=ROOT,
            env={**os.environ, "CRAWLER_LOG_FORMAT": "json"},  # with levels, so errors can be picked out
            start_new_session=True,  # its process group holds its extraction pool, for the final SIGKILL
        )
        node = Node(name, proc, log)
        self.nodes.append(node)
        return node

    def workers(self) -> list[Node]:
        return [n for n in self.nodes if n.name.startswith("worker")]

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc.poll() is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            try:
                node.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(node.proc.pid, signal.SIGKILL)  # whatever the process left behind


def wait_for(predicate: Callable[[], object], timeout: float, what: str, run: Run) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for node in run.nodes:
            if node.proc.poll() is not None:
                raise RuntimeError(f"{node.name} exited with {node.proc.returncode}:\n{node.text()[-2000:]}")
        if predicate():
            return
        time.sleep(POLL_EVERY)
    raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")


# -- one run -----------------------------------------------------------------------------------------------
def write_config(run: Run, sources: list[dict[str, Any]]) -> None:
    settings = {
        "data_dir": "../data",
        "timezone": "UTC",
        "database": run.pg_url,
        "queue": run.redis_url,
        "every": "1h",  # each corpus source is polled once in a run
        "fetch": {"delay": 0, "per_host": 2, "allow_private_networks": True, "timeout": 30},
    }
    run.cfg.mkdir(parents=True, exist_ok=True)
    (run.cfg / "crawler.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    write_sources(run, sources)
    shutil.copyfile(ROOT / "config" / "topics.yaml", run.cfg / "topics.yaml")  # flagging costs as in use


def write_sources(run: Run, sources: list[dict[str, Any]]) -> None:
    # Written aside and renamed, so a node watching the folder never reads half a file.
    tmp = run.cfg / "sources.yaml.tmp"
    tmp.write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
    os.replace(tmp, run.cfg / "sources.yaml")


def pg_conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def count(conn: psycopg.Connection[Any], sql: str) -> int:
    row = conn.execute(sql).fetchone()
    return int(row[0] or 0) if row else 0


def one_run(
    k: int, folder: Path, pg: PgServer, rd: RedisServer, site: BenchSite, clock: Clock, words: list[str]
) -> dict[str, Any]:
    run = Run(k, folder, pg.new_database(), rd.new_database())
    warm = warm_hosts(WARM_PER_WORKER * k, 2 + len(site.hosts), words)
    try:
        return crawl(run, pg, rd, site, clock, warm)
    finally:
        run.stop()
        for host, _ in warm:
            host.close()


def crawl(
    run: Run, pg: PgServer, rd: RedisServer, site: BenchSite, clock: Clock, warm: list[tuple[Host, Feed]]
) -> dict[str, Any]:
    load_start = os.getloadavg()
    warm_sources = [
        {"name": f.source, "url": f"{h.base}/{f.source}/feed.xml", "every": WARM_EVERY, "backfill": True}
        for h, f in warm
    ]
    write_config(run, warm_sources)
    migrated = subprocess.run(
        [sys.executable, "-m", "crawler", "migrate", "--config", str(run.cfg)],
        capture_output=True, text=True, cwd=ROOT, timeout=START_TIMEOUT,
    )  # fmt: skip
    if migrated.returncode != 0:
        raise RuntimeError(f"crawler migrate failed: {migrated.stderr[-2000:]}")
    # Workers first, so the warm-up's requests are shared among them rather than taken by the first one up.
    for i in range(run.k):
        run.start(f"worker{i + 1}", "worker")
    wait_for(lambda: all(" started: polls from " in w.text() for w in run.workers()), START_TIMEOUT,
             "the workers to start", run)  # fmt: skip
    scheduler = run.start("scheduler", "scheduler")
    wait_for(lambda: "source(s) scheduled" in scheduler.text(), START_TIMEOUT, "the scheduler to lead", run)
    with psycopg.connect(pg_conninfo(run.pg_url), autocommit=True) as conn:
        warm_total = len(warm) * WARM_PAGES
        warm_sql = "SELECT count(*) FROM items WHERE source LIKE 'warm%'"
        wait_for(lambda: count(conn, warm_sql) >= warm_total, START_TIMEOUT, "the warm-up", run)
        table = proc_table()
        pools = {w.name: sum(map(is_pool_process, tree(w.proc.pid, table))) for w in run.workers()}
        due = start_corpus(run, site, clock)
        before = proc_table()
        measured = measure(conn, site, clock, due)
        after = proc_table()
        checks = exactly_once(conn, run, site)
    pg_pid = int((pg.folder / "data" / "postmaster.pid").read_text().split()[0])
    roots = {n.name: n.proc.pid for n in run.nodes} | {"postgres": pg_pid, "redis": rd.process.pid}
    cpu = {name: round(tree_cpu(pid, after) - tree_cpu(pid, before), 2) for name, pid in roots.items()}
    run.stop()
    polls = {w.name: _polls_done(w.text()) for w in run.workers()}
    errors = [line for n in run.nodes for line in error_lines(n.text())]
    return {
        "workers": run.k, **measured, **checks,
        "cpu_s": cpu, "cpu_workers_s": round(sum(v for n, v in cpu.items() if n.startswith("worker")), 2),
        "pool_processes": pools, "polls_per_worker": polls, "log_errors": errors[:20],
        "load_average": {"start": load_start, "end": os.getloadavg()},
    }  # fmt: skip


def start_corpus(run: Run, site: BenchSite, clock: Clock) -> float:
    """Save every corpus source's next poll LEAD_TIME ahead, then swap the config to the corpus sources.

    Returns when the polls are due, on the monotonic clock.
    """
    due = (datetime.now(UTC) + timedelta(seconds=LEAD_TIME + 1)).replace(microsecond=0)
    due_mono = time.monotonic() + (due - datetime.now(UTC)).total_seconds()
    sources = site.sources_yaml()["sources"]
    store = Store(run.pg_url)
    try:
        for src in sources:
            store.save_source_state(
                src["name"], url=src["url"], next_poll=due.isoformat(), failures=0, failure_weight=0.0
            )
    finally:
        store.close()
    clock.reset()
    before = {n.name: n.text().count("config reloaded: ") for n in run.nodes}
    write_sources(run, sources)
    for node in run.nodes:  # each watches the folder too; the signal makes the reload certain
        node.proc.send_signal(signal.SIGHUP)

    def reloaded() -> bool:
        return all(n.text().count("config reloaded: ") > before[n.name] for n in run.nodes)

    wait_for(reloaded, START_TIMEOUT, "every node to reload the config", run)
    if datetime.now(UTC) >= due:
        raise RuntimeError("the nodes reloaded after the saved next poll: the polls would be spread out")
    return due_mono


def measure(conn: psycopg.Connection[Any], site: BenchSite, clock: Clock, due: float) -> dict[str, Any]:
    """From the first request at the corpus site to the last corpus item filed (all sources polled)."""
    before = site.snapshot()
    sources = len(site.feeds)
    items_sql = "SELECT count(*) FROM items WHERE source LIKE 'src%'"
    polled_sql = "SELECT count(DISTINCT source) FROM polls WHERE source LIKE 'src%'"
    filed, last_change = 0, time.monotonic()
    deadline = time.monotonic() + CRAWL_TIMEOUT + LEAD_TIME
    polled = 0
    while time.monotonic() < deadline:
        now_filed = count(conn, items_sql)
        if now_filed != filed:
            filed, last_change = now_filed, time.monotonic()
        polled = count(conn, polled_sql)
        if polled == sources and count(conn, items_sql) == filed:
            break
        time.sleep(POLL_EVERY)
    else:
        raise RuntimeError(f"the crawl did not end within {CRAWL_TIMEOUT:g} s ({polled}/{sources} polled)")
    first = clock.first
    assert first is not None  # the sources were polled, so the site was asked
    seconds = last_change - first
    return {
        "seconds": seconds,
        "filed": filed,
        "articles_per_s": filed / seconds if seconds > 0 else None,
        "pages_per_s": len(site_pages(site)) / seconds if seconds > 0 else None,
        "first_request_after_due_s": first - due,
        "requests": {key: n - before[key] for key, n in sorted(site.snapshot().items()) if n - before[key]},
    }  # fmt: skip


def site_pages(site: BenchSite) -> set[str]:
    return {f"{h.base}{path}" for h in site.hosts for path in h.pages}


def exactly_once(conn: psycopg.Connection[Any], run: Run, site: BenchSite) -> dict[str, Any]:
    """Each corpus page filed at most once, every page accounted for, and the index matching the disk."""
    pages = site_pages(site)
    items = count(conn, "SELECT count(*) FROM items WHERE source LIKE 'src%'")
    distinct = count(conn, "SELECT count(DISTINCT url) FROM items WHERE source LIKE 'src%'")
    row = conn.execute(
        "SELECT sum(new), sum(duplicate), sum(failed) FROM polls WHERE source LIKE 'src%'"
    ).fetchone()
    new, duplicate, failed = (int(v or 0) for v in row) if row else (0, 0, 0)
    indexed = {u for (u,) in conn.execute("SELECT url FROM items WHERE source LIKE 'src%'")}
    reasons: Counter[str] = Counter()
    for (failures,) in conn.execute("SELECT failures FROM polls WHERE source LIKE 'src%'"):
        reasons.update(line.split(": ", 1)[-1] for line in json.loads(failures))  # "url: reason"
    on_disk = Counter(
        json.loads(p.read_text("utf-8"))["url"] for p in (run.folder / "data" / "archive").rglob("*.json")
    )
    disk = {u: n for u, n in on_disk.items() if u in pages}
    ok = (
        items == distinct == new
        and new + duplicate + failed == len(pages)
        and indexed <= pages
        and set(disk) == indexed
        and all(n == 1 for n in disk.values())
    )
    return {
        "pages": len(pages), "items": items, "distinct_urls": distinct, "new": new,
        "duplicate": duplicate, "failed": failed, "failure_reasons": dict(reasons.most_common(5)),
        "files_on_disk": sum(disk.values()), "exactly_once": ok,
    }  # fmt: skip


def error_lines(log: str) -> list[str]:
    """The ERROR and CRITICAL records of a JSON log, and any line that is not JSON (a crash's output)."""
    found = []
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            found.append(line)
            continue
        if isinstance(record, dict) and record.get("level") in ("ERROR", "CRITICAL"):
            found.append(f"{record.get('logger')}: {record.get('message')}")
    return found


def _polls_done(log: str) -> int | None:
    found = re.findall(r": (\d+) poll\(s\) done", log)
    return int(found[-1]) if found else None


# -- the whole bench ---------------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    args = parse_args(argv)
    console = Console(width=max(Console().width, 120))  # the table's columns unfolded in a log too
    started = time.time()
    try:
        pages = corpus_pages(args.sources * args.articles)
    except FileNotFoundError as exc:
        console.print(f"skipped: {exc}")
        return 0
    with tempfile.TemporaryDirectory(prefix="crawler-scale-") as tmp:
        root = Path(tmp)
        servers = start_servers(root, console)
        if servers is None:
            return 0
        pg, rd = servers
        try:
            runs = crawl_all(args, pages, root, pg, rd, console)
        finally:
            stop_servers(pg, rd)
    results = summarise(args, runs, started)
    print_table(console, results)
    save(args.out, results)
    console.print(f"written to {args.out} (key scale_out)")
    return 0 if all(r["exactly_once"] for r in runs) else 1


def start_servers(root: Path, console: Console) -> tuple[PgServer, RedisServer] | None:
    """PostgreSQL and Redis, or None after printing why the bench is skipped."""
    pg_folder, redis_folder = root / "pg", root / "redis"
    pg_folder.mkdir()
    redis_folder.mkdir()
    root.chmod(0o755)  # PostgreSQL may run as another user (as root, the bench runs it as `postgres`)
    pg, reason = start_postgres(pg_folder)
    if pg is None:
        console.print(f"skipped: {reason}")
        return None
    rd, reason = start_redis(redis_folder)
    if rd is None:
        stop_servers(pg, None)
        console.print(f"skipped: {reason}")
        return None
    return pg, rd


def stop_servers(pg: PgServer, rd: RedisServer | None) -> None:
    binaries = _binaries()
    if binaries is not None:
        _run([str(binaries / "pg_ctl"), "-D", str(pg.folder / "data"), "-m", "immediate", "stop"], _user())
    if rd is not None:
        rd.process.terminate()
        try:
            rd.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rd.process.kill()
            rd.process.wait()


def crawl_all(
    args: argparse.Namespace,
    pages: list[tuple[str, bytes]],
    root: Path,
    pg: PgServer,
    rd: RedisServer,
    console: Console,
) -> list[dict[str, Any]]:
    site = BenchSite(pages, args.sources, args.articles, args.hosts)
    clock = Clock()
    for host in site.hosts:
        clock.wrap(host)
    words = vocabulary(pages)
    runs = []
    try:
        # In turn (1, 2, 4, 1, 2, 4...), so a change in the machine's load falls on every K alike.
        for i, k in enumerate(args.counts * args.repeat):
            console.print(f"K={k}: {len(pages)} pages, {k} worker(s), load {os.getloadavg()[0]:.2f}...")
            self_before = resource.getrusage(resource.RUSAGE_SELF)
            result = one_run(k, root / f"run{i + 1}-k{k}", pg, rd, site, clock, words)
            self_after = resource.getrusage(resource.RUSAGE_SELF)
            spent = self_after.ru_utime + self_after.ru_stime - self_before.ru_utime - self_before.ru_stime
            result["cpu_s"]["bench_site_and_polling"] = round(spent, 2)  # whole run, warm-up included
            runs.append(result)
    finally:
        site.close()
    return runs


def summarise(args: argparse.Namespace, runs: list[dict[str, Any]], started: float) -> dict[str, Any]:
    by_k: dict[int, dict[str, Any]] = {}
    for k in args.counts:
        mine = [r for r in runs if r["workers"] == k]
        by_k[k] = {
            "runs": len(mine),
            "articles_per_s_median": statistics.median(r["articles_per_s"] for r in mine),
            "seconds_median": statistics.median(r["seconds"] for r in mine),
            "cpu_workers_s_median": statistics.median(r["cpu_workers_s"] for r in mine),
        }
    base = by_k[1]["articles_per_s_median"] if 1 in by_k else None
    for r in [*runs, *by_k.values()]:
        rate = r.get("articles_per_s") or r.get("articles_per_s_median")
        r["speedup_vs_1"] = rate / base if base and rate else None
    return {
        "parameters": {
            "sources": args.sources, "articles_per_source": args.articles, "hosts": args.hosts,
            "pages": args.sources * args.articles, "workers": args.counts, "fetch_per_host": 2,
            "fetch_delay_s": 0, "worker_polls": "default", "pool_size_per_worker": pool_size(),
            "warmup_sources_per_worker": WARM_PER_WORKER, "warmup_pages_per_source": WARM_PAGES,
            "quick": args.quick, "repeat": args.repeat,
        },
        "runs": runs,
        "by_workers": {str(k): v for k, v in by_k.items()},  # medians over --repeat runs
        "cores_usable": len(os.sched_getaffinity(0)),
        "cores_online": os.cpu_count(),
        "load_average_end": os.getloadavg(),
        "run_s": time.time() - started,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }  # fmt: skip


def save(path: Path, results: dict[str, Any]) -> None:
    """Update the scale_out key of the shared results file; the other scripts' keys are kept."""
    try:
        data = json.loads(path.read_text("utf-8")) if path.exists() else {}
    except json.JSONDecodeError:
        data = {}
    data["scale_out"] = results
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def print_table(console: Console, r: dict[str, Any]) -> None:
    p = r["parameters"]
    t = Table(title=f"scale-out: {p['pages']} pages, {p['sources']} sources, {r['cores_usable']} cores")
    columns = ("K", "seconds", "articles/s", "speed-up vs K=1", "CPU s per worker",
               "CPU s sched / pg / redis", "filed (dup, failed)", "exactly once")  # fmt: skip
    for name in columns:
        t.add_column(name, justify="right")
    for run in r["runs"]:
        cpu = run["cpu_s"]
        per_worker = " ".join(f"{v:.1f}" for n, v in cpu.items() if n.startswith("worker"))
        speedup = f"{run['speedup_vs_1']:.2f}" if run["speedup_vs_1"] else "-"
        t.add_row(
            str(run["workers"]),
            f"{run['seconds']:.2f}",
            f"{run['articles_per_s']:.1f}",
            speedup,
            f"{per_worker} (sum {run['cpu_workers_s']:.1f})",
            f"{cpu['scheduler']:.1f} / {cpu['postgres']:.1f} / {cpu['redis']:.1f}",
            f"{run['filed']} ({run['duplicate']}, {run['failed']})",
            "yes" if run["exactly_once"] else "NO",
        )
    console.print(t)
    if p["repeat"] > 1:
        medians = ", ".join(
            f"K={k} {m['articles_per_s_median']:.1f}/s"
            + (f" (x{m['speedup_vs_1']:.2f})" if m["speedup_vs_1"] else "")
            for k, m in r["by_workers"].items()
        )
        console.print(f"medians over {p['repeat']} runs: {medians}")
    for run in r["runs"]:
        load = run["load_average"]
        console.print(
            f"K={run['workers']}: polls per worker (warm-up's included) {run['polls_per_worker']}, "
            f"pool processes {run['pool_processes']}, load {load['start'][0]:.2f} -> {load['end'][0]:.2f}"
            + (f", {len(run['log_errors'])} error line(s) in the logs" if run["log_errors"] else "")
            + (f", failures: {run['failure_reasons']}" if run["failure_reasons"] else "")
        )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
