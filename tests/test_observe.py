"""Observability and deployment: the HTTP endpoint, the metrics, the systemd unit."""

from __future__ import annotations

import asyncio
import configparser
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from conftest import ROOT, Site, article_html, lorem, rss, write_config
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from crawler.config import Config, load_config
from crawler.metrics import Metrics, item_reason, reason_kind
from crawler.observe import (
    HttpError,
    HttpSettings,
    ServiceProbe,
    judge_health,
    observability,
    shortest_interval,
    start_http,
)
from crawler.pipeline import PollReport
from crawler.store import Store

# -- settings ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [("127.0.0.1:8787", "127.0.0.1", 8787), ("[::1]:9000", "::1", 9000), ("localhost:1", "localhost", 1)],
)
def test_http_settings_accept_host_and_port(listen: str, host: str, port: int) -> None:
    settings = HttpSettings(listen=listen)
    assert (settings.host, settings.port) == (host, port)


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("8787", "expected HOST:PORT"),
        (":8787", "expected HOST:PORT"),
        ("127.0.0.1", "expected HOST:PORT"),
        ("127.0.0.1:http", "expected HOST:PORT"),
        ("::1:8787", "expected HOST:PORT"),
        ("127.0.0.1:70000", "between 0 and 65535"),
    ],
)
def test_http_settings_reject_bad_addresses(listen: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HttpSettings(listen=listen)
    with pytest.raises(ValidationError, match="Extra inputs"):
        HttpSettings.model_validate({"listen": "127.0.0.1:8787", "lisen": "x"})


# -- health rules --------------------------------------------------------------------------------------

HOUR = timedelta(hours=1)


def _judge(**kw: Any) -> tuple[bool, str]:
    args: dict[str, Any] = {
        "now": 100_000.0,
        "started": 0.0,
        "scheduler_running": True,
        "interval": HOUR,
        "last_poll": 100_000.0 - 60,
        "in_flight": 0,
        "next_due": 100_000.0 + 600,
    }
    args.update(kw)
    health = judge_health(**args)
    return health.ok, health.reason


def test_health_rules() -> None:
    now = 100_000.0
    assert _judge() == (True, "polling")
    assert _judge(scheduler_running=False) == (False, "the scheduler is not running")
    # Nothing ended within twice the shortest interval, and a poll is overdue: the scheduler fell behind.
    ok, reason = _judge(last_poll=now - 7300, next_due=now - 3700)
    assert not ok and reason == "no poll ended within 7200 s (last: 7300 s ago)"
    # Younger than the window: fine before the first poll ends.
    assert _judge(started=now - 60, last_poll=None, next_due=None)[0]
    assert _judge(last_poll=None, next_due=None) == (False, "no poll ended within 7200 s (last: never)")
    # Every source backing off (the next poll ahead, nothing running): not the service's fault.
    waiting = (True, "waiting: no poll due (sources backing off)")
    assert _judge(last_poll=now - 9000, next_due=now + 600) == waiting
    assert _judge(last_poll=now - 9000, next_due=now - 60) == waiting  # a little late is not behind
    # Polls running, none ended within the window: stuck (a hung download, a dead writer...).
    ok, reason = _judge(last_poll=now - 9000, in_flight=3, next_due=now + 600)
    assert not ok and reason == "3 poll(s) running, none ended within 7200 s (stuck?)"
    assert _judge(in_flight=3)[0]  # others end: fine
    assert _judge(interval=None, last_poll=None) == (True, "no enabled source to poll")


def test_shortest_interval_covers_every_cron_and_disabled(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "cfg",
        [
            {"name": "a", "url": "https://a.example/feed", "every": "2h"},
            {"name": "b", "url": "https://b.example/feed", "cron": "*/20 * * * *"},
            {"name": "c", "url": "https://c.example/feed", "every": "5m", "enabled": False},
            {"name": "d", "url": "https://d.example/feed"},  # the default: 1h
        ],
        topics={"topics": {}},
    )
    config = load_config(cfg)
    assert shortest_interval(config) == timedelta(minutes=20)
    cfg2 = write_config(
        tmp_path / "cfg2",
        [{"name": "c", "url": "https://c.example/feed", "enabled": False}],
        topics={"topics": {}},
    )
    assert shortest_interval(load_config(cfg2)) is None


# -- metrics -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("HTTP 404", "http_4xx"),
        ("HTTP 503", "http_5xx"),
        ("timed out after 20 s", "timeout"),
        ("DNS lookup failed", "dns"),
        ("connection refused", "connection"),
        ("connection closed before the whole response arrived", "connection"),
        ("not a feed: no RSS, Atom or RDF root element", "not_a_feed"),
        ("broken feed, no entries could be read: x", "not_a_feed"),
        ("not a sitemap: not an XML document", "not_a_feed"),
        ("not an article: captcha", "not_an_article"),
        ("forbidden by robots.txt", "robots"),
        ("refused: 10.0.0.1 is a private address", "refused"),
        ("too many redirects (more than 10)", "redirect"),
        ("response over 15728640 bytes (fetch.max_bytes), aborted", "too_large"),
        ("empty response", "empty"),
        ("internal error: boom", "internal"),
        ("download cancelled (shutting down)", "shutdown"),
        ("something new", "other"),
    ],
)
def test_reason_kinds(reason: str, kind: str) -> None:
    assert reason_kind(reason) == kind


