"""The service against hostile servers: one `crawler run` polls a source per misbehaviour (no answer, a byte
a second, a 1 GiB body, a gzip bomb, redirect loops and file:// redirects, HTTP errors, wrong content types,
truncated XML, binary garbage, entity attacks, 100,000 entries, a 50 MB article, a windows-1251 page without
a charset, NUL bytes, titles with control characters and HTML) beside two good feeds.

The service starts with the good feeds alone; once their articles are filed its memory (the service and its
worker processes) is the baseline. The hostile sources are then added to sources.yaml (the service reloads
it) and polled once each. Every case is then its own test item: the service stayed up, its memory stayed
under RSS_BOUND over the baseline, the source's failure was recorded with its reason, nothing was filed that
should not be, what should be was filed cleanly, and no local file was read.
"""

from __future__ import annotations

import json
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import unicodedata
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
import yaml
from conftest import ROOT, Site, article_html, lorem, rss, write_config
from hostile_servers import HostileServer, RawServer, big_page, endless_feed, gzip_bomb
from service_helpers import check_archive, kill_group, log_text, start_service, stop, wait_for, wait_for_lock

from crawler.feeds import MAX_FEED_ENTRIES, FeedError, parse_feed, read_feed

# The service and its workers may grow by at most this much over their steady state while the hostile
# sources are polled (a 15 MiB body held by Scrapy, its copy sent to a worker, a feed parsed there).
RSS_BOUND_MB = 200
TIMEOUT = 3  # fetch.timeout: the silent and the trickling server are given up after this
MAX_BYTES = 15 * 1024 * 1024  # the default fetch.max_bytes, stated here to name it in the reasons
GIB = 1 << 30
CANARY = "canary-7f3a9c51e2d84b06-never-read"


@dataclass
class Case:
    """What a hostile source must lead to."""

    error: str | None = None  # regex the source's recorded error must match (None: the poll succeeds)
    filed: int = 0  # articles of this source that must be filed
    item_failure: str | None = None  # regex one of the poll's item failures must match
    log: str | None = None  # regex a line of the service's log must match


# In polling order: the first goes at once, the others spread over their interval. hundred-k leads: its
# 1000 article requests take longest.
CASES: dict[str, Case] = {
    "hundred-k": Case(
        item_failure=r"/k/\d+: HTTP 404$",
        log=rf"hundred-k: the feed lists 100000 entries: took the {MAX_FEED_ENTRIES} newest",
    ),
    "silent": Case(error=rf"^timed out after {TIMEOUT} s$"),
    "trickle": Case(error=rf"^timed out after {TIMEOUT} s$"),
    "gigabyte": Case(error=rf"^response over {MAX_BYTES} bytes \(fetch\.max_bytes\), aborted$"),
    "gzip-bomb": Case(error=rf"^response over {MAX_BYTES} bytes once decompressed"),
    "redirect-loop": Case(error=r"^redirect loop: .*/loop/b redirects back to .*/feed$"),
    "redirect-file": Case(error=r"^refused redirect to file:///.*: only http and https URLs are fetched$"),
    "http-404": Case(error=r"^HTTP 404$"),
    "http-410": Case(error=r"^STOPPED: .* answered 410 Gone: polling stopped"),
    "http-429": Case(error=r"^HTTP 429$"),
    "http-500": Case(error=r"^HTTP 500$"),
    "http-503": Case(error=r"^HTTP 503$"),
    "html-as-feed": Case(error=r"^not a feed: an HTML page \(Content-Type: text/html\)"),
    "image-as-feed": Case(error=r"^not a feed: binary data \(Content-Type: application/rss\+xml\), not XML$"),
    "truncated": Case(error=r"^broken feed, no entries could be read: .*"),
    "garbage": Case(error=r"^not a feed: binary data \(Content-Type: application/octet-stream\), not XML$"),
    "billion-laughs": Case(error=r"^refused: the feed declares XML entity &lol\d; built from other entities"),
    "xxe": Case(error=r"^refused: the feed declares an external XML entity &xxe; \(file:///"),
    "big-article": Case(
        filed=1, item_failure=rf"/big\.html: response over {MAX_BYTES} bytes .*Content-Length: 52428800"
    ),
    "cp1251-page": Case(filed=1),
    "nul-bytes": Case(filed=1),
    "control-titles": Case(filed=2),
    "mislabelled-feed": Case(filed=1),
}
GOOD = ("good-1", "good-2")

