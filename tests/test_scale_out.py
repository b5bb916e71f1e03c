"""Scale-out on real servers: two scheduler nodes and two workers as separate processes, over 50 sources.

PostgreSQL and Redis are throwaway servers the tests start (tests/pg_server.py, tests/redis_server.py; they
skip with the reason where Debian's packages cannot be installed). One scenario, in phases, checked step by
step: the leader queues every source, two workers file every item exactly once (a story listed by all 50
feeds too); a worker SIGKILLed mid-crawl loses nothing (the other claims its requests); the leader
SIGKILLed, the standby takes over within 30 s and writes the next digest, once; a third node taking over
after it does not write that digest again.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, Route, Site, article_html, crawler_cmd, lorem, rss, write_config
from pg_server import PgServer, postgres_fixture  # noqa: F401  (fixtures used by name)
from redis_server import RedisServer, redis_server_fixture  # noqa: F401
from service_helpers import check_archive, disk_state, filed_urls, kill_group, log_text, wait_for
from sqlalchemy import create_engine, text

SOURCES = 50
ARTICLES = 4  # of its own per source, plus the one wire story every source lists
WIRE = "/wire/summit.html"
PER_HOST = 3
CLAIM_AFTER = 3  # seconds; the default is 60
PAUSE = 4  # seconds of Retry-After


@dataclass
class Cluster:
    cfg: Path
    data: Path
    pg_url: str
    redis_url: str
    site: Site
    logs: Path
    urls: set[str] = field(default_factory=set)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, role: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crawler", "run", "--role", role, "--config", str(self.cfg)],
            stdout=subprocess.DEVNULL,
            stderr=(self.logs / f"{name}.log").open("ab"),
            cwd=ROOT,
            env={**os.environ},
            start_new_session=True,  # kill_group reaches its extraction processes too
        )
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return log_text(self.logs / f"{name}.log")

    def all_logs(self) -> str:
        return "".join(self.log(name) for name in self.procs)

    def count(self, sql: str) -> int:
        engine = create_engine(self.pg_url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(text(sql)).scalar_one())
        finally:
            engine.dispose()


def _publish(site: Site) -> set[str]:
    """50 feeds of 4 articles each, all listing one wire story too; returns every article URL."""
    site.set(WIRE, article_html("Summit closes with a joint statement", lorem("the wire summit story", 6)))
    urls = {site.url(WIRE)}
    for s in range(SOURCES):
        entries = [(WIRE, "Summit closes with a joint statement")]
        for a in range(ARTICLES):
            path, title = f"/s{s}/a{a}.html", f"Source {s} report {a}"
            site.set(path, article_html(title, lorem(f"source {s} article {a}")))
            entries.append((path, title))
            urls.add(site.url(path))
        site.set(f"/s{s}/feed.xml", rss(site, entries), content_type="application/rss+xml")
    return urls


@pytest.fixture(scope="module")
def cluster(
    postgres: PgServer, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("scale")
    site = Site()
    site.delay = 0.02  # slow enough that several requests overlap, so the per-host limit is exercised
    pg_url, redis_url = postgres.new_database(), redis_server.new_database()
    sources = [{"name": f"s{i}", "url": site.url(f"/s{i}/feed.xml")} for i in range(SOURCES)]
    settings = {
        "database": pg_url,
        "queue": redis_url,
        "queue_claim_after": f"{CLAIM_AFTER}s",
        "worker_polls": 8,
        "every": "15s",  # first polls spread over 15 s (min(interval, the 5 min catch-up window))
        "fetch": {"delay": 0, "per_host": PER_HOST, "timeout": 20, "allow_private_networks": True},
        "http": {"listen": "127.0.0.1:0"},  # each worker on a free port of its own, named in its log
    }
    cfg = write_config(root / "config", sources, settings)
    migrated = crawler_cmd("migrate", "--config", str(cfg))
    assert migrated.returncode == 0, migrated.stderr
    logs = root / "logs"
    logs.mkdir()
    c = Cluster(cfg, cfg / "data", pg_url, redis_url, site, logs)
    c.urls = _publish(site)
    try:
        yield c
    finally:
        for proc in c.procs.values():
            kill_group(proc)
        site.close()


def _leading(c: Cluster, name: str) -> bool:
    if c.procs[name].poll() is not None:
        raise AssertionError(f"{name} exited with {c.procs[name].returncode}:\n{c.log(name)[-3000:]}")
    return ": leading" in c.log(name)


def test_a_leader_a_standby_and_two_workers_file_everything_once(cluster: Cluster) -> None:
    c = cluster
    c.start("leader", "scheduler")
    wait_for(lambda: _leading(c, "leader"), 60, "the first scheduler to lead")
    c.start("standby", "scheduler")
    wait_for(lambda: "standing by" in c.log("standby"), 60, "the second scheduler to stand by")
    c.start("w1", "worker")
    c.start("w2", "worker")

    # Kill the first worker mid-crawl: some items are filed, more are under way.
    wait_for(lambda: c.count("SELECT count(*) FROM items") >= 40, 120, "40 items filed")
    kill_group(c.procs["w1"])
    filed_at_kill = c.count("SELECT count(*) FROM items")
    assert filed_at_kill < len(c.urls), "the crawl ended before the kill: the test would prove nothing"

    wait_for(lambda: c.count("SELECT count(*) FROM items") >= len(c.urls), 120, "every item filed")
    polled = "SELECT count(DISTINCT source) FROM polls"
    wait_for(lambda: c.count(polled) == SOURCES, 60, "every source polled")
    time.sleep(1.0)  # anything filed twice would land now
    assert c.count("SELECT count(*) FROM items") == len(c.urls)
    assert c.count("SELECT count(DISTINCT url) FROM items") == len(c.urls)
    complete, temps, orphans = disk_state(c.data)
    assert len(complete) == len(c.urls) and not temps and not orphans
    urls = filed_urls(c.data)
    assert sorted(urls) == sorted(c.urls)  # each URL once on disk
    numbers = sorted(int(p.split("/")[-1].split("_")[0]) for p in complete)
    # NNN from the database: never two the same. A worker killed between taking a number and writing its
    # file leaves a gap; it has one writer thread, so one number at most.
    assert len(set(numbers)) == len(numbers)
    assert numbers[-1] <= len(c.urls) + 1
    # The wire story every feed lists: filed once (above), and the other sources' copies are duplicates.
    assert c.count("SELECT sum(duplicate) FROM polls") >= 1
    assert "took over a poll request a worker left unfinished" in c.log("w2")
    assert c.site.max_active <= PER_HOST  # the per-host limit held across both workers
    assert c.site.max_active >= 2  # and the test did overlap requests
    check_archive(c.data)

    # The worker's monitoring endpoint: health from its contact with the queue, and the metrics of its polls.
    health, metrics = _endpoint(c, "w2")
    assert health["status"] == "ok" and health["role"] == "worker" and health["polls_done"] >= 1
    assert re.search(r'^crawler_items_filed_total\{source="s\d+"\} [1-9]', metrics, re.M)
    # The schedulers' endpoints: who leads, and the queue's depth (empty now: everything polled).
    health, metrics = _endpoint(c, "leader")
    assert health["status"] == "ok" and health["leading"] is True and health["sources_scheduled"] == SOURCES
    assert re.search(r"^crawler_scheduler_leading 1\.0$", metrics, re.M)
    assert re.search(r'^crawler_poll_requests\{state="waiting"\} \d', metrics, re.M)
    health, metrics = _endpoint(c, "standby")
    assert (health["status"], health["reason"], health["leading"]) == ("ok", "standing by", False)
    assert re.search(r"^crawler_scheduler_leading 0\.0$", metrics, re.M)


def _endpoint(c: Cluster, name: str) -> tuple[dict[str, Any], str]:
    """/healthz (as JSON) and /metrics of a node's endpoint, found from the port its log names."""
    found = re.search(r"http: serving /healthz, /metrics and /sources on (http://\S+)", c.log(name))
    assert found, c.log(name)[-2000:]
    with urllib.request.urlopen(found.group(1) + "/healthz", timeout=10) as answer:
        health = json.loads(answer.read())
    with urllib.request.urlopen(found.group(1) + "/metrics", timeout=10) as answer:
        return health, answer.read().decode()


