"""Misbehaving servers on loopback for tests/test_hostile.py: streamed giant bodies, a gzip bomb, a server
that never answers and one that answers a byte a second.

Every server is bounded: a streamed body is a generator (nothing big is ever built in memory), each answer
gives up after `max_seconds`, and close() stops the server and every connection it holds.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Stream = Callable[[], Iterator[bytes]]


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: Stream | None = None  # a lazily generated body, instead of `body`
    length: int | None = None  # Content-Length of a stream; None: the body ends when the connection closes


class HostileServer:
    """An HTTP/1.0 server on one loopback address whose answers a test sets per path."""

    def __init__(self, host: str = "127.0.0.1", max_seconds: float = 30.0) -> None:
        self.routes: dict[str, Reply] = {}
        self.hits: list[str] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server.lock:
                    server.hits.append(self.path)
                    reply = server.routes.get(self.path) or Reply(404, {"Content-Type": "text/plain"}, b"no")
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                if reply.stream is None:
                    self.send_header("Content-Length", str(len(reply.body)))
                elif reply.length is not None:
                    self.send_header("Content-Length", str(reply.length))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client hung up: it had enough
                    if reply.stream is None:
                        self.wfile.write(reply.body)
                    else:
                        server._write_stream(self, reply.stream)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.max_seconds = max_seconds
        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://{host}:{self.httpd.server_address[1]}"
        # A short poll interval: close() waits for it, once per server, and a scenario has twenty.
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def _write_stream(self, handler: BaseHTTPRequestHandler, stream: Stream) -> None:
        deadline = time.monotonic() + self.max_seconds
        for chunk in stream():
            if self.stopping.is_set() or time.monotonic() > deadline:
                return
            handler.wfile.write(chunk)

    def url(self, path: str) -> str:
        return self.base + path

    def set(self, path: str, body: bytes, status: int = 200, **headers: str) -> None:
        with self.lock:
            self.routes[path] = Reply(status, _header_names(headers), body)

    def stream(self, path: str, stream: Stream, length: int | None = None, **headers: str) -> None:
        with self.lock:
            self.routes[path] = Reply(200, _header_names(headers), stream=stream, length=length)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        with self.lock:
            self.routes[path] = Reply(status, {"Location": location})

    def hits_of(self, prefix: str) -> list[str]:
        with self.lock:
            return [p for p in self.hits if p.startswith(prefix)]

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _header_names(headers: dict[str, str]) -> dict[str, str]:
    """content_type="x" -> {"Content-Type": "x"}: keyword arguments cannot hold dashes."""
    return {"-".join(part.capitalize() for part in k.split("_")): v for k, v in headers.items()}


class RawServer:
    """A TCP server that reads the request and then either never answers ("silent") or sends its answer
    one byte every `interval` seconds ("trickle"). Each connection is dropped after `max_seconds`."""

    def __init__(
        self,
        mode: str,
        host: str = "127.0.0.1",
        answer: bytes = b"",
        interval: float = 1.0,
        max_seconds: float = 30.0,
    ) -> None:
        assert mode in ("silent", "trickle")
        self.mode, self.answer, self.interval, self.max_seconds = mode, answer, interval, max_seconds
        self.connections = 0
        self.bytes_sent = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.sock = socket.create_server((host, 0))
        self.sock.settimeout(0.2)
        self.base = f"http://{host}:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        deadline = time.monotonic() + self.max_seconds
        with conn:
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 65536 and time.monotonic() < deadline:
                if not _readable(conn, 0.2):
                    continue
                data = _recv(conn)
                if not data:
                    return
                request += data
            sent = 0
            while not self.stopping.is_set() and time.monotonic() < deadline:
                if _readable(conn, self.interval) and not _recv(conn):
                    return  # the client gave up and closed (or reset) the connection
                if self.mode == "trickle" and sent < len(self.answer):
                    try:
                        conn.sendall(self.answer[sent : sent + 1])
                    except OSError:
                        return
                    sent += 1
                    with self.lock:
                        self.bytes_sent += 1

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.sock.close()


def _recv(conn: socket.socket) -> bytes:
    try:
        return conn.recv(4096)
    except OSError:
        return b""


def _readable(conn: socket.socket, timeout: float) -> bool:
    try:
        ready, _, _ = select.select([conn], [], [], timeout)
    except (OSError, ValueError):
        return True  # closed under us: the recv that follows says so
    return bool(ready)


# -- bodies -------------------------------------------------------------------------------------------------

CHUNK = 1 << 20


def endless_feed(total: int) -> Stream:
    """An RSS document that goes on for `total` bytes, generated as it is sent."""

    def stream() -> Iterator[bytes]:
        head = b"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>endless</title>"
        filler = b"<!-- " + b"x" * (CHUNK - 9) + b" -->"
        yield head
        sent = len(head)
        while sent < total:
            piece = filler[: total - sent]
            yield piece
            sent += len(piece)

    return stream


def gzip_bomb(inflated: int) -> tuple[int, Stream]:
    """(its length, the body): a gzip member of `inflated` zero bytes, about 1/1000 of that on the wire.

    The deflate stream is one block per MiB of zeros, each ended by a full flush, so every block after the
    first is the same bytes and the body is generated block by block. The CRC of the zeros is derived
    arithmetically (crc32_combine), not by running CRC-32 over gigabytes.
    """
    assert inflated % CHUNK == 0
    blocks = inflated // CHUNK
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(bytes(CHUNK)) + comp.flush(zlib.Z_FULL_FLUSH)
    assert comp.compress(bytes(CHUNK)) + comp.flush(zlib.Z_FULL_FLUSH) == block
    end = comp.flush(zlib.Z_FINISH)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    length = len(header) + len(block) * blocks + len(end) + 8

    def stream() -> Iterator[bytes]:
        yield header
        for _ in range(blocks):
            yield block
        yield end + struct.pack("<II", crc32_of_zeros(inflated), inflated & 0xFFFFFFFF)

    return length, stream


def crc32_of_zeros(count: int) -> int:
    """zlib.crc32(bytes(count)) for any count, by doubling with crc32_combine."""
    if count % CHUNK:
        return zlib.crc32(bytes(count))
    crc, size = 0, 0  # the CRC of the zeros so far
    step_crc, step = zlib.crc32(bytes(CHUNK)), CHUNK
    rest = count // CHUNK
    while rest:
        if rest & 1:
            crc = crc32_combine(crc, step_crc, step) if size else step_crc
            size += step
        step_crc, step = crc32_combine(step_crc, step_crc, step), step * 2
        rest >>= 1
    return crc


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """zlib's crc32_combine: the CRC-32 of A+B from those of A and B and the length of B."""

    def times(matrix: list[int], vector: int) -> int:
        out, i = 0, 0
        while vector:
            if vector & 1:
                out ^= matrix[i]
            vector >>= 1
            i += 1
        return out

    def square(matrix: list[int]) -> list[int]:
        return [times(matrix, matrix[n]) for n in range(32)]

    odd = [0xEDB88320] + [1 << n for n in range(31)]  # the operator for one zero bit
    even = square(odd)  # two zero bits
    odd = square(even)  # four zero bits
    while True:
        even = square(odd)
        if len2 & 1:
            crc1 = times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = square(even)
        if len2 & 1:
            crc1 = times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def big_page(total: int) -> Stream:
    """An HTML article page of `total` bytes, generated as it is sent."""

    def stream() -> Iterator[bytes]:
        head = b"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Huge</title></head><body><article>"
        para = (
            b"<p>" + b"The council met again to discuss the budget of the harbour railway. " * 14 + b"</p>\n"
        )
        yield head
        sent = len(head)
        piece = para * (CHUNK // len(para))
        while sent < total:
            part = piece[: total - sent]
            yield part
            sent += len(part)

    return stream