# -- what the hostile servers serve -----------------------------------------------------------------------

RUSSIAN_TITLE = "Делегация обсудила торговлю и энергетику в Гаване"
RUSSIAN = [
    "Делегация министерства провела в четверг переговоры с представителями правительства о торговле, "
    "энергетике и строительстве новой железной дороги вдоль побережья.",
    "По словам участников, стороны договорились подготовить соглашение о поставках зерна и топлива "
    "до конца года, а также создать совместную рабочую группу по вопросам инвестиций.",
    "Эксперты отмечают, что подобные встречи проходят всё чаще: цены на нефть и газ растут, "
    "а обе страны ищут новых партнёров для экспорта и импорта.",
]


def feed_xml(entries: list[tuple[str, str]], title: str = "Hostile feed") -> str:
    """An RSS 2.0 feed of (absolute link, title XML) entries, newest first."""
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>{format_datetime(now - timedelta(hours=i))}</pubDate></item>"
        for i, (link, t) in enumerate(entries)
    )
    return (
        f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>{title}</title>"
        f"<link>http://example.org/</link><description>x</description>{items}</channel></rss>"
    )


def hundred_k_feed(server: HostileServer) -> bytes:
    # Oldest first, so "the newest" are the last ones in the document: the cap must look at the dates.
    start = datetime.now(UTC) - timedelta(minutes=100_000)  # the newest thousand are recent
    items = "".join(
        f"<item><title>E{i}</title><link>{server.url(f'/k/{i}')}</link>"
        f"<pubDate>{format_datetime(start + timedelta(minutes=i))}</pubDate></item>"
        for i in range(100_000)
    )
    return (
        f"<?xml version='1.0'?><rss version='2.0'><channel><title>k</title>{items}</channel></rss>".encode()
    )


def article(server: HostileServer, path: str, title: str, topic: str) -> str:
    server.set(path, article_html(title, lorem(topic)).encode(), content_type="text/html; charset=utf-8")
    return server.url(path)


RSS_TYPE = "application/rss+xml"
Setup = Callable[[HostileServer, Path], None]


def _gigabyte(s: HostileServer, canary: Path) -> None:
    s.stream("/feed", endless_feed(GIB), content_type=RSS_TYPE)  # no Content-Length: cut as it streams


def _gzip_bomb(s: HostileServer, canary: Path) -> None:
    length, stream = gzip_bomb(10 * GIB)
    s.stream("/feed", stream, length=length, content_type=RSS_TYPE, content_encoding="gzip")


def _redirect_loop(s: HostileServer, canary: Path) -> None:
    s.redirect("/feed", s.url("/loop/a"))
    s.redirect("/loop/a", s.url("/loop/b"))
    s.redirect("/loop/b", s.url("/feed"))


def _redirect_file(s: HostileServer, canary: Path) -> None:
    s.redirect("/feed", canary.as_uri())


def _status(status: int) -> Setup:
    def setup(s: HostileServer, canary: Path) -> None:
        extra = {"retry_after": "120"} if status == 429 else {}
        s.set("/feed", f"<h1>{status}</h1>".encode(), status=status, content_type="text/html", **extra)

    return setup


def _html_as_feed(s: HostileServer, canary: Path) -> None:
    s.set("/feed", article_html("Front page", lorem("front page")).encode(), content_type="text/html")


def _image_as_feed(s: HostileServer, canary: Path) -> None:
    image = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random(1).randbytes(4000)
    s.set("/feed", image, content_type=RSS_TYPE)


def _truncated(s: HostileServer, canary: Path) -> None:
    doc = feed_xml([(article(s, "/t.html", "Truncated story", "truncated feed story"), "Truncated")]).encode()
    s.set("/feed", doc[: doc.index(b"<item>") + 20], content_type=RSS_TYPE)  # cut in the first title


def _garbage(s: HostileServer, canary: Path) -> None:
    s.set("/feed", random.Random(2).randbytes(20_000), content_type="application/octet-stream")


