"""Every feed of ../shared/corpora/feedparser (1,208 test feeds, served with their `Header:` lines) and
../shared/corpora/realworld-feeds (54 captured feeds) over HTTP from a local server, downloaded through the
real Fetcher (Scrapy) and put through the feed stage as crawler/reading.py does (read_feed with the response
headers).

No exception may escape the feed stage. The crawler must take every entry feedparser itself finds with an
http(s) link on the same bytes and headers (no more, no fewer: the feeds are far under MAX_FEED_ENTRIES), and
decode titles as well as feedparser does (no U+FFFD where feedparser's own titles have none).

Scrapy's reactor runs once per process, so the downloads and the feed stage run in this file, as a script, in
a subprocess: `python tests/test_feed_corpus.py SPEC.json` writes one JSON line per URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import multiprocessing
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import feedparser
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPORA = ROOT.parent / "shared" / "corpora"
FEEDPARSER = CORPORA / "feedparser"
REALWORLD = CORPORA / "realworld-feeds"


@dataclass
class Doc:
    corpus: str  # "feedparser" or "realworld"
    path: str  # relative to the corpus folder
    file: Path
    headers: dict[str, str]  # served with the file
    not_bozo: bool  # the corpus says feedparser reads it without complaint
    meta: dict[str, Any]


def corpus_docs() -> list[Doc]:
    docs = []
    if (FEEDPARSER / "manifest.json").exists():
        for e in json.loads((FEEDPARSER / "manifest.json").read_text("utf-8")):
            not_bozo = str(e["expect"]).startswith("not bozo")
            file = FEEDPARSER / "tests" / e["path"]
            docs.append(Doc("feedparser", e["path"], file, dict(e["http_headers"]), not_bozo, e))
    if (REALWORLD / "manifest.json").exists():
        for e in json.loads((REALWORLD / "manifest.json").read_text("utf-8")):
            docs.append(Doc("realworld", e["path"], REALWORLD / e["path"], {}, not e["bozo"], e))
    return docs


class CorpusServer:
    """Serves each document at /<corpus>/<path> with exactly its headers (plus Content-Length)."""

    def __init__(self, docs: list[Doc]) -> None:
        routes = {f"/{d.corpus}/{d.path}": (d.file.read_bytes(), d.headers) for d in docs}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: 1,262 requests on a few connections

            def do_GET(self) -> None:
                body, headers = routes.get(self.path, (b"not found", {}))
                self.send_response(200 if self.path in routes else 404)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, doc: Doc) -> str:
        return f"{self.base}/{doc.corpus}/{doc.path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- the driver: runs in a subprocess ----------------------------------------------------------------------


async def drive(urls: list[str]) -> list[dict[str, Any]]:
    from crawler.config import FetchSettings
    from crawler.feeds import FeedError, read_feed
    from crawler.fetch import Fetcher
    from crawler.workers import Workers

    settings = FetchSettings(allow_private_networks=True, delay=0, per_host=16, timeout=20)
    fetcher = Fetcher(settings)
    await fetcher.start()
    workers = Workers()

    async def one(url: str) -> dict[str, Any]:
        result = await fetcher.fetch(url, obey_robots=False)
        out: dict[str, Any] = {
            "url": url,
            "status": result.status,
            "error": result.error,
            "headers": result.headers,
            "sha256": hashlib.sha256(result.body).hexdigest(),
        }
        try:
            # As crawler/reading.py does it, in a worker process: the body, the final URL, the headers.
            feed = await workers.run(read_feed, result.body, result.url, result.headers)
            out["items"] = [[i.url, i.title] for i in feed.items]
        except FeedError as exc:
            out["feed_error"] = str(exc)
        except Exception:  # what must never happen: an exception escaping the feed stage
            out["escaped"] = traceback.format_exc()
        return out

    try:
        return list(await asyncio.gather(*(one(u) for u in urls)))
    finally:
        await fetcher.close()
        workers.close()


def driver_main(spec_path: str) -> None:
    from crawler.runtime import run

    urls = json.loads(Path(spec_path).read_text("utf-8"))

    async def main() -> None:
        for line in await drive(urls):
            print(json.dumps(line), flush=True)

    run(main)


# -- the test ----------------------------------------------------------------------------------------------


@dataclass
class View:
    encoding: str
    linked: list[tuple[str, str | None]]


@dataclass
class Fetched:
    docs: list[Doc]
    results: dict[str, dict[str, Any]]  # path key -> the driver's line
    views: dict[str, View]  # path key -> feedparser's own result on the same bytes and headers


def _key(doc: Doc) -> str:
    return f"{doc.corpus}/{doc.path}"


def served_headers(doc: Doc) -> dict[str, str]:
    """The headers the crawler sees for `doc` that matter to a feed parser (Date and Server do not)."""
    return {k.lower(): v for k, v in doc.headers.items()} | {"content-length": str(doc.file.stat().st_size)}


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fetched]:
    docs = corpus_docs()
    if not docs:
        pytest.skip(f"corpora absent: {FEEDPARSER} and {REALWORLD}")
    server = CorpusServer(docs)
    try:
        spec = tmp_path_factory.mktemp("corpus") / "urls.json"
        spec.write_text(json.dumps([server.url(d) for d in docs]), "utf-8")
        driver = subprocess.Popen(
            [sys.executable, str(Path(__file__)), str(spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            # feedparser's own view, computed meanwhile in another process: in this one it would hold the GIL
            # that the server's threads need to answer the driver.
            jobs = [(_key(d), str(d.file), server.url(d), served_headers(d)) for d in docs]
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                views = pool.submit(feedparser_views, jobs).result(timeout=300)
            stdout, stderr = driver.communicate(timeout=300)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait()
        assert driver.returncode == 0, stderr[-3000:]
        lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        by_url = {line["url"]: line for line in lines}
        yield Fetched(docs, {_key(d): by_url[server.url(d)] for d in docs}, views)
    finally:
        server.close()


def feedparser_views(jobs: list[tuple[str, str, str, dict[str, str]]]) -> dict[str, View]:
    """feedparser's own reading of each (key, file, URL, headers), as far as the tests need it."""
    return {key: feedparser_view(Path(file).read_bytes(), url, headers) for key, file, url, headers in jobs}


