"""The benchmark's news sites: corpus pages served from several loopback addresses, one server per host.

Each source is an RSS feed on one host listing its article pages; several sources share a host, so the
crawler's per-host politeness (fetch.per_host, fetch.delay) applies as it would on the real web. Every
request is counted by kind (feed, article, robots.txt, other) so a phase can say what it cost the sites.

Each corpus page is served once per run, under one URL: copies of a page would be collapsed by the crawler's
duplicate checks (canonical URL, content hash, Simhash), which would measure the dedup path, not filing.
The corpora hold 271 pages, which bounds sources x articles; the poll cycles' new items are synthetic pages
of random words (distinct texts, so they are filed).
"""

from __future__ import annotations

import gzip
import hashlib
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
CORPUS_NAMES = ("article-extraction-benchmark", "fundus")
ROBOTS = b"User-agent: *\nAllow: /\n"


def corpus_pages(limit: int, seed: int = 7) -> list[tuple[str, bytes]]:
    """Up to `limit` corpus pages as (corpus/id, raw HTML bytes), both corpora mixed in a fixed order."""
    paths = sorted(p for name in CORPUS_NAMES for p in (CORPORA / name / "html").glob("*.html.gz"))
    if not paths:
        raise FileNotFoundError(f"no corpus pages under {CORPORA} (the shared corpora are needed)")
    random.Random(seed).shuffle(paths)
    return [(f"{p.parent.parent.name}/{p.name[:-8]}", gzip.decompress(p.read_bytes())) for p in paths[:limit]]


@dataclass
class Entry:
    path: str  # the article page's path on its host
    title: str
    published: datetime


@dataclass
class Feed:
    source: str
    host: str
    entries: list[Entry] = field(default_factory=list)  # newest first
    size: int = 0  # entries the feed lists (a feed is a window on the newest items)
    body: bytes = b""
    etag: str = ""

    def render(self, base: str) -> None:
        items = "".join(
            f"<item><title>{escape(e.title)}</title><link>{base}{e.path}</link>"
            f"<guid isPermaLink='false'>{escape(self.source)}:{escape(e.path)}</guid>"
            f"<pubDate>{format_datetime(e.published)}</pubDate></item>"
            for e in self.entries[: self.size]
        )
        self.body = (
            "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>{escape(self.source)}</title><link>{base}/</link><description>bench</description>"
            f"{items}</channel></rss>"
        ).encode()
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'


class Host:
    """One loopback address with its own threaded HTTP server, serving its sources' feeds and pages."""

    def __init__(self, address: str, counts: Counter[str], lock: threading.Lock):
        self.pages: dict[str, bytes] = {}
        self.feeds: dict[str, Feed] = {}  # path -> feed
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

            def do_GET(self) -> None:
                status, body, headers = host.answer(self.path, self.headers.get("If-None-Match"))
                with lock:
                    counts[f"{host.kind(self.path)} {status}"] += 1
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://{address}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def kind(self, path: str) -> str:
        if path == "/robots.txt":
            return "robots"
        if path in self.feeds:
            return "feed"
        if path in self.pages:
            return "article"
        return "other"

    def answer(self, path: str, if_none_match: str | None) -> tuple[int, bytes, dict[str, str]]:
        if path == "/robots.txt":
            return 200, ROBOTS, {"Content-Type": "text/plain"}
        feed = self.feeds.get(path)
        if feed is not None:
            if if_none_match == feed.etag:
                return 304, b"", {"ETag": feed.etag}
            return 200, feed.body, {"Content-Type": "application/rss+xml", "ETag": feed.etag}
        page = self.pages.get(path)
        if page is not None:
            return 200, page, {"Content-Type": "text/html"}
        return 404, b"not found", {"Content-Type": "text/plain"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class BenchSite:
    """N sources x M corpus pages over `hosts` loopback addresses (127.0.0.2, 127.0.0.3, ...)."""

    def __init__(self, pages: list[tuple[str, bytes]], sources: int, per_source: int, hosts: int):
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.hosts = [Host(f"127.0.0.{2 + i}", self.counts, self.lock) for i in range(hosts)]
        self.feeds: list[tuple[Host, Feed]] = []
        self.rng = random.Random(11)
        self.added = 0
        now = datetime.now(UTC)
        it = iter(pages)
        for s in range(sources):
            host = self.hosts[s % hosts]
            feed = Feed(f"src{s:02d}", host.base, size=per_source)
            for k in range(per_source):
                name, body = next(it)
                path = f"/src{s:02d}/a/{k:03d}.html"
                host.pages[path] = body
                feed.entries.append(Entry(path, f"{name} ({s}/{k})", now - timedelta(hours=k + 1)))
            feed.render(host.base)
            host.feeds[f"/src{s:02d}/feed.xml"] = feed
            self.feeds.append((host, feed))

    def sources_yaml(self) -> dict[str, Any]:
        return {
            "sources": [
                {"name": f.source, "url": f"{h.base}/{f.source}/feed.xml", "kind": "feed", "backfill": True}
                for h, f in self.feeds
            ]
        }

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.counts)

    def add_article(self, words: list[str]) -> str:
        """Publish one new synthetic article on the next source in turn; returns its source's name."""
        host, feed = self.feeds[self.added % len(self.feeds)]
        self.added += 1
        path = f"/{feed.source}/n/{self.added:05d}.html"
        title = " ".join(self.rng.choice(words) for _ in range(8)).capitalize()
        paragraphs = [" ".join(self.rng.choice(words) for _ in range(60)) + "." for _ in range(6)]
        with self.lock:
            host.pages[path] = synthetic_page(title, paragraphs)
            feed.entries.insert(0, Entry(path, title, datetime.now(UTC)))
            feed.render(host.base)
        return feed.source

    def close(self) -> None:
        for host in self.hosts:
            host.close()


def synthetic_page(title: str, paragraphs: list[str]) -> bytes:
    """A plain news page with some page furniture around the article (as the tests' article_html)."""
    body = "\n".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} | Bench News</title></head>
<body><header><nav><a href="/">Home</a> <a href="/world">World</a></nav></header>
<main><article><h1>{escape(title)}</h1><div class="article-body">{body}</div></article></main>
<footer><p>Copyright Bench News.</p></footer></body></html>""".encode()