def _billion_laughs(s: HostileServer, canary: Path) -> None:
    link = article(s, "/lol.html", "Laughing story", "laughing story")
    entities = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    dtd = f'<!DOCTYPE rss [<!ENTITY lol0 "lol">{entities}]>'
    s.set("/feed", feed_xml([(link, "&lol9;")]).replace("?>", "?>" + dtd, 1).encode(), content_type=RSS_TYPE)


def _xxe(s: HostileServer, canary: Path) -> None:
    link = article(s, "/xxe.html", "Entity story", "external entity story")
    # A comment holding "<x" before the DOCTYPE hides it from feedparser's own DOCTYPE stripping.
    dtd = f'<!-- <x --><!DOCTYPE rss [<!ENTITY xxe SYSTEM "{canary.as_uri()}">]>'
    doc = feed_xml([(link, "Leak: &xxe;")]).replace("?>", "?>" + dtd, 1)
    s.set("/feed", doc.replace("<description>x", "<description>&xxe;").encode(), content_type=RSS_TYPE)


def _hundred_k(s: HostileServer, canary: Path) -> None:
    s.set("/feed", hundred_k_feed(s), content_type=RSS_TYPE)


def _big_article(s: HostileServer, canary: Path) -> None:
    size = 50 * 1024 * 1024
    s.stream("/big.html", big_page(size), length=size, content_type="text/html")
    small = article(s, "/small.html", "A normal story beside a huge one", "normal story beside huge")
    s.set(
        "/feed", feed_xml([(s.url("/big.html"), "Huge"), (small, "Normal")]).encode(), content_type=RSS_TYPE
    )


def _cp1251_page(s: HostileServer, canary: Path) -> None:
    paragraphs = "".join(f"<p>{p}</p>" for p in RUSSIAN)
    page = f"<html><head><title>{RUSSIAN_TITLE}</title></head><body><article><h1>{RUSSIAN_TITLE}</h1>"
    page += paragraphs + "</article></body></html>"
    s.set("/ru.html", page.encode("cp1251"), content_type="text/html")  # no charset, no <meta>
    s.set("/feed", feed_xml([(s.url("/ru.html"), escape(RUSSIAN_TITLE))]).encode(), content_type=RSS_TYPE)


def _nul_bytes(s: HostileServer, canary: Path) -> None:
    paragraphs = "".join("<p>" + p.replace(" ", " \0", 3) + "</p>" for p in lorem("nul byte story"))
    page = f"<html><head><title>Nul\0 story</title></head><body><article><h1>Nul\0 story</h1>{paragraphs}"
    s.set("/nul.html", page.encode() + b"\0\0</article></body></html>", content_type="text/html")
    doc = feed_xml([(s.url("/nul.html"), "Nul\0 story\0")]).replace("<channel>", "<channel>\0\0", 1)
    s.set("/feed", doc.encode(), content_type=RSS_TYPE)


def _control_titles(s: HostileServer, canary: Path) -> None:
    # Page 1 has no title of its own (the feed's is used); page 2's has raw control characters and markup.
    body = "".join(f"<p>{p}</p>" for p in lorem("control characters story one"))
    s.set(
        "/c1.html", f"<html><body><article>{body}</article></body></html>".encode(), content_type="text/html"
    )
    page2 = article_html("Harbour\x07 and rail\x1b reopen", lorem("control characters story two"))
    page2 = page2.replace("<h1>", "<h1><b>").replace("</h1>", "</b></h1>")
    s.set("/c2.html", page2.encode(), content_type="text/html")
    titles = [
        "&lt;b&gt;Talks&lt;/b&gt; resume\x07 in \x1bHavana &amp;amp; Caracas",
        "<![CDATA[<i>Harbour</i>\x0b]]>",
    ]
    doc = feed_xml([(s.url("/c1.html"), titles[0]), (s.url("/c2.html"), titles[1])])
    s.set("/feed", doc.encode(), content_type=RSS_TYPE)


def _mislabelled_feed(s: HostileServer, canary: Path) -> None:
    link = article(s, "/m.html", "A feed served as a download", "mislabelled feed story")
    doc = feed_xml([(link, "A feed served as a download")])
    s.set("/feed", doc.encode(), content_type="application/octet-stream")


