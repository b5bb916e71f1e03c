"""The optional monitoring endpoint: /healthz, /metrics and /sources over HTTP, on the service's own loop.

crawler.yaml turns it on with ``http: {listen: "127.0.0.1:8787"}``. It is a deliberately small HTTP/1.1
server on ``asyncio.start_server`` (GET and HEAD, one request per connection): it needs no reactor and no
thread, starts and stops with the service, and a monitor polling it costs next to nothing. It has no
authentication: bind it to loopback (the default suggested everywhere) or put a proxy in front of it.

`observability(settings)` is the piece crawler.service.serve runs beside the service (one of its extras):
it feeds the metrics from every poll's report and serves the endpoint, reading the running service (its
scheduler, its current config, its polls in flight) through a ServiceProbe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crawler.metrics import METRICS, Metrics

if TYPE_CHECKING:  # crawler.config imports this module (HttpSettings): no run-time imports back
    from apscheduler.schedulers.base import BaseScheduler

    from crawler.config import Config
    from crawler.pipeline import PollReport
    from crawler.store import Store

log = logging.getLogger(__name__)

# A request must arrive whole within this long; a client that dawdles is dropped.
REQUEST_SECONDS = 10.0
MAX_LINE = 8192  # bytes in the request line or a header line
MAX_HEADERS = 100
POLL_JOB_PREFIX = "poll:"  # crawler.schedule.poll_job_id

_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^\s:\[\]]+)):(?P<port>\d{1,5})$")


class HttpSettings(BaseModel):
    """crawler.yaml `http:`: the monitoring endpoint (off when the key is absent)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = Field(
        description='HOST:PORT to serve /healthz, /metrics and /sources on, such as "127.0.0.1:8787" '
        '(or "[::1]:8787"). There is no authentication: keep it on a loopback address unless a proxy '
        "guards it. Port 0 takes any free port, named in the log (several workers on one machine).",
        examples=["127.0.0.1:8787"],
        json_schema_extra={"pattern": r"^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):\d{1,5}$"},  # _LISTEN, for editors
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        match = _LISTEN.match(value.strip())
        if not match:
            raise ValueError(f'expected HOST:PORT such as "127.0.0.1:8787", got {value!r}')
        port = int(match["port"])
        if not 0 <= port <= 65535:
            raise ValueError(f"the port must be between 0 and 65535 (0: any free port), got {port}")
        return value.strip()

    @property
    def host(self) -> str:
        match = _LISTEN.match(self.listen)
        assert match is not None
        return match["v6"] or match["host"]

    @property
    def port(self) -> int:
        match = _LISTEN.match(self.listen)
        assert match is not None
        return int(match["port"])


# -- health --------------------------------------------------------------------------------------------


@dataclass
class Health:
    ok: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"status": "ok" if self.ok else "unhealthy", "reason": self.reason, **self.details}


def shortest_interval(config: Config, now: datetime | None = None) -> timedelta | None:
    """The shortest time between two polls of an enabled source (for cron: its next gap), or None."""
    from apscheduler.triggers.cron import CronTrigger

    now = now or datetime.now(config.tz)
    gaps: list[timedelta] = []
    for src in config.sources:
        if not src.enabled:
            continue
        if src.cron:
            trigger = CronTrigger.from_crontab(src.cron, timezone=config.tz)
            first = trigger.get_next_fire_time(None, now)
            second = trigger.get_next_fire_time(first, first + timedelta(seconds=1)) if first else None
            if first is not None and second is not None:
                gaps.append(second - first)
        else:
            gaps.append(config.interval(src))
    return min(gaps) if gaps else None


