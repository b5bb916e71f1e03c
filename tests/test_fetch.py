"""The fetch layer against misbehaving servers on loopback: the private-network guard, only http(s),
redirects, Retry-After, size and time limits, robots.txt, the User-Agent.

Scrapy's reactor runs once per process, so each scenario runs tests/fetch_driver.py in a subprocess; the
pure parts (the address classifier, the Retry-After parser) are tested in-process.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from crawler.fetch.guard import address_kind, refusal
from crawler.fetch.politeness import retry_after

DRIVER = Path(__file__).with_name("fetch_driver.py")
MAX_BYTES = 100_000
CONTACT = "https://example.org/crawler-contact"
BOMB = gzip.compress(b"\0" * 5_000_000)  # 5 KB on the wire, 5 MB inflated


class Server:
    """One loopback server, one misbehaviour per path, like Scrapy's mockserver. Every response is bounded in
    size and time, so a test that goes wrong still ends."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.hits: list[tuple[str, float, dict[str, str]]] = []  # (path, monotonic time, headers)
        self.connections = 0
        self.robots_hang = False
        self.lock = threading.Lock()
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server.lock:
                    server.hits.append((self.path, time.monotonic(), dict(self.headers.items())))
                server.answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Counting(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request: Any, client_address: Any) -> bool:
                with server.lock:
                    server.connections += 1  # every TCP connection accepted, before any byte is read
                return True

        self.httpd = Counting((host, 0), Handler)
        self.base = f"http://{host}:{self.httpd.server_address[1]}"
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return self.base + path

    def times_of(self, path: str) -> list[float]:
        with self.lock:
            return [t for p, t, _ in self.hits if p == path]

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path
        if path.startswith("/chain/"):  # /chain/N: N redirects, alternating 301/302/307/308, then a page
            n = int(path.rsplit("/", 1)[1])
            if n > 0:
                return self.send(h, (301, 302, 307, 308)[n % 4], headers={"Location": f"/chain/{n - 1}"})
            return self.send(h, 200, b"arrived")
        if path == "/loop/a":
            return self.send(h, 302, headers={"Location": "/loop/b"})
        if path == "/loop/b":
            return self.send(h, 302, headers={"Location": self.url("/loop/a")})
        if path == "/to-file":
            return self.send(h, 302, headers={"Location": "file:///etc/passwd"})
        if path == "/to-ftp":
            return self.send(h, 301, headers={"Location": f"ftp://127.0.0.1:{self.port}/etc/passwd"})
        if path.startswith("/to/"):  # /to/<url>: a redirect anywhere
            return self.send(h, 302, headers={"Location": path[len("/to/") :]})
        if path == "/429":
            return self.send(h, 429, b"slow down", headers={"Retry-After": "2"})
        if path == "/503-date":
            when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
            return self.send(h, 503, b"maintenance", headers={"Retry-After": when})
        if path == "/429-bare":
            return self.send(h, 429, b"slow down")
        if path == "/big":  # announced: Content-Length over the limit
            return self.send(h, 200, b"x" * (3 * MAX_BYTES))
        if path == "/big-stream":  # not announced: no Content-Length, the body just keeps coming
            h.send_response(200)
            h.send_header("Content-Type", "text/plain")
            h.send_header("Connection", "close")
            h.end_headers()
            for _ in range(30):
                if self.stop.is_set():
                    break
                try:
                    h.wfile.write(b"y" * 10_000)
                    h.wfile.flush()
                except OSError:
                    break  # the client hung up: what we want
                time.sleep(0.01)
            return None
        if path == "/bomb":
            return self.send(h, 200, BOMB, headers={"Content-Encoding": "gzip", "Content-Type": "text/html"})
        if path == "/hang" or (path == "/robots.txt" and self.robots_hang):  # silent for 30 s, then gives up
            self.stop.wait(30)
            return None
        if path == "/robots.txt":
            return self.send(h, 200, b"User-agent: *\nDisallow: /private\n", content_type="text/plain")
        return self.send(h, 200, b"<html><body>ok</body></html>")

    @staticmethod
    def send(
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "text/html",
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        with contextlib.suppress(OSError):  # the client aborted (size limit)
            h.wfile.write(body)


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def fetch(
    urls: list[str | dict[str, Any]], *, guard: bool = False, timeout: float = 5, **settings: Any
) -> list[dict[str, Any]]:
    """Fetch the URLs one after the other in one crawler process; one result dict per URL."""
    fetches = [{"url": u} if isinstance(u, str) else u for u in urls]
    extra = {key: settings.pop(key) for key in ("treat_as_public",) if key in settings}
    spec = {
        "settings": {
            "allow_private_networks": not guard,
            "delay": 0,
            "timeout": timeout,
            "max_bytes": MAX_BYTES,
            "contact": CONTACT,
            **settings,
        },
        "fetches": fetches,
        **extra,
    }
    proc = subprocess.run(
        [sys.executable, str(DRIVER), json.dumps(spec)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(fetches), proc.stdout + proc.stderr
    return results


# --- the private-network guard ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.1.2.3", "private"),
        ("172.16.5.4", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "CGNAT"),
        ("100.127.255.254", "CGNAT"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("224.0.0.1", "multicast"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "non-public"),  # documentation range
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6 reaches the IPv4 host
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
    ],
)
def test_non_public_addresses_are_classified(address: str, kind: str) -> None:
    assert address_kind(address) == kind


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "100.128.0.1", "2606:2800::1", "2a00:1450::1"]
)
def test_public_addresses_pass(address: str) -> None:
    assert address_kind(address) is None
    assert refusal("example.com", address) is None


