"""A throwaway PostgreSQL server for the tests: its own cluster in a temporary folder, on loopback.

Started once per test session (initdb, then pg_ctl start on a free 127.0.0.1 port with its unix socket in the
same temporary folder, fsync off) and stopped at the end; each test gets a database of its own. initdb and the
server refuse to run as root, so as root they run as the `postgres` user (or `nobody`) through runuser. Where
the binaries are missing (tests/install_postgres.sh installs them) or the server cannot start, the tests that
need it skip and say why.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

START_TIMEOUT = 30  # seconds for initdb and for the server to accept connections


@dataclass
class PgServer:
    port: int
    folder: Path
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://crawler@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = f"test_{next(self._names)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=crawler dbname=postgres") as conn:
            conn.autocommit = True
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _user() -> str | None:
    """Who runs the server: ourselves unless root (PostgreSQL refuses root), then postgres or nobody."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str], user: str | None) -> subprocess.CompletedProcess[str]:
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=START_TIMEOUT, cwd="/")


def _start(folder: Path) -> tuple[PgServer | None, str]:
    binaries = _binaries()
    if binaries is None:
        return None, "PostgreSQL is not installed (no initdb; tests/install_postgres.sh installs it as root)"
    user = _user()
    if os.geteuid() == 0 and user is None:
        return None, "running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as"
    if user is not None:
        shutil.chown(folder, user)
    data = folder / "data"
    done = _run(
        [str(binaries / "initdb"), "-D", str(data), "-U", "crawler", "-A", "trust", "-E", "UTF8",
         "--locale=C", "--no-sync"],
        user,
    )  # fmt: skip
    if done.returncode != 0:
        return None, f"initdb failed: {done.stderr.strip()[-500:]}"
    port = _free_port()
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    done = _run(
        [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w",
         "-t", str(START_TIMEOUT), "start"],
        user,
    )  # fmt: skip
    if done.returncode != 0:
        log = (folder / "log").read_text(errors="replace")[-500:] if (folder / "log").exists() else ""
        return None, f"PostgreSQL did not start: {done.stderr.strip()[-300:]} {log}"
    return PgServer(port, folder), ""


# Registered under the names tests use (postgres, pg_url), so a test module imports these functions without
# its parameters shadowing them.
@pytest.fixture(scope="session", name="postgres")
def postgres_fixture() -> Iterator[PgServer]:
    folder = Path(tempfile.mkdtemp(prefix="crawler-pg-"))
    folder.chmod(0o755)
    server, reason = _start(folder)
    if server is None:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(reason)
    try:
        yield server
    finally:
        binaries = _binaries()
        assert binaries is not None
        _run([str(binaries / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop"], _user())
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(name="pg_url")
def pg_url_fixture(postgres: PgServer) -> str:
    """The URL of an empty database of the session's server, for one test."""
    return postgres.new_database()
