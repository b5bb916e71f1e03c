"""The roles of a crawler spread over several machines (crawler.yaml `queue:` and a PostgreSQL `database:`).

    scheduler.py   `crawler run --role scheduler`: leader election, the schedule, poll requests, digests
    worker.py      `crawler run --role worker`: takes poll requests, polls, extracts and files

The embedded service (crawler.service, no `queue:`) does both in one process, as it always did.
"""

from __future__ import annotations

import asyncio
import contextlib

from crawler.config import Config
from crawler.workqueue import PollQueue


def poll_queue(config: Config) -> PollQueue:
    """The work queue of crawler.yaml `queue:`, with its claim timeout, as both roles use it."""
    assert config.settings.queue is not None  # checked by role_problem before a role starts
    return PollQueue(config.settings.queue, claim_idle=config.settings.queue_claim_after.total_seconds())


async def sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def role_problem(config: Config, role: str) -> str | None:
    """Why `crawler run --role ROLE` cannot run with this config, in words naming the setting; or None."""
    settings = config.settings
    if role == "embedded":
        if settings.queue:
            return (
                "crawler.yaml: queue is set, so this crawler runs as separate roles: start "
                "`crawler run --role scheduler` and `crawler run --role worker` (remove `queue` to run "
                "everything in one process)"
            )
        return None
    if not settings.queue:
        return f"--role {role} needs crawler.yaml `queue: redis://...` (the work queue the roles share)"
    if not settings.database or not settings.database.startswith("postgresql"):
        return (
            f"--role {role} needs crawler.yaml `database: postgresql://...`: the processes share the index, "
            "and SQLite cannot be shared between machines"
        )
    return None