def judge_health(
    *,
    now: float,
    started: float,
    scheduler_running: bool,
    interval: timedelta | None,
    last_poll: float | None,
    in_flight: int,
    next_due: float | None,
) -> Health:
    """The rules of /healthz, on plain numbers (times in Unix seconds).

    Healthy while the scheduler runs and polls end: one ended within the window (twice the shortest poll
    interval), or the service is younger than the window. When none ended within the window: polls in
    flight are stuck; with none in flight and the next poll ahead, every source is waiting out a backoff or
    a server's Retry-After, which is not the service's fault; a poll overdue by more than an interval, or no
    poll job at all, means the scheduler has fallen behind.
    """
    details: dict[str, Any] = {
        "uptime_seconds": round(now - started, 1),
        "last_poll_seconds_ago": None if last_poll is None else round(now - last_poll, 1),
        "polls_in_flight": in_flight,
    }
    if not scheduler_running:
        return Health(False, "the scheduler is not running", details)
    if interval is None:
        return Health(True, "no enabled source to poll", details)
    window = 2 * interval.total_seconds()
    details["window_seconds"] = window
    if last_poll is not None and now - last_poll <= window:
        return Health(True, "polling", details)
    if now - started <= window:
        return Health(True, "starting: the first polls are within the window", details)
    ago = "never" if last_poll is None else f"{now - last_poll:.0f} s ago"
    if in_flight:
        return Health(
            False, f"{in_flight} poll(s) running, none ended within {window:.0f} s (stuck?)", details
        )
    if next_due is not None and next_due >= now - interval.total_seconds():
        details["next_poll_in_seconds"] = round(next_due - now, 1)
        return Health(True, "waiting: no poll due (sources backing off)", details)
    return Health(False, f"no poll ended within {window:.0f} s (last: {ago})", details)


class _Resources(Protocol):
    @property
    def store(self) -> Store: ...

    @property
    def fetcher(self) -> Any: ...


class RunningService(Protocol):
    """What the endpoint reads from the running service (crawler.service.Service)."""

    @property
    def config(self) -> Config: ...  # the current one: a reload replaces it

    @property
    def scheduler(self) -> BaseScheduler: ...

    @property
    def res(self) -> _Resources: ...

    @property
    def started_at(self) -> float: ...  # time.time()

    @property
    def last_poll_finished(self) -> float | None: ...

    @property
    def in_flight(self) -> Collection[Any]: ...

    @property
    def on_poll(self) -> list[Callable[[PollReport], None]]: ...


class Probe(Protocol):
    """What the endpoint asks of the process it serves (the embedded service, or a queue worker)."""

    def health(self) -> Health: ...

    def sources(self) -> dict[str, Any]: ...


class ServiceProbe:
    """Health and source status of a running service, as the endpoint serves them."""

    def __init__(self, service: RunningService, clock: Callable[[], float] = time.time):
        self.service = service
        self.clock = clock

    def scheduler_running(self) -> bool:
        from apscheduler.schedulers.base import STATE_RUNNING

        # Paused (before the jobs are installed, and as the first step of a shutdown) is not running.
        return self.service.scheduler.state == STATE_RUNNING

    def next_due(self) -> float | None:
        """When the earliest poll job runs next (Unix time), or None."""
        times = [
            job.next_run_time.timestamp()
            for job in self.service.scheduler.get_jobs()
            if job.id.startswith(POLL_JOB_PREFIX) and job.next_run_time is not None
        ]
        return min(times) if times else None

    def health(self) -> Health:
        service = self.service
        return judge_health(
            now=self.clock(),
            started=service.started_at,
            scheduler_running=self.scheduler_running(),
            interval=shortest_interval(service.config),
            last_poll=service.last_poll_finished,
            in_flight=len(service.in_flight),
            next_due=self.next_due(),
        )

    def sources(self) -> dict[str, Any]:
        """/sources: the rows of `crawler sources`, as JSON."""
        from crawler.status import source_rows

        now = datetime.now(UTC)
        rows = source_rows(self.service.config, self.service.res.store, now)
        return {"time": now.isoformat(timespec="seconds"), "sources": rows}


def queue_length(service: RunningService) -> float:
    """Downloads requested and not yet answered (the Fetcher's `waiting`; resources wrap it in a gate)."""
    fetcher = service.res.fetcher
    inner = getattr(fetcher, "fetcher", fetcher)
    return float(getattr(inner, "waiting", 0))


def observability(
    settings: HttpSettings | None, metrics: Metrics = METRICS
) -> Callable[[RunningService], contextlib.AbstractAsyncContextManager[HttpHandle | None]]:
    """The service extra: metrics fed by every poll, and the HTTP endpoint when `settings` is given.

    Entered by crawler.service.serve once the scheduler exists, left after polls in flight have drained.
    """

    @contextlib.asynccontextmanager
    async def extra(service: RunningService) -> AsyncIterator[HttpHandle | None]:
        service.on_poll.append(metrics.poll_done)
        metrics.queue_length_from(lambda: queue_length(service))
        handle = None
        try:
            if settings is not None:
                handle = await start_http(settings, ServiceProbe(service), metrics)
            yield handle
        finally:
            if handle is not None:
                await handle.close()
            with contextlib.suppress(ValueError):
                service.on_poll.remove(metrics.poll_done)
            metrics.queue_length_from(None)

    return extra


