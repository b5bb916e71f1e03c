"""End-to-end benchmark against the CPU limit: how much the crawler adds to the extraction it cannot avoid.

Usage: python bench/pipeline_bench.py [--quick] [--sources N] [--articles M] [--hosts H] [--cycles C]
                                      [--delay S] [--per-host K] [--out FILE]

One run measures, on a local site of N sources x M corpus pages served from H loopback addresses
(127.0.0.2, 127.0.0.3, ...; see bench/benchsite.py):

  a. articles filed per second, end to end: the real crawler (crawler.runtime, open_resources, poll_source,
     the Scrapy downloader, the worker pool, the writer thread) in a process of its own
     (bench/crawl_child.py), polling every source at once, from the first request to the last file;
  b. bare trafilatura on the same pages, already in memory, in a process pool of the crawler's pool size
     (bench/bare_extract.py), run before and after (a); the ratio a/b (target >= 0.9);
  c. a re-poll of every source with nothing new: requests at the sites by kind, article fetches (must be 0);
  d. peak RSS, and RSS over C poll cycles (one new article per cycle), flat within 10% after warm-up;
  e. the cost of filing one article with 1k, 10k and 100k items already archived (must stay flat);
  f. the time to write the digest of a day with 5,000 items.

It prints a table and writes bench/results.json (the ratio a/b under ratio_end_to_end_vs_bare).

Politeness: the default is fetch.delay 0 with per_host 2 over 6 hosts, so the run is bound by the CPU, which
is what the ratio is about; with the crawler's default delay of 1 s a run of 240 pages over 6 hosts would take
at least 40 s whatever the CPU, and would measure the delay (try --delay 1 to see it).

The sites run in this process; the crawler and the bare pool each use `pool_size()` worker processes. The
machine's load average is recorded, since other work on it slows both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml
from archive_scale import busy_day_cost, digest_cost, filing_cost
from bare_extract import run_bare
from benchsite import CORPORA, BenchSite, corpus_pages
from crawl_child import WARM_PAGE
from rich.console import Console
from rich.table import Table

from crawler.config import load_config
from crawler.extract import extract_article
from crawler.models import Article
from crawler.workers import pool_size

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ANSWER_TIMEOUT = 900.0  # seconds a child may take for one command before the bench gives up


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run: 4 x 10 pages, 20 cycles, 1k/10k")
    p.add_argument("--sources", type=int, help="N sources (default 12)")
    p.add_argument("--articles", type=int, help="M articles per source (default 20; N x M <= 271)")
    p.add_argument("--hosts", type=int, help="loopback addresses to spread the sources over (default 6)")
    p.add_argument("--cycles", type=int, help="poll cycles for the RSS curve (default 200)")
    p.add_argument("--delay", type=float, default=0.0, help="fetch.delay in seconds (default 0)")
    p.add_argument("--per-host", type=int, default=2, help="fetch.per_host (default 2, the crawler's)")
    p.add_argument("--sizes", type=int, nargs="*", help="archive sizes for (e) (default 1000 10000 100000)")
    p.add_argument("--digest-items", type=int, help="items of the digest's day for (f) (default 5000)")
    p.add_argument("--out", type=Path, default=HERE / "results.json")
    args = p.parse_args(argv)
    quick = args.quick
    args.sources = args.sources or (4 if quick else 12)
    args.articles = args.articles or (10 if quick else 20)
    args.hosts = args.hosts or (2 if quick else 6)
    args.cycles = args.cycles if args.cycles is not None else (20 if quick else 200)
    args.sizes = args.sizes or ([1000, 10_000] if quick else [1000, 10_000, 100_000])
    args.digest_items = args.digest_items or (1000 if quick else 5000)
    if args.sources * args.articles > 271:
        p.error("N x M must be at most 271: each corpus page is used once per run")
    return args


def vocabulary() -> list[str]:
    """Words of the corpus' English ground truths, for synthetic texts that read like news to the code."""
    truth = json.loads((CORPORA / "article-extraction-benchmark" / "ground-truth.json").read_text("utf-8"))
    words = Counter(w for item in truth.values() for w in re.findall(r"[A-Za-z]{3,}", item["articleBody"]))
    return sorted(w for w, n in words.items() if n >= 2)


