"""Poll requests on a Redis stream, shared by any number of workers through a consumer group.

The scheduler `put`s one request per due source; workers `take` them, poll the source and `ack`. Delivery is
at-least-once: a request stays in the group's pending list from `take` until `ack`, and a request whose
worker died (taken, never acknowledged) is claimed by another worker once it has been idle `claim_idle`
seconds (XAUTOCLAIM). A request can therefore be polled twice (a slow worker, not a dead one, whose request
was claimed); that is harmless because filing dedups every item itself (unique keys in the index), so a
second poll of the same source files nothing new.

`put` dedups per source: while a request for a source waits or runs, another `put` for it is a no-op, so a
worker pool that falls behind does not pile up requests for one source (the waiting one polls it anyway).
The marker is a key per source holding the request's id, checked and set together with the XADD in one script,
and cleared by `ack` together with XACK and XDEL; it also expires after `dedupe_ttl`, so a request lost in a
way we did not foresee (the stream trimmed by hand) cannot lock its source out for ever.

When a worker is done with a request it reports the outcome (when the source is due next, or that it stopped)
on a second stream, `crawler:polled`, in the same script as the ack; the leading scheduler follows that
stream to reschedule the source, and a scheduler that takes over reads the index for the rest. A worker
busy with a long poll `touch`es its request now and then so it is not mistaken for a dead one; a request
delivered `max_deliveries` times (it kills every worker that takes it) is dropped with an error.

Everything here is synchronous and plain data in and out; an asyncio caller runs `take` (which blocks up to
`block_ms`) in a thread (asyncio.to_thread).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

import redis

DEFAULT_STREAM = "crawler:polls"
DEFAULT_GROUP = "workers"
DEFAULT_DEDUPE_TTL = 86400.0  # seconds; far longer than any request should wait in a healthy pool
DEFAULT_MAX_DELIVERIES = 5
SOCKET_TIMEOUT = 15.0  # seconds; longer than any blocking read we issue (take and outcomes block <= 5 s)
CONNECT_TIMEOUT = 5.0
# Outcomes kept for a scheduler that reads behind (approximate trimming is O(1)); a new leader does not need
# old ones: it reads every source's next poll from the index when it takes over.
REPORTS_KEPT = 100_000

# KEYS: stream, dedupe key. ARGV: source, due, dedupe ttl (ms). The request id, or false when one waits.
_PUT = """
if redis.call('EXISTS', KEYS[2]) == 1 then
    return false
end
local id = redis.call('XADD', KEYS[1], '*', 'source', ARGV[1], 'due', ARGV[2])
redis.call('SET', KEYS[2], id, 'PX', ARGV[3])
return id
"""

# KEYS: stream, dedupe key, reports stream. ARGV: group, request id, source, next poll, disabled, kept.
# The outcome is reported and the request acknowledged together: a scheduler never sees a request done
# without its outcome, nor an outcome of a request still pending.
_DONE = """
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[2] then
    redis.call('DEL', KEYS[2])
end
if acked == 1 then  -- a stale copy (its request was taken over and done) must not overrule the newer report
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'source', ARGV[3], 'next_poll', ARGV[4],
               'disabled', ARGV[5])
end
return acked
"""

# KEYS: stream. ARGV: group, consumer, request id. Resets the request's idle time if this consumer still owns
# it (1), else leaves it alone (0): a worker that was too slow must not take it back from its new owner.
_TOUCH = """
local entry = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #entry == 0 or entry[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""

# KEYS: stream, dedupe key. ARGV: group, request id. Clears the marker only if it is this request's, so an
# ack of a stale copy (claimed and acknowledged twice) never clears the marker of a newer request.
_ACK = """
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[2] then
    redis.call('DEL', KEYS[2])
end
return acked
"""


@dataclass(frozen=True)
class Request:
    """One poll request: poll `source`, which fell due at `due` (ISO 8601)."""

    id: str
    source: str
    due: str
    claimed: bool = False  # taken over from a consumer that did not acknowledge it in time
    deliveries: int = 1  # how many times it has been handed to a worker


@dataclass(frozen=True)
class Outcome:
    """A finished poll, as a worker reports it: the source's next poll (ISO 8601, or "" when it stopped)."""

    id: str
    source: str
    next_poll: str
    disabled: str


def default_consumer() -> str:
    """host:pid, unique among live workers and telling the operator where a pending request sits."""
    return f"{socket.gethostname()}:{os.getpid()}"