def test_a_retry_after_pauses_the_host_for_every_worker(cluster: Cluster) -> None:
    c = cluster
    if "w2" not in c.procs:
        pytest.skip("needs the cluster of the test before")
    c.start("w3", "worker")
    wait_for(lambda: " started: polls from " in c.log("w3"), 60, "a second worker again")
    # A new article on s0 answers 429 with Retry-After: 4 the first time it is asked for.
    late = "/s0/late.html"
    c.site.set(late, article_html("A late report from the summit", lorem("the late report")))
    c.site.once[late] = Route(429, b"slow down", {"Retry-After": str(PAUSE), "Content-Type": "text/plain"})
    entries = [(late, "A late report from the summit"), (WIRE, "Summit closes with a joint statement")]
    entries += [(f"/s0/a{a}.html", f"Source 0 report {a}") for a in range(ARTICLES)]
    c.site.set("/s0/feed.xml", rss(c.site, entries), content_type="application/rss+xml")

    def refused() -> float | None:
        with c.site.lock:
            return next((t for t, path, status in c.site.answered if path == late and status == 429), None)

    wait_for(lambda: refused() is not None, 60, "the 429")
    at = refused()
    assert at is not None
    filed = f"SELECT count(*) FROM items WHERE url = '{c.site.url(late)}'"
    wait_for(lambda: c.count(filed) == 1, 60, "the late report filed at a later poll")
    with c.site.lock:
        answered = [t for t, _path, _status in c.site.answered]
    # Requests already past the limiter when the 429 came may land just after it; then, while the host is
    # paused, nothing from either worker; the requests held back go out as soon as the pause ends.
    assert [t for t in answered if at + 0.5 < t < at + PAUSE - 0.5] == []
    assert [t for t in answered if at + PAUSE - 0.5 <= t < at + PAUSE + 3]
    assert c.count("SELECT count(*) FROM items") == len(c.urls) + 1