def write_config(folder: Path, site: BenchSite, delay: float, per_host: int) -> Path:
    folder.mkdir(parents=True)
    settings = {
        "data_dir": "../data",
        "timezone": "UTC",
        "fetch": {"delay": delay, "per_host": per_host, "allow_private_networks": True, "timeout": 30},
    }
    (folder / "crawler.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    (folder / "sources.yaml").write_text(yaml.safe_dump(site.sources_yaml()), encoding="utf-8")
    # The shipped topic rules: flagging costs what it costs in real use.
    shutil.copyfile(ROOT / "config" / "topics.yaml", folder / "topics.yaml")
    return folder


class Child:
    """bench/crawl_child.py: the crawler in its own process, one command per line."""

    def __init__(self, config_dir: Path, log: Path):
        self.log = log
        # CRAWLER_BENCH_PROFILE=FILE records the crawler process and its workers with py-spy (installed
        # by hand: it is not a dependency), as collapsed stacks for flame graphs or grep.
        profile = os.environ.get("CRAWLER_BENCH_PROFILE")
        prefix = ["py-spy", "record", "-r", "250", "--gil", "-f", "raw", "-o", profile, "--"]
        self.proc = subprocess.Popen(
            [*(prefix if profile else []), sys.executable, str(HERE / "crawl_child.py"), str(config_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
        )

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = " "
        while line and not line.startswith("{"):  # a profiler's own lines (py-spy) are skipped
            ready, _, _ = select.select([self.proc.stdout], [], [], ANSWER_TIMEOUT)
            line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the crawler process gave no answer to {command!r}:\n{tail}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def by_kind(before: Counter[str], after: Counter[str]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in sorted(after) if after[k] - before[k]}


def end_to_end(site: BenchSite, config_dir: Path, cycles: int, vocab: list[str]) -> dict[str, Any]:
    """Parts a, c and d, in one crawler process."""
    child = Child(config_dir, config_dir.parent / "crawler.log")
    try:
        warm = child.ask("warm")
        before = site.snapshot()
        first = child.ask("poll")
        first["requests"] = by_kind(before, site.snapshot())
        before = site.snapshot()
        again = child.ask("poll")
        again["requests"] = by_kind(before, site.snapshot())
        again["article_fetches"] = sum(n for k, n in again["requests"].items() if k.startswith("article"))
        samples = []
        before = site.snapshot()
        for _ in range(cycles):
            site.add_article(vocab)
            answer = child.ask("poll")
            samples.append({k: answer[k] for k in ("wall_s", "new", "failed", "rss_kb", "rss_workers_kb")})
        cycle_requests = by_kind(before, site.snapshot())
        last = child.ask("warm") if cycles else first  # a final memory reading, peaks included
    finally:
        child.close()
    return {
        "warm": warm,
        "first": first,
        "again": again,
        "cycles": rss_curve(samples, cycle_requests),
        "peak": {k: last[k] for k in ("hwm_kb", "hwm_workers_kb")},
    }


def rss_curve(samples: list[dict[str, Any]], requests: dict[str, int]) -> dict[str, Any]:
    """RSS after warm-up (the first tenth of the cycles) against RSS at the end; flat means within 10%."""
    out: dict[str, Any] = {"count": len(samples), "requests": requests}
    if len(samples) < 4:
        return out
    warm = max(1, len(samples) // 10)
    window = max(1, min(10, (len(samples) - warm) // 2))
    after_warm, end = samples[warm : warm + window], samples[-window:]
    for key in ("rss_kb", "rss_workers_kb"):
        start = sum(s[key] for s in after_warm) / window
        final = sum(s[key] for s in end) / window
        out[key] = {"after_warmup": start, "end": final, "growth": final / start - 1 if start else 0.0}
    total = [s["rss_kb"] + s["rss_workers_kb"] for s in samples]
    start, final = sum(total[warm : warm + window]) / window, sum(total[-window:]) / window
    out["total_kb"] = {"after_warmup": start, "end": final, "growth": final / start - 1, "max": max(total)}
    out["flat"] = abs(out["rss_kb"]["growth"]) <= 0.10 and abs(out["total_kb"]["growth"]) <= 0.10
    out["new"] = sum(s["new"] for s in samples)
    out["failed"] = sum(s["failed"] for s in samples)
    out["mean_cycle_s"] = sum(s["wall_s"] for s in samples) / len(samples)
    out["series_total_kb"] = total
    return out


def real_articles(pages: list[tuple[str, bytes]], count: int) -> list[Article]:
    found = []
    for name, body in pages:
        article = extract_article(body, f"http://bench.example/{name}")
        if article is not None and len(article.body) > 1000:
            found.append(article)
        if len(found) == count:
            break
    return found


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cpu": model,
        "cores_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "trafilatura": version("trafilatura"),
        "scrapy": version("scrapy"),
        "platform": platform.platform(),
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    console = Console()
    started = time.time()
    load_start = os.getloadavg()
    pages = corpus_pages(args.sources * args.articles)
    vocab = vocabulary()
    size = pool_size()
    console.print(f"{len(pages)} pages, pool of {size}, load {load_start[0]:.2f}: bare extraction...")
    bare_before = run_bare(pages, size, WARM_PAGE)
    with tempfile.TemporaryDirectory(prefix="crawler-bench-") as tmp:
        site = BenchSite(pages, args.sources, args.articles, args.hosts)
        try:
            config_dir = write_config(Path(tmp) / "config", site, args.delay, args.per_host)
            console.print(f"end to end, re-poll, {args.cycles} poll cycles...")
            e2e = end_to_end(site, config_dir, args.cycles, vocab)
        finally:
            site.close()
        console.print("bare extraction again...")
        bare_after = run_bare(pages, size, WARM_PAGE)
        config = load_config(config_dir)
        console.print(f"filing with {', '.join(map(str, args.sizes))} archived items...")
        articles = real_articles(pages, 15)
        filing = filing_cost(config, args.sizes, articles, vocab)
        busy = busy_day_cost(config, articles, args.digest_items)
        console.print(f"digest of {args.digest_items} items...")
        digest = digest_cost(config, args.digest_items, vocab)
    results = summarise(args, size, pages, bare_before, bare_after, e2e, filing, digest)
    results["e_filing_busy_day"] = busy
    results["load_average"] = {"start": load_start, "end": os.getloadavg()}
    results["machine"] = machine()
    results["run_s"] = time.time() - started
    # Other benchmarks keep their figures in the same file (scale_bench.py: "scale_out"): keep theirs.
    kept = json.loads(args.out.read_text("utf-8")) if args.out.exists() else {}
    kept.update(results)
    args.out.write_text(json.dumps(kept, indent=2) + "\n", encoding="utf-8")
    print_table(console, results)
    console.print(f"written to {args.out}")
    return 0


def summarise(
    args: argparse.Namespace,
    size: int,
    pages: list[tuple[str, bytes]],
    bare_before: dict[str, float],
    bare_after: dict[str, float],
    e2e: dict[str, Any],
    filing: list[dict[str, Any]],
    digest: dict[str, Any],
) -> dict[str, Any]:
    first = e2e["first"]
    wall = first["to_last_file_s"] or first["wall_s"]
    bare_wall = (bare_before["wall_s"] + bare_after["wall_s"]) / 2
    bare_cpu = (bare_before["cpu_s"] + bare_after["cpu_s"]) / 2
    filed = first["new"]
    # The same pages on both sides, so the ratio of throughputs is the ratio of times: pages the crawler
    # handled per second over pages bare trafilatura extracted per second.
    ratio = (len(pages) / wall) / (len(pages) / bare_wall)
    medians = [f["median_ms"] for f in filing]
    return {
        "parameters": {
            "sources": args.sources, "articles_per_source": args.articles, "hosts": args.hosts,
            "pages": len(pages), "cycles": args.cycles, "fetch_delay_s": args.delay,
            "fetch_per_host": args.per_host, "pool_size": size, "quick": args.quick,
        },
        "a_end_to_end": {
            "pages": len(pages), "filed": filed, "failed": first["failed"], "duplicate": first["duplicate"],
            "wall_s": first["wall_s"], "to_last_file_s": first["to_last_file_s"],
            "filed_per_s": filed / wall, "pages_per_s": len(pages) / wall, "cpu_s": first["cpu_s"],
            "cpu_main_s": first["cpu_main_s"], "cpu_workers_s": first["cpu_workers_s"],
            "cpu_main_threads_s": first.get("cpu_main_threads_s", {}),
            "requests": first["requests"], "failures": first["failures"], "errors": first["errors"],
        },
        "b_bare_extraction": {
            "before": bare_before, "after": bare_after, "wall_s": bare_wall, "cpu_s": bare_cpu,
            "pages_per_s": len(pages) / bare_wall,
        },
        "ratio_end_to_end_vs_bare": ratio,
        "ratio_cpu_bare_vs_end_to_end": bare_cpu / first["cpu_s"] if first["cpu_s"] else None,
        "c_repoll": {
            "wall_s": e2e["again"]["wall_s"], "requests": e2e["again"]["requests"],
            "article_fetches": e2e["again"]["article_fetches"],
            "unchanged_sources": e2e["again"]["unchanged"],
            "new": e2e["again"]["new"],
        },
        "d_memory": {"peak_kb": e2e["peak"], "after_warm_kb": e2e["warm"], "cycles": e2e["cycles"]},
        "e_filing": filing,
        "f_digest": digest,
        "targets": {
            "ratio_at_least_0.9": ratio >= 0.9,
            "repoll_no_article_fetch": e2e["again"]["article_fetches"] == 0,
            "rss_flat_10pct": e2e["cycles"].get("flat"),
            "filing_flat": max(medians) <= 2 * min(medians) if medians else None,
        },
    }  # fmt: skip


def print_table(console: Console, r: dict[str, Any]) -> None:
    a, b, c, d = r["a_end_to_end"], r["b_bare_extraction"], r["c_repoll"], r["d_memory"]
    cyc = d["cycles"]
    t = Table(title=f"crawler end-to-end benchmark ({r['parameters']['pages']} pages)")
    t.add_column("part")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row("a", "articles filed / s, end to end", f"{a['filed_per_s']:.2f} ({a['filed']} filed)")
    t.add_row("a", "pages / s, end to end", f"{a['pages_per_s']:.2f} in {a['to_last_file_s']:.1f} s")
    t.add_row("b", "pages / s, bare trafilatura", f"{b['pages_per_s']:.2f} in {b['wall_s']:.1f} s")
    t.add_row("a/b", "ratio (target >= 0.9)", f"{r['ratio_end_to_end_vs_bare']:.3f}")
    if r["ratio_cpu_bare_vs_end_to_end"]:
        t.add_row("a/b", "CPU: bare / end to end", f"{r['ratio_cpu_bare_vs_end_to_end']:.3f}")
        cpu = f"{a['cpu_main_s']:.1f} + {a['cpu_workers_s']:.1f} (bare {b['cpu_s']:.1f})"
        t.add_row("a", "CPU s: crawler + workers", cpu)
        short = {"MainThread": "loop", "archive-writer": "writer"}  # the event loop (Scrapy), filing
        threads = a.get("cpu_main_threads_s", {})
        top = sorted(threads.items(), key=lambda kv: -kv[1])[:2]
        if top:
            shown = ", ".join(f"{short.get(k, k)} {v:.1f}" for k, v in top)
            t.add_row("a", "CPU s: crawler's threads", shown)
    t.add_row("c", "re-poll wall time", f"{c['wall_s']:.2f} s")
    t.add_row("c", "re-poll requests", ", ".join(f"{k}: {n}" for k, n in c["requests"].items()))
    t.add_row("c", "article fetches (must be 0)", str(c["article_fetches"]))
    t.add_row(
        "d", "peak RSS, crawler / workers (MiB)", _mib(d["peak_kb"]["hwm_kb"], d["peak_kb"]["hwm_workers_kb"])
    )
    if "total_kb" in cyc:
        tot = cyc["total_kb"]
        t.add_row(
            "d",
            f"RSS total over {cyc['count']} cycles (MiB)",
            f"{tot['after_warmup'] / 1024:.0f} -> {tot['end'] / 1024:.0f} ({tot['growth']:+.1%})",
        )
        rss = cyc["rss_kb"]
        t.add_row(
            "d",
            "RSS crawler process (MiB)",
            f"{rss['after_warmup'] / 1024:.0f} -> {rss['end'] / 1024:.0f} ({rss['growth']:+.1%})",
        )
        t.add_row("d", "mean poll cycle", f"{cyc['mean_cycle_s'] * 1000:.0f} ms ({cyc['new']} new)")
    for f in r["e_filing"]:
        t.add_row(
            "e",
            f"file one item, {f['archived']:,} archived",
            f"{f['median_ms']:.1f} ms (max {f['max_ms']:.1f})",
        )
    busy = r["e_filing_busy_day"]
    t.add_row(
        "e",
        f"file one item, {busy['filed_today']:,} filed today",
        f"{busy['median_ms']:.1f} ms (max {busy['max_ms']:.1f})",
    )
    f = r["f_digest"]
    t.add_row("f", f"digest of {f['items']:,} items", f"{f['write_s']:.2f} s")
    load = r["load_average"]
    t.add_row("", "load average start / end", f"{load['start'][0]:.2f} / {load['end'][0]:.2f}")
    console.print(t)
    missed = [k for k, ok in r["targets"].items() if ok is False]
    console.print("targets missed: " + (", ".join(missed) if missed else "none"))


def _mib(*kb: int) -> str:
    return " / ".join(f"{k / 1024:.0f}" for k in kb)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