def test_refusal_names_the_host_the_address_and_the_switch() -> None:
    hint = "(set fetch.allow_private_networks to allow)"
    assert refusal("127.0.0.1", "127.0.0.1") == f"refused: 127.0.0.1 is a loopback address {hint}"
    assert refusal("intranet.example", "10.0.0.7") == (
        f"refused: intranet.example resolves to 10.0.0.7, a private address {hint}"
    )
    assert refusal("[::1]", "::1") == f"refused: ::1 is a loopback address {hint}"
    assert refusal("x.example", "0.0.0.0") == (
        f"refused: x.example resolves to 0.0.0.0, an unspecified address {hint}"
    )
    with pytest.raises(ValueError):
        address_kind("localhost")


def test_guard_refuses_loopback_before_connecting(server: Server) -> None:
    literal, named, mapped = fetch(
        [
            server.url("/page"),
            {"url": f"http://localhost:{server.port}/page", "obey_robots": True},
            f"http://[::ffff:127.0.0.1]:{server.port}/page",
        ],
        guard=True,
    )
    assert literal["error"] == (
        "refused: 127.0.0.1 is a loopback address (set fetch.allow_private_networks to allow)"
    )
    # A name is judged on what it resolves to (the address the connection would use), robots.txt included.
    assert named["error"].startswith("refused: localhost resolves to ")
    assert "a loopback address (set fetch.allow_private_networks to allow)" in named["error"]
    assert mapped["error"].startswith("refused: ::ffff:127.0.0.1 is a loopback address")
    assert all(r["status"] == 0 for r in (literal, named, mapped))
    assert server.connections == 0 and server.hits == []  # not one TCP connection, let alone a request


def test_guard_off_fetches_loopback(server: Server) -> None:
    [page] = fetch([f"http://localhost:{server.port}/page"], guard=False)
    assert page["status"] == 200 and page["error"] is None
    assert page["body_len"] == len(b"<html><body>ok</body></html>")


def test_guard_checks_every_redirect_hop(server: Server) -> None:
    """The start URL is allowed (127.0.0.1 treated as public for this test), the hop to 127.0.0.2 is not."""
    other = Server("127.0.0.2")
    try:
        [result] = fetch(
            [server.url("/to/" + other.url("/secret"))], guard=True, treat_as_public=["127.0.0.1"]
        )
    finally:
        other.close()
    assert result["error"] == (
        "refused: 127.0.0.2 is a loopback address (set fetch.allow_private_networks to allow)"
    )
    assert result["redirects"] == [[302, other.url("/secret")]]
    assert len(server.hits) == 1
    assert other.connections == 0


# --- only http and https, redirects ----------------------------------------------------------------------


def test_redirects_to_file_and_ftp_are_refused(server: Server, tmp_path: Path) -> None:
    to_file, to_ftp, direct = fetch([server.url("/to-file"), server.url("/to-ftp"), "file:///etc/passwd"])
    assert to_file["error"] == "refused redirect to file:///etc/passwd: only http and https URLs are fetched"
    assert to_ftp["error"].startswith("refused redirect to ftp://127.0.0.1:")
    assert direct["error"] == "refused: file:///etc/passwd is not an http or https URL"
    assert all(r["body_len"] == 0 and r["status"] == 0 for r in (to_file, to_ftp, direct))
    assert [p for p, _, _ in server.hits] == ["/to-file", "/to-ftp"]


def test_redirect_chain_is_recorded_hop_by_hop(server: Server) -> None:
    [result] = fetch([server.url("/chain/4")])
    assert result["status"] == 200 and result["url"] == server.url("/chain/0")
    assert result["redirects"] == [
        [301, server.url("/chain/3")],  # /chain/4 answered 301 (4 % 4 == 0 -> 301)
        [308, server.url("/chain/2")],
        [307, server.url("/chain/1")],
        [302, server.url("/chain/0")],
    ]


