"""Which scheduler leads: a PostgreSQL session advisory lock, held on a connection of its own.

Every scheduler node tries the lock; the one that gets it leads (puts poll requests on the queue, writes the
digests) for as long as its session lives, the others stand by and try again every `retry` seconds. The lock
belongs to the database session, so it is released by the server the moment the leader's connection ends:
a leader that exits, crashes or is killed (its socket closes) hands over at the standby's next try. A
leader cut off from the database by the network learns it only when its next check fails; meanwhile the
server may have ended its session and a standby taken the lock, so for a while (one check interval plus the
connection's timeouts, about 20 s) two nodes may both act. What they do is fenced elsewhere: the queue keeps
one request per source, and a digest is claimed in the index before it is written (store.claim_digest).

Synchronous, on a dedicated connection that never returns to a pool (the lock must stay on one session); an
asyncio caller runs the calls in a thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

LOCK_NAME = "crawler:scheduler"
# How often a standby tries the lock and a leader checks that it still holds it. A dead leader is replaced
# within one retry plus the time the server takes to notice its session ended (immediate when its process
# died: the kernel closes the socket).
DEFAULT_RETRY = 5.0
CONNECT_ARGS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 15000,  # ms: unacknowledged data for this long ends the connection
    "options": "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3",
}


def lock_key(name: str = LOCK_NAME) -> int:
    """The 64-bit advisory lock key of a name: stable across processes and versions (not Python's hash)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class LeaderLock:
    def __init__(self, url: str, name: str = LOCK_NAME) -> None:
        if make_url(url).get_backend_name() != "postgresql":
            raise ValueError("leader election needs a PostgreSQL database (crawler.yaml `database:`)")
        self.key = lock_key(name)
        # NullPool: the one connection is ours alone; closing it ends the session, which frees the lock.
        # Timeouts and keepalives both ways, so a dead network fails a check in seconds rather than after
        # TCP's retransmissions (minutes): the client's libpq options, and the server's for this session.
        self._engine = create_engine(url, poolclass=NullPool, connect_args=CONNECT_ARGS)
        self._conn: Connection | None = None
        self.last_answer = time.time()  # when the database last answered (for health checks)

    @property
    def held(self) -> bool:
        return self._conn is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; True if this node now leads. Database errors count as 'not now'."""
        if self._conn is not None:
            return self.check()
        try:
            conn = self._engine.connect()
        except DBAPIError as error:
            log.warning("leader election: database unreachable: %s", _first_line(error))
            return False
        try:
            # Autocommit: the lock is the session's; no transaction stays open (and idle) while we lead.
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
            self.last_answer = time.time()
        except DBAPIError as error:
            log.warning("leader election: %s", _first_line(error))
            conn.close()
            return False
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def check(self) -> bool:
        """Whether this node still holds the lock: its session is alive and the server lists the lock as
        ours. False (and the connection dropped) otherwise: the node must stop leading."""
        if self._conn is None:
            return False
        try:
            mine = self._conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = pg_backend_pid() AND objid::text::bigint = (CAST(:k AS bigint) & 4294967295)"
                    " AND classid::text::bigint = ((CAST(:k AS bigint) >> 32) & 4294967295)"
                ),
                {"k": self.key},
            ).scalar()
        except DBAPIError as error:
            log.warning("leader election: lost the database session: %s", _first_line(error))
            self._drop()
            return False
        self.last_answer = time.time()
        if not mine:
            self._drop()
            return False
        return True

    def release(self) -> None:
        """Stop leading: unlock and close the session (closing alone would do; unlocking says so at once)."""
        if self._conn is None:
            return
        with contextlib.suppress(DBAPIError):  # the session is gone: so is the lock
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        self._drop()

    def close(self) -> None:
        self.release()
        self._engine.dispose()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(DBAPIError):
                conn.close()


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
