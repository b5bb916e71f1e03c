"""What a scheduler node tells the monitoring endpoint (`http:` in crawler.yaml): who leads, the queue depth.

The node's loop fills a NodeStatus every few seconds (plain data, no I/O on a scrape); SchedulerProbe turns it
into /healthz and /sources, and node_metrics into /metrics gauges: crawler_scheduler_leading (1 on the
leader) and crawler_poll_requests{state="waiting"|"pending"} (the queue's depth, as XLEN and XPENDING say).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Gauge

from crawler.config import Config
from crawler.metrics import Metrics
from crawler.observe import Health
from crawler.store import Store

# /healthz says unhealthy when the database has not answered the node for this long: a leader could not
# confirm its lock, a standby could not take over.
DATABASE_SILENCE = 30.0


@dataclass
class NodeStatus:
    owner: str
    config: Config
    store: Store
    started_at: float = field(default_factory=time.time)
    leading: bool = False
    database_answered: float = field(default_factory=time.time)  # time.time() of its last answer
    waiting: int = 0  # poll requests not yet done (XLEN)
    pending: int = 0  # taken by a worker and not yet done (XPENDING)
    scheduled: int = 0  # poll jobs, while leading
    next_due: float | None = None  # the earliest poll job's next run (Unix time), while leading


class SchedulerProbe:
    def __init__(self, status: NodeStatus, clock: Callable[[], float] = time.time):
        self.status = status
        self.clock = clock

    def health(self) -> Health:
        s = self.status
        silent = self.clock() - s.database_answered
        details: dict[str, Any] = {
            "role": "scheduler",
            "node": s.owner,
            "leading": s.leading,
            "poll_requests_waiting": s.waiting,
            "poll_requests_pending": s.pending,
        }
        if silent > DATABASE_SILENCE:
            return Health(False, f"no answer from the database for {silent:.0f} s", details)
        if not s.leading:
            return Health(True, "standing by", details)
        details["sources_scheduled"] = s.scheduled
        due = "" if s.next_due is None else f", next poll due in {max(0.0, s.next_due - self.clock()):.0f} s"
        return Health(True, f"leading: {s.scheduled} source(s) scheduled{due}", details)

    def sources(self) -> dict[str, Any]:
        from crawler.status import source_rows

        now = datetime.now(UTC)
        return {
            "time": now.isoformat(timespec="seconds"),
            "sources": source_rows(self.status.config, self.status.store, now),
        }


def node_metrics(status: NodeStatus) -> Metrics:
    """The node's /metrics: its own registry, with the leader and queue-depth gauges read from `status`."""
    metrics = Metrics()
    Gauge(
        "crawler_scheduler_leading", "1 while this scheduler node leads, else 0.", registry=metrics.registry
    ).set_function(lambda: 1.0 if status.leading else 0.0)
    requests = Gauge(
        "crawler_poll_requests",
        "Poll requests in the work queue: waiting (not yet done) and pending (taken by a worker).",
        ["state"],
        registry=metrics.registry,
    )
    requests.labels("waiting").set_function(lambda: float(status.waiting))
    requests.labels("pending").set_function(lambda: float(status.pending))
    return metrics