def test_ten_redirects_are_followed_and_the_eleventh_refused(server: Server) -> None:
    ten, eleven = fetch([server.url("/chain/10"), server.url("/chain/11")])
    assert ten["status"] == 200 and len(ten["redirects"]) == 10
    assert eleven["error"] == "too many redirects (more than 10)"
    assert len(eleven["redirects"]) == 10


def test_redirect_loop_ends_with_a_clear_error(server: Server) -> None:
    [result] = fetch([server.url("/loop/a")])
    loop_b, loop_a = server.url("/loop/b"), server.url("/loop/a")
    assert result["error"] == f"redirect loop: {loop_b} redirects back to {loop_a}"
    assert result["redirects"] == [[302, server.url("/loop/b")]]
    assert len(server.hits) == 2


# --- Retry-After -----------------------------------------------------------------------------------------


def test_retry_after_pauses_the_host_and_is_not_retried(server: Server) -> None:
    limited, later, bare, dated = fetch(
        [server.url("/429"), server.url("/after"), server.url("/429-bare"), server.url("/503-date")]
    )
    assert limited["status"] == 429 and limited["retry_after"] == 2
    assert later["status"] == 200 and later["retry_after"] is None
    [first] = server.times_of("/429")  # answered once: neither retried nor hammered
    [second] = server.times_of("/after")
    assert second - first >= 1.5  # measured by the server: the host was paused
    assert bare["status"] == 429 and bare["retry_after"] is None
    assert len(server.times_of("/429-bare")) == 1  # 429 is never retried at once, with or without the header
    assert dated["status"] == 503 and 100 < dated["retry_after"] <= 120
    assert len(server.times_of("/503-date")) == 1


def test_retry_after_parsing() -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert retry_after("120", now) == 120
    assert retry_after(b" 7 ", now) == 7
    assert retry_after(format_datetime(now + timedelta(minutes=5), usegmt=True), now) == 300
    assert retry_after("Sat, 01 Mar 2025 12:00:30 GMT", now) == 30
    for useless in (None, "", "0", "-5", "soon", "nan", "inf", format_datetime(now - timedelta(hours=1))):
        assert retry_after(useless, now) is None


# --- size and time limits --------------------------------------------------------------------------------


def test_bodies_over_max_bytes_are_aborted(server: Server) -> None:
    announced, streamed, bomb, small = fetch(
        [server.url("/big"), server.url("/big-stream"), server.url("/bomb"), server.url("/page")]
    )
    assert announced["error"] == (
        f"response over {MAX_BYTES} bytes (fetch.max_bytes), aborted (Content-Length: {3 * MAX_BYTES})"
    )
    assert streamed["error"] == f"response over {MAX_BYTES} bytes (fetch.max_bytes), aborted"
    assert bomb["error"] == f"response over {MAX_BYTES} bytes once decompressed (fetch.max_bytes), aborted"
    assert small["status"] == 200 and small["error"] is None
    assert all(r["status"] == 0 and r["body_len"] == 0 for r in (announced, streamed, bomb))


def test_a_silent_server_times_out(server: Server) -> None:
    [result] = fetch([server.url("/hang")], timeout=1)
    assert result["error"] == "timed out after 1 s"
    assert result["elapsed"] < 20  # our timeout, not the server giving up at 30 s (loose: a busy machine)


# --- politeness ------------------------------------------------------------------------------------------


def test_user_agent_names_the_crawler_and_the_contact(server: Server) -> None:
    fetch([server.url("/page")])
    [(_, _, headers)] = server.hits
    assert headers["User-Agent"].startswith("crawler/")
    assert CONTACT in headers["User-Agent"]


def test_robots_txt_is_obeyed_and_an_unreachable_one_does_not_block(server: Server) -> None:
    forbidden, allowed, feed = fetch(
        [
            {"url": server.url("/private/page"), "obey_robots": True},
            {"url": server.url("/page"), "obey_robots": True},
            {"url": server.url("/private/feed"), "obey_robots": False},
        ]
    )
    assert forbidden["error"] == "forbidden by robots.txt"
    assert allowed["status"] == 200 and feed["status"] == 200
    assert [p for p, _, _ in server.hits] == ["/robots.txt", "/page", "/private/feed"]


def test_an_unreachable_robots_txt_does_not_block_the_fetch(server: Server) -> None:
    server.robots_hang = True
    [page] = fetch([{"url": server.url("/private/page"), "obey_robots": True}], timeout=1)
    assert page["status"] == 200 and page["error"] is None
    paths = [p for p, _, _ in server.hits]
    assert paths[-1] == "/private/page" and set(paths[:-1]) == {"/robots.txt"}  # a timeout is retried once