def test_poll_done_counts_a_report() -> None:
    metrics = Metrics(CollectorRegistry())
    report = PollReport("rt", new=3, duplicate=2, known=5, failed=2)
    report.failures = [
        "https://rt.example/a: HTTP 404",
        "https://rt.example/b: not an article: consent page",
    ]
    metrics.poll_done(report, now=1_700_000_000.0)
    metrics.poll_done(PollReport("tass", error="timed out after 20 s"))
    metrics.poll_done(PollReport("tass", unchanged=True))
    metrics.extraction_time(0.03)
    metrics.queue_length_from(lambda: 7)

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert value("crawler_polls_total", source="rt", outcome="ok") == 1
    assert value("crawler_polls_total", source="tass", outcome="failed") == 1
    assert value("crawler_polls_total", source="tass", outcome="unchanged") == 1
    assert value("crawler_items_filed_total", source="rt") == 3
    assert value("crawler_duplicates_total", source="rt") == 2
    assert value("crawler_failures_total", source="rt", reason_kind="http_4xx") == 1
    assert value("crawler_failures_total", source="rt", reason_kind="not_an_article") == 1
    assert value("crawler_failures_total", source="tass", reason_kind="timeout") == 1
    assert value("crawler_last_poll_timestamp_seconds", source="rt") == 1_700_000_000.0
    assert value("crawler_extraction_seconds_count") == 1
    assert value("crawler_queue_length") == 7
    assert item_reason("https://x.example/a?b=c: HTTP 404") == "HTTP 404"

    metrics.forget_source("rt")
    assert value("crawler_polls_total", source="rt", outcome="ok") is None
    assert value("crawler_failures_total", source="rt", reason_kind="http_4xx") is None
    assert value("crawler_polls_total", source="tass", outcome="failed") == 1

    def broken() -> float:
        raise RuntimeError("closed")

    metrics.queue_length_from(broken)  # a failing callback must not break a scrape
    assert value("crawler_queue_length") == 0


def test_metrics_instances_do_not_share_counters() -> None:
    one, two = Metrics(), Metrics()
    one.poll_done(PollReport("rt", new=1))
    assert two.registry.get_sample_value("crawler_items_filed_total", {"source": "rt"}) is None


# -- the endpoint, on a real loop ----------------------------------------------------------------------

NAMES = {
    "crawler_polls",
    "crawler_items_filed",
    "crawler_duplicates",
    "crawler_failures",
    "crawler_extraction_seconds",
    "crawler_queue_length",
    "crawler_last_poll_timestamp_seconds",
}