SETUPS: dict[str, Setup] = {
    "gigabyte": _gigabyte,
    "gzip-bomb": _gzip_bomb,
    "redirect-loop": _redirect_loop,
    "redirect-file": _redirect_file,
    **{f"http-{code}": _status(code) for code in (404, 410, 429, 500, 503)},
    "html-as-feed": _html_as_feed,
    "image-as-feed": _image_as_feed,
    "truncated": _truncated,
    "garbage": _garbage,
    "billion-laughs": _billion_laughs,
    "xxe": _xxe,
    "hundred-k": _hundred_k,
    "big-article": _big_article,
    "cp1251-page": _cp1251_page,
    "nul-bytes": _nul_bytes,
    "control-titles": _control_titles,
    "mislabelled-feed": _mislabelled_feed,
}


def setup_case(name: str, host: str, canary: Path) -> HostileServer | RawServer:
    """The server of one case, on a loopback address of its own (a 429 pauses a host), its feed at /feed."""
    if name == "silent":
        return RawServer("silent", host)
    if name == "trickle":
        answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n\r\n" + feed_xml([]).encode()
        return RawServer("trickle", host, answer=answer, interval=1.0)
    server = HostileServer(host)
    SETUPS[name](server, canary)
    return server


# -- memory of the service and its workers ----------------------------------------------------------------


