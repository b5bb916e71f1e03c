"""A throwaway Redis server for the tests: its own process on a free 127.0.0.1 port, nothing on disk.

Started once per test session (no snapshots, no append-only file, its working folder a temporary one) and
stopped at the end; each test gets a key prefix of its own (`redis_url` plus `redis_prefix`) instead of a
flush, so tests never see each other's keys. Where the binary is missing (tests/install_redis.sh installs it)
or the Python client is absent or the server cannot start, the tests that need it skip and say why.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

START_TIMEOUT = 10.0  # seconds for the server to answer PING


@dataclass
class RedisServer:
    port: int
    folder: Path
    process: subprocess.Popen[bytes]
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _databases: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def new_database(self) -> str:
        """The URL of a database number no other test of the session uses (for code with fixed key names)."""
        return f"redis://127.0.0.1:{self.port}/{next(self._databases)}"

    def new_prefix(self) -> str:
        """A key prefix no other test of the session uses."""
        return f"test{next(self._names)}:"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> bool:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if client.ping():
                    return True
            except redis.ConnectionError:
                time.sleep(0.05)
        return False
    finally:
        client.close()


def _start(folder: Path) -> tuple[RedisServer | None, str]:
    # /usr/bin may be missing from a minimal PATH.
    binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin")
    if binary is None:
        return None, "Redis is not installed (no redis-server; tests/install_redis.sh installs it as root)"
    try:
        import redis  # noqa: F401
    except ImportError:
        return None, "the redis Python client is not installed (pip install 'redis>=5')"
    port = _free_port()
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
           "--databases", "64", "--dir", str(folder), "--logfile", str(folder / "log")]  # fmt: skip
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=folder)
    if _wait_ready(port, process):
        return RedisServer(port, folder, process), ""
    process.kill()
    _, err = process.communicate(timeout=5)
    log = (folder / "log").read_text(errors="replace")[-500:] if (folder / "log").exists() else ""
    return None, f"redis-server did not start: {err.decode(errors='replace').strip()[-300:]} {log}"


# Registered under the names tests use (redis_server, redis_url), so a test module imports these functions
# without its parameters shadowing them.
@pytest.fixture(scope="session", name="redis_server")
def redis_server_fixture() -> Iterator[RedisServer]:
    folder = Path(tempfile.mkdtemp(prefix="crawler-redis-"))
    server, reason = _start(folder)
    if server is None:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(reason)
    try:
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(name="redis_url")
def redis_url_fixture(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture(name="redis_prefix")
def redis_prefix_fixture(redis_server: RedisServer) -> str:
    """A key prefix of this test's own, for the stream, group and limiter names."""
    return redis_server.new_prefix()