def _get(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("content-type", ""), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("content-type", ""), exc.read()


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class FakeService:
    """What crawler.service.Service offers the endpoint, without the downloader and the pool."""

    config: Config
    scheduler: AsyncIOScheduler
    res: Any
    started_at: float = field(default_factory=time.time)
    last_poll_finished: float | None = None
    in_flight: set[Any] = field(default_factory=set)
    on_poll: list[Callable[[PollReport], None]] = field(default_factory=list)


def test_endpoint_serves_health_metrics_and_sources(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "cfg",
        [
            {"name": "rt", "url": "https://rt.example/feed", "every": "1h"},
            {"name": "tass", "url": "https://tass.example/feed", "every": "2h"},
        ],
        topics={"topics": {}},
    )
    config = load_config(cfg)
    store = Store(tmp_path / "index.sqlite3")
    store.save_source_state(
        "rt",
        url="https://rt.example/feed",
        last_poll="2024-05-01T10:00:00+00:00",
        failures=2,
        last_error="HTTP 503",
    )
    metrics = Metrics(CollectorRegistry())

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)

        async def job() -> None:
            pass

        scheduler.add_job(job, "interval", hours=1, id="poll:rt", next_run_time=datetime.now(UTC) + HOUR)
        fetcher = SimpleNamespace(fetcher=SimpleNamespace(waiting=4))  # the gate around the Fetcher
        service = FakeService(config, scheduler, SimpleNamespace(store=store, fetcher=fetcher))
        settings = HttpSettings.model_construct(listen="127.0.0.1:0")  # any free port
        async with observability(settings, metrics)(service) as handle:
            assert handle is not None
            base = handle.url
            out["health_before_scheduler"] = await asyncio.to_thread(_get, base + "/healthz")
            scheduler.start()
            for report in (PollReport("rt", new=2, duplicate=1), PollReport("tass", error="HTTP 500")):
                for listener in service.on_poll:
                    listener(report)
            service.last_poll_finished = time.time()
            metrics.extraction_time(0.02)
            out["health"] = await asyncio.to_thread(_get, base + "/healthz")
            out["metrics"] = await asyncio.to_thread(_get, base + "/metrics")
            out["openmetrics"] = await asyncio.to_thread(
                _get, base + "/metrics", "GET", {"Accept": "application/openmetrics-text"}
            )
            out["sources"] = await asyncio.to_thread(_get, base + "/sources")
            out["root"] = await asyncio.to_thread(_get, base + "/")
            out["missing"] = await asyncio.to_thread(_get, base + "/nope")
            out["post"] = await asyncio.to_thread(_get, base + "/healthz", "POST")
            out["head"] = await asyncio.to_thread(_get, base + "/healthz", "HEAD")
            out["garbage"] = await asyncio.to_thread(_raw, handle.port, b"NONSENSE\r\n\r\n")
            scheduler.pause()  # the first step of a shutdown
            out["health_paused"] = await asyncio.to_thread(_get, base + "/healthz")
            # An idle client holding a connection open must not hold up the shutdown.
            idle = socket.create_connection(("127.0.0.1", handle.port))
            await asyncio.sleep(0.05)
            loop = asyncio.get_running_loop()
            started = loop.time()
        out["close_seconds"] = loop.time() - started
        out["listeners_left"] = len(service.on_poll)
        idle.close()
        scheduler.shutdown(wait=False)
        try:
            await asyncio.to_thread(_get, base + "/healthz")
            out["after_close"] = "answered"
        except (urllib.error.URLError, ConnectionError):
            out["after_close"] = "refused"
        return out

    try:
        out = asyncio.run(scenario())
    finally:
        store.close()

    status, _ctype, body = out["health_before_scheduler"]
    assert status == 503 and json.loads(body)["reason"] == "the scheduler is not running"

    status, ctype, body = out["health"]
    assert status == 200 and ctype == "application/json"
    health = json.loads(body)
    assert health["status"] == "ok" and health["window_seconds"] == 7200

    status, ctype, body = out["metrics"]
    assert status == 200 and ctype.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert set(families) >= NAMES
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples
    }
    assert samples[("crawler_items_filed_total", (("source", "rt"),))] == 2
    assert samples[("crawler_polls_total", (("outcome", "ok"), ("source", "rt")))] == 1
    assert samples[("crawler_failures_total", (("reason_kind", "http_5xx"), ("source", "tass")))] == 1
    assert samples[("crawler_extraction_seconds_count", ())] == 1
    assert samples[("crawler_queue_length", ())] == 4
    assert out["openmetrics"][1].startswith("application/openmetrics-text")
    assert out["openmetrics"][2].rstrip().endswith(b"# EOF")

    status, ctype, body = out["sources"]
    assert status == 200 and ctype == "application/json"
    rows = {row["source"]: row for row in json.loads(body)["sources"]}
    assert set(rows) == {"rt", "tass"}
    assert rows["rt"]["failures"] == "2" and rows["rt"]["last error"] == "HTTP 503"
    assert rows["rt"]["last poll"] == "2024-05-01 10:00 UTC"

    assert out["root"][0] == 200 and b"/healthz" in out["root"][2]
    assert out["missing"][0] == 404
    assert out["post"][0] == 405
    assert out["head"][0] == 200 and out["head"][2] == b""
    assert out["garbage"].startswith(b"HTTP/1.1 400 ")

    status, _ctype, body = out["health_paused"]
    assert status == 503 and json.loads(body)["reason"] == "the scheduler is not running"
    assert out["close_seconds"] < 2.5
    assert out["after_close"] == "refused"
    assert out["listeners_left"] == 0