def feedparser_view(body: bytes, url: str, headers: Mapping[str, str]) -> View:
    """feedparser on the same bytes and headers as the crawler (the base URL as crawler.feeds gives it):
    its encoding, and the (absolute http(s) link, title) of each entry that has a link."""
    response_headers = {k.lower(): v for k, v in headers.items()}
    response_headers.setdefault("content-location", url)
    parsed = feedparser.parse(io.BytesIO(body), response_headers=response_headers)
    base = parsed.get("href") or url
    linked = []
    for entry in parsed.entries:
        link = (entry.get("link") or "").strip()
        absolute = urljoin(base, link) if link else ""
        if absolute.startswith(("http://", "https://")):
            linked.append((absolute, entry.get("title")))
    return View(str(parsed.get("encoding") or ""), linked)


def json_links(body: bytes, url: str) -> list[str]:
    items = json.loads(body).get("items", [])
    links = [urljoin(url, str(i.get("url") or i.get("external_url") or "").strip()) for i in items]
    return [link for link in links if link.startswith(("http://", "https://"))]


def test_every_document_was_served_and_fetched_unchanged(fetched: Fetched) -> None:
    assert len(fetched.results) == len(fetched.docs) > 1000
    for doc in fetched.docs:
        result = fetched.results[_key(doc)]
        assert result["error"] is None and result["status"] == 200, result
        assert result["sha256"] == hashlib.sha256(doc.file.read_bytes()).hexdigest(), doc.path
        # The headers feedparser's view was computed with are the ones the crawler received.
        assert served_headers(doc).items() <= result["headers"].items(), (doc.path, result["headers"])


def test_no_exception_escapes_the_feed_stage(fetched: Fetched) -> None:
    escaped = {k: r["escaped"] for k, r in fetched.results.items() if "escaped" in r}
    assert escaped == {}, next(iter(escaped.values()), "")


def expected_links(fetched: Fetched, doc: Doc) -> list[str]:
    url = fetched.results[_key(doc)]["url"]
    if doc.path.endswith(".json"):
        return json_links(doc.file.read_bytes(), url)  # feedparser reads no JSON Feed; crawler.feeds does
    return [link for link, _ in fetched.views[_key(doc)].linked]


def test_every_linked_entry_is_taken(fetched: Fetched) -> None:
    """As many items as feedparser finds entries with a link, and the same links, where the corpus says the
    feed is well-formed; an ill-formed one may give more (never fewer), and is refused only when feedparser
    finds no linked entry in it either."""
    problems = []
    for doc in fetched.docs:
        result = fetched.results[_key(doc)]
        expected = expected_links(fetched, doc)
        if "feed_error" in result:
            if expected:
                problems.append(f"{_key(doc)}: refused ({result['feed_error']}), feedparser: {len(expected)}")
            continue
        got = [url for url, _ in result["items"]]
        lost = set(expected) - set(got)
        if lost or (doc.not_bozo and (len(got) != len(expected) or set(got) != set(expected))):
            problems.append(f"{_key(doc)}: {len(got)} items, feedparser {len(expected)}; lost {sorted(lost)}")
    assert problems == []
    assert sum(d.not_bozo for d in fetched.docs) > 1000


UTF8 = ("utf-8", "ascii", "us-ascii")


def test_titles_are_decoded_as_well_as_feedparser_does(fetched: Fetched) -> None:
    """No U+FFFD in a title where feedparser's own title of that entry has none (the non-UTF-8 feeds)."""
    problems = []
    non_utf8 = 0
    for doc in fetched.docs:
        result = fetched.results[_key(doc)]
        if doc.path.endswith(".json") or not result.get("items"):
            continue
        view = fetched.views[_key(doc)]
        non_utf8 += view.encoding.lower().replace("_", "-") not in UTF8
        theirs = {link: title or "" for link, title in view.linked}
        for url, title in result["items"]:
            if title and "\ufffd" in title and "\ufffd" not in theirs.get(url, ""):
                problems.append(f"{_key(doc)}: {title!r} (feedparser: {theirs.get(url)!r})")
    assert problems == []
    assert non_utf8 > 10  # the corpus does hold feeds in other encodings: this checked something


if __name__ == "__main__":
    driver_main(sys.argv[1])
