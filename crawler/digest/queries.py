"""What the digest asks the index beyond a day's items and polls (the store's own queries cover those)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from crawler.config import format_duration
from crawler.digest.build import count_topics
from crawler.store import Store, items, polls


def topic_counts(store: Store, day: str, min_score: float = 0.0) -> Counter[str]:
    """Items filed on `day` per topic ("Other" for untagged ones), counted as the digest counts them."""
    query = select(items.c.topics, items.c.scores).where(items.c.filed_day == day)
    with store.engine.connect() as conn:
        rows = [(json.loads(topics), json.loads(scores or "{}")) for topics, scores in conn.execute(query)]
    return count_topics(rows, min_score)


def was_active(store: Store, day: str) -> bool:
    """Whether anything was polled or filed on `day` (else the service did not run: nothing to compare)."""
    with store.engine.connect() as conn:
        for table, column in ((polls, polls.c.day), (items, items.c.filed_day)):
            if conn.execute(select(table.c.id).where(column == day).limit(1)).first() is not None:
                return True
    return False


def source_health(
    store: Store, sources: Sequence[str], day_end: datetime, stale_after: timedelta
) -> list[str]:
    """Failing sources and quiet ones (no new item for `stale_after`), as of the end of the digest's day.

    Judged from the index as it stood at that moment, so rewriting an old digest gives the same lines.
    """
    end = day_end.astimezone(UTC)
    before = end.isoformat(timespec="seconds")
    cutoff = (end - stale_after).isoformat(timespec="seconds")
    streaks = store.failure_streaks((end - timedelta(days=30)).isoformat(timespec="seconds"), before)
    last_new = store.last_filed(before)
    first_poll = store.first_polls()
    lines = []
    for name in sources:
        failed, error = streaks.get(name, (0, None))
        if failed:
            lines.append(f"- {name}: failing, {failed} poll(s) in a row; last error: {error}")
        started = first_poll.get(name)
        if started is None or started >= before:
            continue  # not polled yet on that day
        last = last_new.get(name)
        if (last or started) < cutoff:
            since = f"since {last[:10]}" if last else "ever"
            lines.append(f"- {name}: quiet, no new item {since} (over {format_duration(stale_after)})")
    return lines