def test_the_standby_takes_over_and_writes_the_next_digest_once(cluster: Cluster) -> None:
    c = cluster
    if "leader" not in c.procs:
        pytest.skip("needs the cluster of the test before")
    kill_group(c.procs["leader"])
    killed = time.monotonic()
    wait_for(lambda: _leading(c, "standby"), 30, "the standby to take over within 30 s")
    took = time.monotonic() - killed
    # The next digest, due in a few seconds: set by editing the config, which the new leader reloads.
    at = (datetime.now(UTC) + timedelta(seconds=6)).strftime("%H:%M:%S")
    settings = yaml.safe_load((c.cfg / "crawler.yaml").read_text("utf-8"))
    settings["digest"] = {"at": at}
    (c.cfg / "crawler.yaml").write_text(yaml.safe_dump(settings), "utf-8")
    # The leader watches the folder, but its watch may start just after this edit: SIGHUP says it for sure.
    wait_for(lambda: "source(s) scheduled" in c.log("standby"), 10, "the new leader's schedule")
    c.procs["standby"].send_signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded: " in c.log("standby"), 10, "the new leader to reload")
    day = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    md = c.data / "digests" / f"{day}.md"
    wait_for(md.exists, 60, "the digest to be written")
    wait_for(lambda: f"digest for {day} written" in c.log("standby"), 10, "the digest's log line")

    # A third node takes over from the second: it writes the digests that are missing, not this one.
    c.start("third", "scheduler")
    wait_for(lambda: "standing by" in c.log("third"), 60, "the third scheduler to stand by")
    c.procs["third"].send_signal(signal.SIGHUP)  # a reload asked of a standby: noted, never fatal
    wait_for(lambda: "SIGHUP: standing by" in c.log("third"), 10, "the standby to note the SIGHUP")
    assert c.procs["third"].poll() is None
    c.procs["standby"].send_signal(signal.SIGTERM)
    assert c.procs["standby"].wait(timeout=30) == 0
    wait_for(lambda: _leading(c, "third"), 30, "the third scheduler to take over")
    time.sleep(1.0)
    written = re.findall(rf"digest for {day} written", c.all_logs())
    assert len(written) == 1, c.all_logs()[-3000:]
    assert c.count(f"SELECT count(*) FROM digests WHERE day = '{day}' AND written_at IS NOT NULL") == 1
    assert took < 30


def test_every_node_stops_cleanly_on_sigterm(cluster: Cluster) -> None:
    c = cluster
    running = {name: proc for name, proc in c.procs.items() if proc.poll() is None}
    if len(running) < 3:
        pytest.skip("needs the cluster of the tests before")
    # Redis restarted without its data: the workers make the queue again and go on.
    import redis

    client = redis.Redis.from_url(c.redis_url)
    try:
        client.flushdb()
    finally:
        client.close()
    recreated = lambda: "recreating it" in c.log("w2") + c.log("w3")  # noqa: E731
    try:
        wait_for(recreated, 30, "a worker to recreate the queue")
    except AssertionError:
        raise AssertionError(c.log("w2")[-3000:] + c.log("w3")[-3000:]) from None
    for proc in running.values():
        proc.send_signal(signal.SIGTERM)
    codes = {name: proc.wait(timeout=30) for name, proc in running.items()}
    assert codes == {name: 0 for name in running}
    text = c.all_logs()
    assert "Traceback" not in text
    assert " ERROR " not in text, [line for line in text.splitlines() if " ERROR " in line]
    for name in running:
        assert "stopped" in c.log(name).splitlines()[-1]