def tree_rss_mb(root: int) -> float:
    """VmRSS of `root` and all its descendants (the worker processes), in MB, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total_kb, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if match := re.search(r"^VmRSS:\s+(\d+) kB", status, re.M):
            total_kb += int(match.group(1))
    return total_kb / 1024


class Sampler:
    """Samples the RSS of a process tree every `every` seconds in a thread, until stopped."""

    def __init__(self, pid: int, every: float = 0.2):
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float]] = []  # (monotonic time, MB)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(self.every):
            self.samples.append((time.monotonic(), tree_rss_mb(self.pid)))

    def since(self, began: float) -> list[float]:
        return [mb for t, mb in self.samples if t >= began]

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=5)


# -- the scenario -----------------------------------------------------------------------------------------


@dataclass
class Scenario:
    alive: bool  # the service was still running when every source had been polled
    exit_code: int | None  # after SIGTERM
    baseline_mb: float
    peak_mb: float
    samples: int
    sources: dict[str, dict[str, str]]  # name -> the /sources row
    states: dict[str, dict[str, Any]]  # name -> the index's sources row
    polls: dict[str, list[dict[str, Any]]]  # name -> its polls rows
    filed: dict[str, list[tuple[str, dict[str, Any]]]]  # name -> (text, sidecar) of each item filed
    log: str
    data: Path
    servers: dict[str, HostileServer | RawServer] = field(default_factory=dict)
    seconds: float = 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_index(data: Path, query: str) -> list[sqlite3.Row]:
    db = data / "index.sqlite3"
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(query).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []
    finally:
        conn.close()


def polled(data: Path) -> set[str]:
    return {row["source"] for row in read_index(data, "SELECT DISTINCT source FROM polls")}


def filed_items(data: Path) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for side in sorted((data / "archive").rglob("*.json")) if (data / "archive").exists() else []:
        meta = json.loads(side.read_text("utf-8"))
        out.setdefault(meta["source"], []).append((side.with_suffix(".txt").read_text("utf-8"), meta))
    return out


def good_site() -> tuple[Site, list[dict[str, Any]]]:
    site = Site()
    sources = []
    for n in (1, 2):
        entries = []
        for i in range(2):
            path, title = f"/good{n}/{i}.html", f"Good story {n}.{i} on trade between Havana and Caracas"
            site.set(path, article_html(title, lorem(f"good story {n} {i}")))
            entries.append((path, title))
        site.set(f"/good{n}.xml", rss(site, entries), content_type="application/rss+xml")
        sources.append({"name": f"good-{n}", "url": site.url(f"/good{n}.xml"), "every": "2s"})
    return site, sources


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("hostile")
    canary = tmp / "canary.txt"
    canary.write_text(CANARY + "\n", "utf-8")
    site, good = good_site()
    servers: dict[str, HostileServer | RawServer] = {}
    began = time.monotonic()
    try:
        for i, name in enumerate(CASES):
            servers[name] = setup_case(name, f"127.0.0.{10 + i}", canary)
        hostile = [{"name": name, "url": s.url("/feed"), "every": "4s"} for name, s in servers.items()]
        port = free_port()
        fetch = {"delay": 0, "timeout": TIMEOUT, "allow_private_networks": True, "max_bytes": MAX_BYTES}
        cfg = write_config(tmp / "config", good, {"fetch": fetch, "http": {"listen": f"127.0.0.1:{port}"}})
        data, log_path = cfg / "data", tmp / "run.log"
        proc = start_service(cfg, log_path)
        try:
            yield run_scenario(proc, cfg, data, log_path, good, hostile, port, servers, began)
        finally:
            kill_group(proc)
    finally:
        for server in servers.values():
            server.close()
        site.close()


def run_scenario(
    proc: Any,
    cfg: Path,
    data: Path,
    log_path: Path,
    good: list[dict[str, Any]],
    hostile: list[dict[str, Any]],
    port: int,
    servers: dict[str, HostileServer | RawServer],
    began: float,
) -> Scenario:
    def alive() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the service exited with {proc.returncode}:\n{log_text(log_path)[-3000:]}")
        return True

    wait_for_lock(data, proc)
    sampler = Sampler(proc.pid)
    try:
        # Steady state: the good feeds polled, their articles extracted (the workers are up and warm).
        wait_for(lambda: alive() and polled(data) >= set(GOOD), 90, "the good sources' first polls")
        time.sleep(1.0)
        steady = sampler.since(time.monotonic() - 1.0)
        baseline = sum(steady) / max(len(steady), 1)
        reload_at = time.monotonic()
        (cfg / "sources.yaml").write_text(yaml.safe_dump({"sources": good + hostile}), "utf-8")
        wait_for(lambda: alive() and polled(data) >= set(CASES) | set(GOOD), 120, "every source's first poll")
        alive()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/sources", timeout=10) as answer:
            rows = json.loads(answer.read())["sources"]
        peak = max(sampler.since(reload_at), default=0.0)
        samples = len(sampler.since(reload_at))
    finally:
        sampler.stop()
    still_up = proc.poll() is None
    code, _ = stop(proc, signal.SIGTERM)
    polls: dict[str, list[dict[str, Any]]] = {}
    for row in read_index(data, "SELECT * FROM polls ORDER BY id"):
        polls.setdefault(row["source"], []).append({**dict(row), "failures": json.loads(row["failures"])})
    return Scenario(
        alive=still_up,
        exit_code=code,
        baseline_mb=baseline,
        peak_mb=peak,
        samples=samples,
        sources={row["source"]: row for row in rows},
        states={row["name"]: dict(row) for row in read_index(data, "SELECT * FROM sources")},
        polls=polls,
        filed=filed_items(data),
        log=log_text(log_path),
        data=data,
        servers=servers,
        seconds=time.monotonic() - began,
    )


# -- per case ---------------------------------------------------------------------------------------------

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")


def assert_clean(text: str, meta: dict[str, Any]) -> None:
    """An archived item as a reader should see it: no mojibake, control characters or markup."""
    title = text.split("\n", 1)[0]
    assert title == meta["title"]
    assert "\ufffd" not in text, f"U+FFFD in {meta['url']}: {text[:200]!r}"
    assert not CONTROL.search(text), f"control character in {meta['url']}: {text[:200]!r}"
    assert not re.search(r"<[a-zA-Z/!]", title), f"markup in the title {title!r}"
    assert unicodedata.normalize("NFC", text) == text


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_source(scenario: Scenario, name: str) -> None:
    case = CASES[name]
    assert scenario.alive and scenario.exit_code == 0
    row = scenario.sources[name]
    assert row["last poll"] != "-"
    if case.error is not None:
        assert re.search(case.error, row["last error"]), row
        assert int(row["failures"]) >= 1
        assert all(p["error"] for p in scenario.polls[name]), scenario.polls[name]
    else:
        assert row["last error"] == "" and row["failures"] == "0", row
        assert not any(p["error"] for p in scenario.polls[name]), scenario.polls[name]
    filed = scenario.filed.get(name, [])
    assert len(filed) == case.filed, [meta["url"] for _, meta in filed]
    for text, meta in filed:
        assert_clean(text, meta)
    if case.item_failure is not None:
        failures = [f for p in scenario.polls[name] for f in p["failures"]]
        assert any(re.search(case.item_failure, f) for f in failures), failures[:5]
    if case.log is not None:
        assert re.search(case.log, scenario.log), scenario.log[-3000:]


def test_good_sources_filed_their_articles(scenario: Scenario) -> None:
    for name in GOOD:
        filed = scenario.filed.get(name, [])
        assert len(filed) == 2, name
        for text, meta in filed:
            assert_clean(text, meta)
    check_archive(scenario.data)


def test_memory_stays_bounded(scenario: Scenario) -> None:
    assert scenario.samples > 10
    growth = scenario.peak_mb - scenario.baseline_mb
    print(
        f"RSS of the service and its workers: baseline {scenario.baseline_mb:.0f} MB, peak "
        f"{scenario.peak_mb:.0f} MB (+{growth:.0f} MB) over {scenario.samples} samples; "
        f"scenario {scenario.seconds:.1f} s"
    )
    assert growth < RSS_BOUND_MB


def test_the_log_has_no_traceback(scenario: Scenario) -> None:
    """Every failure above is an expected one: logged as a reason, never as an error inside the crawler."""
    assert "Traceback" not in scenario.log, scenario.log[scenario.log.find("Traceback") - 500 :][:3000]


def test_no_local_file_was_read(scenario: Scenario) -> None:
    root = scenario.data.parent.parent  # the scenario's folder: config, data, the service's log
    needle = CANARY.encode()
    seen = [p for p in root.rglob("*") if p.is_file() and p.name != "canary.txt" and needle in p.read_bytes()]
    assert seen == []


def test_specific_outcomes(scenario: Scenario) -> None:
    """What the reasons alone do not show: the backoff, the pauses, the bounds on the hostile servers."""
    now = datetime.now(UTC)
    state = scenario.states
    # 429 Retry-After: 120 pushes the next poll at least that far.
    last = datetime.fromisoformat(state["http-429"]["last_poll"])
    assert datetime.fromisoformat(state["http-429"]["next_poll"]) >= last + timedelta(seconds=120)
    # 410 stops the source for good.
    assert state["http-410"]["disabled"]
    # The silent and trickling servers were given up on (and not waited for past the timeout).
    trickle = scenario.servers["trickle"]
    assert isinstance(trickle, RawServer) and trickle.bytes_sent <= 4 * (TIMEOUT + 1)
    # The 100,000-entry feed: only the newest MAX_FEED_ENTRIES entries were requested.
    k = scenario.servers["hundred-k"]
    assert isinstance(k, HostileServer)
    asked = {int(p.rsplit("/", 1)[1]) for p in k.hits_of("/k/")}
    assert asked and len(asked) <= MAX_FEED_ENTRIES and min(asked) >= 100_000 - MAX_FEED_ENTRIES
    # The windows-1251 page was decoded as Cyrillic text, the feed's control-character titles cleaned.
    ((ru_text, ru_meta),) = scenario.filed["cp1251-page"]
    assert ru_meta["title"] == RUSSIAN_TITLE and RUSSIAN[1] in ru_text
    titles = sorted(meta["title"] for _, meta in scenario.filed["control-titles"])
    assert titles == ["Harbour and rail reopen", "Talks resume in Havana & Caracas"]
    ((nul_text, _),) = scenario.filed["nul-bytes"]
    assert "\0" not in nul_text and nul_text.startswith("Nul story\n\n")
    assert now - datetime.fromisoformat(state["good-1"]["last_poll"]) < timedelta(minutes=5)


# -- the feed stage's own defences, in-process --------------------------------------------------------------

FEED_URL = "http://news.example.org/feed"


def _item(i: int, when: datetime) -> str:
    return f"<item><title>E{i}</title><link>http://news.example.org/{i}</link><pubDate>{format_datetime(when)}</pubDate></item>"


@pytest.mark.parametrize(
    ("prolog", "reason"),
    [
        pytest.param(
            '<!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "external XML entity &x;", id="xxe"
        ),
        pytest.param(
            '<!DOCTYPE rss [<!ENTITY % p SYSTEM "/etc/passwd">]>', "external XML entity %p;", id="param"
        ),
        pytest.param(
            '<!-- <a --><!DOCTYPE rss [<!ENTITY a "1"><!ENTITY b "&a;&a;">]>', "&b; built", id="laughs"
        ),
    ],
)
def test_entity_declarations_are_refused_before_parsing(prolog: str, reason: str) -> None:
    item = _item(1, datetime.now(UTC))
    doc = f"<?xml version='1.0'?>{prolog}<rss version='2.0'><channel><title>t</title>{item}"
    for body in (doc.encode(), doc.replace("'1.0'?>", "'1.0' encoding='utf-16'?>").encode("utf-16")):
        with pytest.raises(FeedError, match=rf"^refused: .*{re.escape(reason)}"):
            parse_feed(body, FEED_URL)


def test_harmless_entity_declarations_still_parse() -> None:
    # A character entity (feedparser keeps it) and the XHTML entity set by reference (never fetched).
    dtd = (
        '<!DOCTYPE rss [<!ENTITY copy "&#169;"><!ENTITY % lat1 PUBLIC '
        '"-//W3C//ENTITIES Latin 1 for XHTML//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml-lat1.ent">]>'
    )
    doc = (
        f"<?xml version='1.0'?>{dtd}<rss version='2.0'><channel><title>t</title>{_item(1, datetime.now(UTC))}"
    )
    assert [i.url for i in parse_feed((doc + "</channel></rss>").encode(), FEED_URL)] == [
        "http://news.example.org/1"
    ]


def test_a_huge_feed_is_cut_to_its_newest_entries_before_parsing() -> None:
    start = datetime.now(UTC) - timedelta(minutes=100_000)  # the newest thousand are recent
    n = MAX_FEED_ENTRIES * 3
    # Dates shuffled in the document: the newest are found by date, then kept in document order.
    order = random.Random(3).sample(range(n), n)
    items = "".join(_item(i, start + timedelta(minutes=i)) for i in order)
    body = (
        f"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>{items}</channel></rss>".encode()
    )
    read = read_feed(body, FEED_URL)
    assert read.listed == n
    newest = [i for i in order if i >= n - MAX_FEED_ENTRIES]
    assert [item.url for item in read.items] == [f"http://news.example.org/{i}" for i in newest]


# -- per case memory, for the record (slow: one `crawler poll` per case) -------------------------------------


@pytest.mark.slow
def test_memory_per_case(tmp_path: Path) -> None:
    """The peak RSS of `crawler poll SOURCE` (the process and its workers) per case, against a good feed."""
    canary = tmp_path / "canary.txt"
    canary.write_text(CANARY, "utf-8")
    site, good = good_site()
    servers = {name: setup_case(name, f"127.0.0.{10 + i}", canary) for i, name in enumerate(CASES)}
    try:
        sources = good + [{"name": n, "url": s.url("/feed")} for n, s in servers.items()]
        fetch = {"delay": 0, "timeout": TIMEOUT, "allow_private_networks": True, "max_bytes": MAX_BYTES}
        cfg = write_config(tmp_path / "config", sources, {"fetch": fetch})
        peaks = {name: poll_peak_mb(cfg, name) for name in ("good-1", *CASES)}
    finally:
        for server in servers.values():
            server.close()
        site.close()
    for name, peak in peaks.items():
        print(f"{name:18} peak {peak:6.0f} MB  ({peak - peaks['good-1']:+.0f} MB over a good feed)")
    assert max(peaks.values()) - peaks["good-1"] < RSS_BOUND_MB


def poll_peak_mb(cfg: Path, name: str) -> float:
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler", "poll", "--config", str(cfg), name],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    sampler = Sampler(proc.pid, every=0.1)
    try:
        proc.wait(timeout=120)
    finally:
        sampler.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return max((mb for _, mb in sampler.samples), default=0.0)