class PollQueue:
    def __init__(
        self,
        url: str,
        stream: str = DEFAULT_STREAM,
        group: str = DEFAULT_GROUP,
        consumer: str | None = None,
        claim_idle: float = 60.0,
        dedupe_ttl: float = DEFAULT_DEDUPE_TTL,
        max_deliveries: int = DEFAULT_MAX_DELIVERIES,
    ) -> None:
        self.stream = stream
        self.group = group
        self.consumer = consumer or default_consumer()
        self.claim_idle_ms = max(1, int(claim_idle * 1000))
        self.dedupe_ttl_ms = max(1, int(dedupe_ttl * 1000))
        self.max_deliveries = max_deliveries
        self.reports = f"{stream}:done"
        # Timeouts: a connection the network silently dropped must fail (and be retried), not hang a worker
        # for ever; the socket timeout outlasts the longest blocking read (take's block_ms).
        self._redis = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_keepalive=True,
            health_check_interval=30,
        )
        self._put = self._redis.register_script(_PUT)
        self._ack = self._redis.register_script(_ACK)
        self._done = self._redis.register_script(_DONE)
        self._touch = self._redis.register_script(_TOUCH)
        # Where the next XAUTOCLAIM scan starts: walking the pending list in steps keeps each take cheap
        # however many requests are pending; "0-0" again once the scan wrapped round.
        self._claim_cursor = "0-0"

    def close(self) -> None:
        self._redis.close()

    def _dedupe_key(self, source: str) -> str:
        return f"{self.stream}:waiting:{source}"

    def ensure_group(self) -> None:
        """Create the stream and the group if missing; both roles call it at start, in any order."""
        try:
            # id 0: a group created after the scheduler already put requests still delivers them.
            self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def put(self, source: str, due: str) -> str | None:
        """Queue a poll of source; its request id, or None when a request for it already waits or runs."""
        found = self._put(
            keys=[self.stream, self._dedupe_key(source)], args=[source, due, self.dedupe_ttl_ms]
        )
        return str(found) if found else None

    def take(self, block_ms: int = 1000, count: int = 1) -> list[Request]:
        """Up to count requests: first those dead consumers left idle, then new ones (waiting block_ms)."""
        found = self._claim(count)
        if len(found) < count:
            # Only block when nothing was claimed: a claimed request should start now, not after block_ms.
            block = None if found else max(1, block_ms)
            try:
                reply: Any = self._redis.xreadgroup(
                    self.group, self.consumer, {self.stream: ">"}, count=count - len(found), block=block
                )
            except redis.RedisError:
                if found:  # they are ours now: poll them rather than leave them to a later claim
                    return found
                raise
            for _, entries in reply or []:
                found.extend(_request(entry_id, fields) for entry_id, fields in entries if fields)
        return found

    def _claim(self, count: int) -> list[Request]:
        reply: Any = self._redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            self.claim_idle_ms,
            start_id=self._claim_cursor,
            count=count,
        )
        # Redis 7 replies (next cursor, entries, deleted ids); Redis 6.2 leaves the third out.
        self._claim_cursor, entries = str(reply[0]), reply[1]
        # An entry deleted from the stream while pending comes back without fields: nothing to poll.
        found = [_request(entry_id, fields, claimed=True) for entry_id, fields in entries if fields]
        return [self._counted(request) for request in found]

    def _counted(self, request: Request) -> Request:
        """The claimed request with its delivery count (from the pending list, one round trip)."""
        info: Any = self._redis.xpending_range(
            self.stream, self.group, min=request.id, max=request.id, count=1
        )
        times = int(info[0]["times_delivered"]) if info else 1
        return Request(request.id, request.source, request.due, claimed=True, deliveries=times)

    def touch(self, request: Request) -> bool:
        """Still working on it: reset the request's idle time so no other worker claims it. False if it was
        claimed by another worker already (this one was too slow to say so)."""
        got = self._touch(keys=[self.stream], args=[self.group, self.consumer, request.id])
        return bool(int(got))

    def done(self, request: Request, next_poll: str, disabled: str = "") -> bool:
        """Report the poll's outcome and acknowledge the request at once; False if already acknowledged."""
        acked = self._done(
            keys=[self.stream, self._dedupe_key(request.source), self.reports],
            args=[self.group, request.id, request.source, next_poll, disabled, REPORTS_KEPT],
        )
        return bool(acked)

    def last_outcome(self) -> str:
        """The id of the newest outcome reported, to follow the stream from there ("0-0" when none)."""
        newest: Any = self._redis.xrevrange(self.reports, count=1)
        return str(newest[0][0]) if newest else "0-0"

    def outcomes(self, after: str, block_ms: int = 1000, count: int = 500) -> list[Outcome]:
        """Outcomes reported after the id `after`, waiting up to block_ms for the first."""
        reply: Any = self._redis.xread({self.reports: after}, count=count, block=max(1, block_ms))
        found: list[Outcome] = []
        for _, entries in reply or []:
            for entry_id, fields in entries:
                found.append(
                    Outcome(
                        entry_id, fields["source"], fields.get("next_poll", ""), fields.get("disabled", "")
                    )
                )
        return found

    def ack(self, request: Request) -> bool:
        """The request is done (polled, or failed for good): forget it. False if already acknowledged."""
        acked = self._ack(keys=[self.stream, self._dedupe_key(request.source)], args=[self.group, request.id])
        return bool(acked)

    def pending(self) -> int:
        """Requests taken and not yet acknowledged (running, or left by a dead worker), for /metrics."""
        try:
            summary: Any = self._redis.xpending(self.stream, self.group)
        except redis.ResponseError:  # no stream or group yet: nothing is pending
            return 0
        return int(summary["pending"])

    def waiting(self) -> int:
        """Requests in the stream not yet acknowledged: those not yet taken plus the pending ones."""
        return int(self._redis.xlen(self.stream))


def _request(entry_id: str, fields: dict[str, str], claimed: bool = False) -> Request:
    return Request(id=entry_id, source=fields["source"], due=fields.get("due", ""), claimed=claimed)
