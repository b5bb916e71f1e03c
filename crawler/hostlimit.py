"""Politeness per host across every worker: a limiter kept in Redis.

At most `per_host` requests to one host are in flight at a time and their starts are at least `delay`
seconds apart, counted over all workers on all machines, and `pause(host, seconds)` (a 429 or 503 with
Retry-After) holds every worker off that host until the pause ends.

Each host has three keys: a sorted set of leases (a token per request in flight, scored by when it expires),
the earliest time the next request may start, and the time a pause ends. One Lua script decides a start
atomically, so two workers can never both take the last slot. A lease expires `lease` seconds after it was
last renewed: the holder renews it while the request runs, so a long download keeps its slot, but a worker
that died holding one frees it within `lease` seconds instead of blocking the host for ever. Times are the
Redis server's clock (TIME), so machines whose clocks disagree still space their requests correctly.

A worker that cannot start sleeps until the delay or pause ends, or a short moment when all slots are taken
(a slot freed elsewhere is not announced), then tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "crawler:host:"
DEFAULT_LEASE = 60.0  # seconds a lease outlives its last renewal; renewed every third of that
FULL_RETRY = (0.01, 0.05)  # seconds to sleep, at random in this range, when every slot of a host is taken
MAX_CONNECTIONS = 32  # to Redis per limiter; more waiters than this queue for a connection (one script each)
MAX_SLEEP = 1.0  # never sleep longer at once, so a waiter notices a shortened delay setting soon enough

# KEYS: leases, next start, pause. ARGV: token, per_host, delay (ms), lease (ms).
# Returns {0, now} when the lease is taken (now: the start, server time in ms), {1, ms} when the host is
# paused or its delay has not passed (ms: how long), {2, ms} when all its slots are taken.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if paused > now then return {1, paused - now} end
local nxt = tonumber(redis.call('GET', KEYS[2]) or '0')
if nxt > now then return {1, nxt - now} end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {2, tonumber(first[2]) - now}
end
local lease = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
local delay = tonumber(ARGV[3])
if delay > 0 then redis.call('SET', KEYS[2], now + delay, 'PX', delay) end
return {0, now}
"""

# KEYS: leases. ARGV: token, lease (ms). 1 if the lease was still held and is renewed, 0 if it had expired.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
local keep = redis.call('PTTL', KEYS[1])
if keep < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""

# KEYS: pause. ARGV: seconds (ms). A pause only ever lengthens: a shorter Retry-After seen by another worker
# must not cut short the one already in force. Returns when the pause ends (server time in ms).
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= until_ms then return current end
redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1]))
return until_ms
"""


@dataclass(frozen=True)
class Lease:
    """A slot held: `started` is when it was granted, in the Redis server's milliseconds since the epoch."""

    host: str
    token: str
    started: int


class HostLimiter:
    def __init__(
        self,
        url: str,
        per_host: int = 2,
        delay: float = 1.0,
        prefix: str = DEFAULT_PREFIX,
        lease: float = DEFAULT_LEASE,
    ) -> None:
        if per_host < 1:
            raise ValueError(f"per_host must be at least 1, got {per_host}")
        self.per_host = per_host
        self.delay = delay
        self.prefix = prefix
        self.lease_ms = max(1, int(lease * 1000))
        # A blocking pool: a worker with many downloads waiting on hosts runs more acquire loops at once than
        # a pool has connections, and the default pool raises "Too many connections" instead of waiting.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            decode_responses=True,
            max_connections=MAX_CONNECTIONS,
            timeout=None,  # waiting for a free connection is waiting for the host: no limit
            socket_timeout=10.0,  # but a server that stopped answering fails the call
            socket_connect_timeout=5.0,
            socket_keepalive=True,
        )
        self._redis = aioredis.Redis(connection_pool=pool)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew = self._redis.register_script(_RENEW)
        self._pause = self._redis.register_script(_PAUSE)

    async def close(self) -> None:
        await self._redis.aclose()

    def _keys(self, host: str) -> list[str]:
        base = f"{self.prefix}{host.lower()}"
        return [f"{base}:leases", f"{base}:next", f"{base}:pause"]

    async def acquire(self, host: str, per_host: int | None = None, delay: float | None = None) -> Lease:
        """Wait for a slot on host (the limiter's own per_host and delay unless given) and take it."""
        token = uuid.uuid4().hex
        limit = per_host or self.per_host
        delay_ms = int((self.delay if delay is None else delay) * 1000)
        while True:
            state, value = await self._acquire(
                keys=self._keys(host), args=[token, limit, delay_ms, self.lease_ms]
            )
            if int(state) == 0:
                return Lease(host, token, int(value))
            if int(state) == 1:
                await asyncio.sleep(min(int(value) / 1000, MAX_SLEEP))
            else:
                await asyncio.sleep(min(random.uniform(*FULL_RETRY), max(int(value), 1) / 1000))

    async def release(self, lease: Lease) -> None:
        await self._redis.zrem(self._keys(lease.host)[0], lease.token)

    async def renew(self, lease: Lease) -> bool:
        """Push the lease's expiry `lease` seconds ahead; False if it had already expired (slot lost)."""
        renewed = await self._renew(keys=self._keys(lease.host)[:1], args=[lease.token, self.lease_ms])
        return bool(int(renewed))

    async def pause(self, host: str, seconds: float) -> int:
        """Hold every worker off host for seconds (Retry-After); returns when it ends, in server ms."""
        until = await self._pause(keys=self._keys(host)[2:], args=[max(1, int(seconds * 1000))])
        return int(until)

    @contextlib.asynccontextmanager
    async def slot(
        self, host: str, per_host: int | None = None, delay: float | None = None
    ) -> AsyncIterator[Lease]:
        """Hold a slot on host for the body; renewed while it runs, released after, even on error."""
        lease = await self.acquire(host, per_host, delay)
        keeper = asyncio.create_task(self._keep(lease))
        try:
            yield lease
        finally:
            keeper.cancel()
            # asyncio.wait, not `await keeper`: a cancellation of this task itself must not be swallowed.
            await asyncio.wait([keeper])
            try:
                # Shielded: a cancelled download must give its slot back now, not when the lease expires.
                await asyncio.shield(self.release(lease))
            except RedisError as error:  # the download is done; the lease expires by itself
                log.warning("could not release the lease on %s: %s", lease.host, error)

    async def _keep(self, lease: Lease) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                await self.renew(lease)
            except RedisError as error:
                # Redis briefly unreachable: the request carries on; the next renewal may still be in time.
                log.warning("could not renew the lease on %s: %s", lease.host, error)