def test_metrics_without_the_endpoint(tmp_path: Path) -> None:
    config = load_config(ROOT / "config")
    metrics = Metrics(CollectorRegistry())

    async def scenario() -> tuple[Any, int]:
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
        service = FakeService(config, scheduler, SimpleNamespace(store=None, fetcher=object()))
        async with observability(None, metrics)(service) as handle:
            for listener in service.on_poll:
                listener(PollReport("rt", new=1))
        return handle, len(service.on_poll)

    assert asyncio.run(scenario()) == (None, 0)
    assert metrics.registry.get_sample_value("crawler_items_filed_total", {"source": "rt"}) == 1
    assert metrics.registry.get_sample_value("crawler_queue_length") == 0


def _probe(config: Config, store: Any = None) -> ServiceProbe:
    scheduler = AsyncIOScheduler(timezone=UTC)
    return ServiceProbe(FakeService(config, scheduler, SimpleNamespace(store=store, fetcher=None)))


def test_endpoint_reports_an_address_in_use() -> None:
    async def scenario() -> str:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            try:
                await start_http(
                    HttpSettings(listen=f"127.0.0.1:{port}"), _probe(load_config(ROOT / "config"))
                )
            except HttpError as exc:
                return str(exc)
            return "started"

    message = asyncio.run(scenario())
    assert message.startswith("http: cannot listen on 127.0.0.1:") and message.endswith(
        ": Address already in use"
    )


class BrokenStore:
    def source_states(self) -> dict[str, Any]:
        raise RuntimeError("the index is closed")


def test_sources_answers_500_when_the_index_fails() -> None:
    probe = _probe(load_config(ROOT / "config"), BrokenStore())

    async def scenario() -> tuple[int, str, bytes]:
        handle = await start_http(HttpSettings.model_construct(listen="127.0.0.1:0"), probe)
        try:
            return await asyncio.to_thread(_get, handle.url + "/sources")
        finally:
            await handle.close()

    status, _ctype, body = asyncio.run(scenario())
    assert status == 500 and "the index is closed" in json.loads(body)["error"]


# -- deployment ----------------------------------------------------------------------------------------


