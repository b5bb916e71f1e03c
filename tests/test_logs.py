"""Log output: readable lines or JSON lines, and every line about a source names it."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, Site, article_html, crawler_cmd, lorem, rss, write_config

from crawler import logs
from crawler.logs import SourceFilter, setup_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    quiet = {name: logging.getLogger(name).level for name in logs.QUIET_LOGGERS}
    yield
    if logs._installed is not None:
        root.removeHandler(logs._installed)
        logs._installed = None
    root.setLevel(level)
    for name, lvl in quiet.items():
        logging.getLogger(name).setLevel(lvl)
    logs.set_source_names(None)
    logging.captureWarnings(False)


def _record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("crawler.pipeline", logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_source_filter_reads_the_prefix() -> None:
    anyone = SourceFilter()
    record = _record("%s: poll failed: %s", "rt-actualidad", "HTTP 503")
    assert anyone.filter(record) and record.source == "rt-actualidad"  # type: ignore[attr-defined]
    for text in ("service started: 3 source(s)", "digest for 2024-05-01: HTML not written", "no prefix"):
        rec = _record(text)
        anyone.filter(rec)
        assert rec.source is None  # type: ignore[attr-defined]
    known = SourceFilter(["rt", "tass"])
    rec = _record("stopping: no new polls")
    known.filter(rec)
    assert rec.source is None  # type: ignore[attr-defined]
    rec = _record("tass: filed %s", "archive/x.txt")
    known.filter(rec)
    assert rec.source == "tass"  # type: ignore[attr-defined]
    rec = _record("http: request", source="rt")  # explicit extra wins
    known.filter(rec)
    assert rec.source == "rt"  # type: ignore[attr-defined]
    rec = _record("%d items", "not a number")  # a broken format must not break logging here
    assert known.filter(rec)


def test_json_lines(restore_logging: None) -> None:
    out = io.StringIO()
    setup_logging("json", verbose=False, stream=out)
    logs.set_source_names(["rt", "tass"])
    log = logging.getLogger("crawler.pipeline")
    log.info("%s: 2 new, 0 duplicate, 1 failed", "rt")
    log.info("stopping: no new polls")
    log.warning("line one\nline two", extra={"source": "tass"})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("%s: poll crashed", "tass")
    logging.getLogger("scrapy.core.engine").info("chatty library line")  # below WARNING: dropped
    log.debug("debug is off")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a library warning", UserWarning, stacklevel=1)
    lines = out.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 5, lines
    first = records[0]
    assert set(first) == {"time", "level", "logger", "message", "source"}
    assert first["level"] == "INFO" and first["logger"] == "crawler.pipeline" and first["source"] == "rt"
    assert first["message"] == "rt: 2 new, 0 duplicate, 1 failed"
    assert first["time"].endswith("+00:00") and "T" in first["time"]
    assert "source" not in records[1]
    assert records[2]["message"] == "line one\nline two" and records[2]["source"] == "tass"
    assert records[3]["level"] == "ERROR" and "RuntimeError: boom" in records[3]["exc"]
    assert records[4]["logger"] == "py.warnings" and "a library warning" in records[4]["message"]


def test_text_lines(restore_logging: None) -> None:
    out = io.StringIO()
    setup_logging("text", verbose=True, stream=out)
    log = logging.getLogger("crawler.service")
    log.info("%s: unchanged since the last poll", "rt")
    log.info("fetched the page", extra={"source": "tass"})
    log.debug("debug is on")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].endswith(" INFO    crawler.service: rt: unchanged since the last poll")
    assert lines[0][:4].isdigit()  # a timestamp first
    assert lines[1].endswith("crawler.service: tass: fetched the page")
    assert "DEBUG" in lines[2]


def test_setup_again_replaces_its_handler(restore_logging: None) -> None:
    root = logging.getLogger()
    before = len(root.handlers)
    first, second = io.StringIO(), io.StringIO()
    setup_logging("text", stream=first)
    setup_logging("json", stream=second)
    assert len(root.handlers) == before + 1
    logging.getLogger("crawler").warning("once")
    assert first.getvalue() == "" and json.loads(second.getvalue())["message"] == "once"
    with pytest.raises(ValueError, match="unknown log format"):
        setup_logging("xml")


def _wired() -> bool:
    return "--log-format" in crawler_cmd("--help").stdout


def test_service_logs_json_lines_naming_the_source(site: Site, tmp_path: Path) -> None:
    if not _wired():
        pytest.skip("`crawler --log-format` is not wired into the CLI yet")
    site.set("/news/1.html", article_html("Story from Havana", lorem("havana")))
    site.set(
        "/feed.xml", rss(site, [("/news/1.html", "Story from Havana")]), content_type="application/rss+xml"
    )
    site.set("/broken.xml", "not a feed at all", content_type="text/plain")
    cfg = write_config(
        tmp_path / "cfg",
        [
            # Short intervals: at start-up overdue sources are spread over their interval.
            {"name": "havana", "url": site.url("/feed.xml"), "every": "5s"},
            {"name": "broken", "url": site.url("/broken.xml"), "every": "5s"},
        ],
        topics={"topics": {}},
    )
    log_path = tmp_path / "service.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler", "--log-format", "json", "run", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("wb"),
        cwd=ROOT,
        env={**os.environ},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = log_path.read_text("utf-8", errors="replace")
            if "havana: 1 new" in text and "broken: poll failed" in text:
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    records = [json.loads(line) for line in log_path.read_text("utf-8").splitlines()]
    about = {r["source"] for r in records if "source" in r}
    assert {"havana", "broken"} <= about
    for record in records:
        for name in ("havana", "broken"):
            if record["message"].startswith(f"{name}: "):
                assert record["source"] == name, record