# -- the server ----------------------------------------------------------------------------------------


class HttpError(Exception):
    """The endpoint could not start (the address is taken, not local...); str() says which and why."""


class HttpHandle:
    """A running endpoint: `url`, `port`; `await close()` stops it and drops open connections."""

    def __init__(self, server: asyncio.Server, probe: Probe, metrics: Metrics, listen: str):
        self._server = server
        self.probe = probe
        self.metrics = metrics
        self.listen = listen  # as configured: a reload compares it to decide on a restart
        self._clients: set[asyncio.Task[None]] = set()
        sock = server.sockets[0].getsockname()
        self.host, self.port = str(sock[0]), int(sock[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.wait(list(self._clients), timeout=2.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), timeout=2.0)

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            try:
                async with asyncio.timeout(REQUEST_SECONDS):
                    method, target, headers = await _read_request(reader)
            except (ValueError, asyncio.LimitOverrunError):
                await _respond(writer, 400, "text/plain; charset=utf-8", b"bad request\n", head=False)
                return
            status, ctype, body, extra = await self._route(method, target, headers)
            await _respond(writer, status, ctype, body, head=method == "HEAD", extra=extra)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Exception:  # a bug here must not take the service down
            log.exception("http: error while answering a request")
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), timeout=1.0)

    async def _route(
        self, method: str, target: str, headers: dict[str, str]
    ) -> tuple[int, str, bytes, dict[str, str]]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain; charset=utf-8", b"method not allowed\n", {"Allow": "GET, HEAD"}
        path = target.split("?", 1)[0]
        if path == "/healthz":
            health = self.probe.health()
            return (200 if health.ok else 503), *_json(health.body()), {}
        if path == "/metrics":
            body, ctype = self.metrics.render(headers.get("accept"))
            return 200, ctype, body, {}
        if path == "/sources":
            try:
                # The index is SQLite: read it off the loop, so a busy disk never stalls downloads.
                data = await asyncio.to_thread(self.probe.sources)
            except Exception as exc:
                log.warning("http: /sources: %s", exc)
                return 500, *_json({"error": str(exc)}), {}
            return 200, *_json(data), {}
        if path == "/":
            text = b"crawler\n/healthz  health (200 or 503)\n/metrics  Prometheus metrics\n"
            text += b"/sources  source health\n"
            return 200, "text/plain; charset=utf-8", text, {}
        return 404, "text/plain; charset=utf-8", b"not found: try /healthz, /metrics or /sources\n", {}


async def start_http(settings: HttpSettings, probe: Probe, metrics: Metrics = METRICS) -> HttpHandle:
    """Start serving on `settings.listen` (port 0: any free port, for tests); raise HttpError if it cannot."""
    handle: HttpHandle | None = None

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert handle is not None
        await handle._serve_client(reader, writer)

    try:
        server = await asyncio.start_server(client, settings.host, settings.port, limit=MAX_LINE)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else str(exc)
        raise HttpError(f"http: cannot listen on {settings.listen}: {reason}") from exc
    handle = HttpHandle(server, probe, metrics, settings.listen)
    log.info("http: serving /healthz, /metrics and /sources on %s", handle.url)
    return handle


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]]:
    line = await reader.readuntil(b"\n")
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError("malformed request line")
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        raw = await reader.readuntil(b"\n")
        if raw in (b"\r\n", b"\n"):
            return parts[0].upper(), parts[1], headers
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep:
            raise ValueError("malformed header")
        headers[name.strip().lower()] = value.strip()
    raise ValueError("too many headers")


def _json(data: Any) -> tuple[str, bytes]:
    return "application/json", (json.dumps(data, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
_REASONS |= {500: "Internal Server Error", 503: "Service Unavailable"}


async def _respond(
    writer: asyncio.StreamWriter,
    status: int,
    ctype: str,
    body: bytes,
    *,
    head: bool,
    extra: dict[str, str] | None = None,
) -> None:
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
        f"Content-Type: {ctype}",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: close",
        *(f"{k}: {v}" for k, v in (extra or {}).items()),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else body))
    await writer.drain()
