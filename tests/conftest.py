"""Shared test fixtures: a real HTTP server on 127.0.0.1, config folders, and the CLI run as a subprocess."""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from xml.sax.saxutils import escape

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CORPORA = SHARED / "corpora"
CHECK_ARCHIVE = SHARED / "tools" / "check_archive.py"


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Site:
    """A local web site whose pages a test sets and changes while the crawler polls it."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[str] = []
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, request headers), in order
        self.lock = threading.Lock()
        self.delay = 0.0  # seconds each response takes (makes overlapping requests visible)
        self.active = 0  # requests being answered now, and the most ever at once
        self.max_active = 0
        self.once: dict[str, Route] = {}  # served at the next request of its path only, then the usual route
        self.answered: list[tuple[float, str, int]] = []  # (time.monotonic(), path, status) per response
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with site.lock:
                    site.hits.append(self.path)
                    site.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                    route = site.once.pop(self.path, None) or site.routes.get(self.path)
                    site.active += 1
                    site.max_active = max(site.max_active, site.active)
                try:
                    self._answer(route)
                finally:
                    with site.lock:
                        site.active -= 1

            def _answer(self, route: Route | None) -> None:
                if site.delay:
                    time.sleep(site.delay)
                if route is None:
                    route = Route(404, b"not found", {"Content-Type": "text/plain"})
                with site.lock:
                    site.answered.append((time.monotonic(), self.path, route.status))
                etag = route.headers.get("ETag")
                if etag and self.headers.get("If-None-Match") == etag:
                    route = Route(304, b"", {"ETag": etag})  # a conditional request for what they have
                self.send_response(route.status)
                for key, value in route.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def set(
        self,
        path: str,
        body: bytes | str,
        status: int = 200,
        content_type: str = "text/html",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        with self.lock:
            self.routes[path] = Route(status, data, {"Content-Type": content_type, **(headers or {})})

    def redirect(self, path: str, to: str, status: int = 301) -> None:
        with self.lock:
            self.routes[path] = Route(status, b"", {"Location": self.url(to)})

    def hits_of(self, path: str) -> int:
        with self.lock:
            return self.hits.count(path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    yield s
    s.close()


def article_html(title: str, paragraphs: list[str], lang: str = "en") -> str:
    """A plain news page with some page furniture around the article."""
    body = "\n".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{escape(title)} | Test News</title></head>
<body>
<header><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/about">About us</a></nav></header>
<main><article><h1>{escape(title)}</h1>
<div class="article-body">{body}</div></article></main>
<aside><h2>Most read</h2><ul><li><a href="/x">Another headline of the day</a></li></ul></aside>
<footer><p>Copyright Test News. All rights reserved.</p></footer>
</body></html>"""


def rss(site: Site, entries: list[tuple[str, str]], title: str = "Test feed") -> str:
    """An RSS 2.0 feed of (path, title) entries, newest first, each with a permalink GUID and a date."""
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>{escape(t)}</title><link>{site.url(p)}</link>"
        f"<guid isPermaLink='true'>{site.url(p)}</guid>"
        f"<pubDate>{format_datetime(now - timedelta(hours=i))}</pubDate></item>"
        for i, (p, t) in enumerate(entries)
    )
    return (
        f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>{escape(title)}</title>"
        f"<link>{site.base}/</link><description>test</description>{items}</channel></rss>"
    )


_WORDS = [
    "officials",
    "ministers",
    "delegation",
    "talks",
    "agreement",
    "trade",
    "energy",
    "security",
    "region",
    "border",
    "council",
    "summit",
    "harbour",
    "railway",
    "election",
    "parliament",
    "budget",
    "farmers",
    "harvest",
    "drought",
    "exports",
    "imports",
    "currency",
    "bank",
    "inflation",
    "protest",
    "union",
    "strike",
    "court",
    "ruling",
    "judge",
    "police",
    "army",
    "navy",
    "exercise",
    "treaty",
    "embassy",
    "visit",
    "minister",
    "president",
    "governor",
    "mayor",
    "province",
    "capital",
    "village",
    "coast",
    "river",
    "mountain",
    "airport",
    "factory",
    "workers",
    "wages",
    "prices",
    "fuel",
    "grain",
    "fishing",
    "tourism",
    "hospital",
    "school",
    "teachers",
    "students",
    "university",
    "report",
    "survey",
    "census",
    "vote",
    "campaign",
    "coalition",
    "opposition",
    "reform",
    "law",
    "decree",
    "tax",
    "customs",
    "investment",
    "loan",
    "bridge",
    "road",
    "pipeline",
    "refinery",
    "mine",
    "copper",
    "oil",
    "gas",
    "solar",
    "wind",
    "dam",
    "reservoir",
    "flood",
    "storm",
]


def lorem(topic: str, n: int = 4) -> list[str]:
    """Article-like paragraphs about `topic`, different for every topic (so never near-duplicates)."""
    rng = random.Random(topic)
    paragraphs = []
    for i in range(n):
        words = " ".join(rng.choice(_WORDS) for _ in range(28))
        paragraphs.append(f"Paragraph {i + 1} about {topic}: {words}.")
    return paragraphs


def write_config(
    folder: Path,
    sources: list[dict[str, Any]],
    settings: dict[str, Any] | None = None,
    topics: dict[str, Any] | None = None,
) -> Path:
    """A config folder whose data goes to folder/data, with fast, polite-enough fetch settings for tests."""
    folder.mkdir(parents=True, exist_ok=True)
    base: dict[str, Any] = {
        "data_dir": "data",
        "timezone": "UTC",
        "fetch": {"delay": 0, "timeout": 20, "allow_private_networks": True},
    }
    base.update(settings or {})
    (folder / "crawler.yaml").write_text(yaml.safe_dump(base), encoding="utf-8")
    (folder / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
    if topics is None:
        topics = {
            "topics": yaml.safe_load((ROOT / "config" / "topics.yaml").read_text(encoding="utf-8"))["topics"]
        }
    (folder / "topics.yaml").write_text(yaml.safe_dump(topics, allow_unicode=True), encoding="utf-8")
    return folder


def crawler_cmd(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `crawler` command (python -m crawler) and capture its output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "crawler", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd or ROOT,
    )


def archived(data: Path) -> list[Path]:
    return sorted((data / "archive").rglob("*.txt"))


def need_shared() -> None:
    if not CHECK_ARCHIVE.exists():
        pytest.skip(f"{CHECK_ARCHIVE} is absent (../shared is not beside the checkout)")


def load_bench(name: str) -> ModuleType:
    """A script of bench/ as a module (bench/ is not a package): tests share its scoring code."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
