"""One writer per data folder: `crawler run` and `crawler poll` hold an exclusive lock on DATA/crawler.lock.

The lock is an ``flock`` on an open file, so the kernel releases it when the process ends, however it ends:
a service killed with SIGKILL (or a power cut) leaves no stale lock behind, and nothing has to guess whether
a PID in a file is still alive. The holder writes "PID COMMAND" into the file so that whoever finds the
folder busy can say who holds it. The file itself is never deleted: deleting a lock file while another
process waits on it is the classic way to end up with two holders.

Readers (`crawler digest`, `search`, `sources`) take no lock: SQLite's WAL lets them read while the service
writes, and what they write (a digest file, atomically) is idempotent.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

LOCK_FILE = "crawler.lock"
# How long `crawler poll` waits for the lock (another poll ending, a service stopping) before giving up.
POLL_WAIT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a data folder, as written in its lock file (either may be unknown while it is written)."""

    pid: int | None
    command: str | None

    def describe(self) -> str:
        who = f"`crawler {self.command}`" if self.command else "another crawler process"
        return f"{who} (PID {self.pid})" if self.pid else who


class LockHeld(Exception):
    """The data folder is in use by another process."""

    def __init__(self, data_dir: Path, holder: Holder):
        super().__init__(f"{data_dir} is in use by {holder.describe()}")
        self.data_dir = data_dir
        self.holder = holder


def read_holder(data_dir: Path) -> Holder:
    """Who holds the folder's lock, from the lock file (a holder writes it right after locking)."""
    try:
        text = (data_dir / LOCK_FILE).read_text("utf-8", errors="replace")
    except OSError:
        return Holder(None, None)
    parts = text.split()
    pid = int(parts[0]) if parts and parts[0].isdigit() else None
    return Holder(pid, parts[1] if len(parts) > 1 else None)


class DataLock:
    """The exclusive lock of one data folder, held by one command for as long as it works on the folder."""

    def __init__(self, data_dir: Path, command: str):
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self.command = command
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(
        self,
        wait: float = 0.0,
        on_wait: Callable[[Holder], None] | None = None,
        step: float = 0.2,
    ) -> None:
        """Take the lock, waiting up to `wait` seconds for its holder; raise LockHeld if it stays busy.

        `on_wait` is called once, with the holder, when the lock is busy and the caller is going to wait.
        """
        if self._fd is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # O_CLOEXEC (Python's default): worker processes must not inherit the descriptor, or the lock would
        # outlive the service in an orphaned worker.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + wait
        told = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    holder = self._holder()
                    if time.monotonic() >= deadline:
                        raise LockHeld(self.data_dir, holder) from None
                    if not told and on_wait is not None:
                        on_wait(holder)
                        told = True
                    time.sleep(min(step, max(0.0, deadline - time.monotonic())))
        except BaseException:
            os.close(fd)
            raise
        # Truncate only once the lock is ours: opening with O_TRUNC would erase the holder's PID.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {self.command}\n".encode(), 0)
        self._fd = fd

    def _holder(self) -> Holder:
        holder = read_holder(self.data_dir)
        if holder.pid is None:  # the holder has locked but not written yet: give it a moment
            time.sleep(0.05)
            holder = read_holder(self.data_dir)
        return holder

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> DataLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