def _unit_values(path: Path) -> dict[str, list[str]]:
    """Every Key=value of the unit's [Service] section; systemd allows repeated keys (Environment=)."""
    values: dict[str, list[str]] = {}
    section = None
    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_systemd_unit_parses_and_has_what_a_service_needs() -> None:
    unit = ROOT / "contrib" / "crawler.service"
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read(unit, encoding="utf-8")
    assert {"Unit", "Service", "Install"} <= set(parser.sections())
    service = parser["Service"]
    assert service["Type"] == "simple"
    assert service["User"] and service["User"] != "root"
    assert service["WorkingDirectory"].startswith("/")
    assert service["ExecStart"].split()[0].endswith("/crawler") and service["ExecStart"].split()[-1] == "run"
    assert service["Restart"] == "on-failure" and int(service["RestartSec"]) > 0
    assert service["KillSignal"] == "SIGTERM"
    # The service stops within 10 s of SIGTERM: systemd must not SIGKILL it before that.
    assert int(service["TimeoutStopSec"]) >= 15
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "yes"
    assert parser["Install"]["WantedBy"] == "multi-user.target"

    values = _unit_values(unit)
    env = dict(item.split("=", 1) for item in values["Environment"])
    assert env["CRAWLER_CONFIG"].startswith("/")
    # No data_dir in crawler.yaml: the data goes to $XDG_DATA_HOME/crawler, which must be writable.
    data = f"{env['XDG_DATA_HOME']}/crawler"
    writable = [p.lstrip("-") for v in values["ReadWritePaths"] for p in v.split()]
    assert data in writable
    assert f"/var/lib/{values['StateDirectory'][0]}" == data


# -- the endpoint in the real service --------------------------------------------------------------------

# The reactor runs once per process: the service runs in a child, as `crawler run` would run it.
DRIVER = """
import sys
from pathlib import Path

from crawler import runtime
from crawler.config import load_config
from crawler.logs import setup_logging
from crawler.observe import HttpSettings, observability
from crawler.service import serve

runtime.catch_stop_signals()
setup_logging("text", verbose=False)
config = load_config(Path(sys.argv[1]))
extra = observability(HttpSettings.model_construct(listen="127.0.0.1:0"))
sys.exit(runtime.run(lambda: serve(config, extras=[extra])))
"""


def _serve_takes_extras() -> bool:
    import inspect

    from crawler.service import serve

    return "extras" in inspect.signature(serve).parameters


def test_the_service_serves_the_endpoint(site: Site, tmp_path: Path) -> None:
    if not _serve_takes_extras():
        pytest.skip("crawler.service.serve takes no extras yet")
    site.set("/news/1.html", article_html("Story from Havana", lorem("havana")))
    site.set(
        "/feed.xml", rss(site, [("/news/1.html", "Story from Havana")]), content_type="application/rss+xml"
    )
    cfg = write_config(tmp_path / "cfg", [{"name": "havana", "url": site.url("/feed.xml"), "every": "1h"}])
    log_path = tmp_path / "service.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("wb"),
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 60
        base = None
        while time.monotonic() < deadline and proc.poll() is None:
            text = log_path.read_text("utf-8", errors="replace")
            match = re.search(r"http: serving .* on (http://127\.0\.0\.1:\d+)", text)
            if match and "havana: 1 new" in text:
                base = match.group(1)
                break
            time.sleep(0.2)
        assert base is not None, log_path.read_text("utf-8", errors="replace")
        # The poll logs its summary a moment before the job that ran it records its end.
        deadline = time.monotonic() + 30
        while True:
            status, _ctype, body = _get(base + "/healthz")
            assert status == 200, body
            if json.loads(body)["reason"] == "polling" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert json.loads(body)["reason"] == "polling"
        status, _ctype, body = _get(base + "/metrics")
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(body.decode())
            for s in f.samples
        }
        assert samples[("crawler_items_filed_total", (("source", "havana"),))] == 1
        assert samples[("crawler_polls_total", (("outcome", "ok"), ("source", "havana")))] == 1
        status, _ctype, body = _get(base + "/sources")
        (row,) = json.loads(body)["sources"]
        assert row["source"] == "havana" and row["new in 7 days"] == "1" and row["failures"] == "0"
    finally:
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, log_path.read_text("utf-8", errors="replace")
    assert time.monotonic() - began < 10
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        _get(base + "/healthz")
