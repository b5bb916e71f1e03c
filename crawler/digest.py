"""The daily digest: the items filed on one day, grouped by topic, as Markdown (DATA/digests/YYYY-MM-DD.md).

Built from the index alone, so writing it again gives the same file (idempotent) and a missed day can be
written later.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path

from crawler.archive import write_text_atomic
from crawler.config import Config, format_duration
from crawler.store import IndexedItem, PollRow, Store

log = logging.getLogger(__name__)
OTHER = "Other"


def digest_path(data_dir: Path, day: str) -> Path:
    return data_dir / "digests" / f"{day}.md"


def render_digest(
    day: str,
    items: Sequence[IndexedItem],
    polls: Sequence[PollRow],
    topic_order: Sequence[str],
    health: Sequence[str] = (),
) -> str:
    """The digest's Markdown. Pure: same inputs, same text."""
    counts = Counter(t for item in items for t in item.topics)
    order = [t for t in topic_order if counts[t]] + sorted(t for t in counts if t not in topic_order)
    untagged = [item for item in items if not item.topics]
    polled = sorted({p.source for p in polls})
    failing = _failing_sources(polls)
    failed_items = sum(p.failed for p in polls)

    per_topic = ", ".join(f"{t} {counts[t]}" for t in order) or "none flagged"
    lines = [
        f"# Digest for {day}",
        "",
        f"{len(items)} new item{'s' if len(items) != 1 else ''} ({per_topic}"
        + (f", {OTHER.lower()} {len(untagged)}" if untagged else "")
        + f"). {len(polled)} source{'s' if len(polled) != 1 else ''} polled, {len(failing)} failed"
        + (f"; {failed_items} article(s) could not be filed." if failed_items else "."),
    ]
    groups = [(t, [i for i in items if t in i.topics]) for t in order]
    if untagged:
        groups.append((OTHER, untagged))
    for name, members in groups:
        lines += ["", f"## {name} ({len(members)})"]
        for item in members:
            lines += ["", *_render_item(item)]
    if failing or failed_items:
        lines += ["", "## Problems", ""]
        for source, error in failing.items():
            lines.append(f"- {source}: {error}")
        for poll in polls:
            lines += [f"- {poll.source}: {failure}" for failure in poll.failures]
    if health:
        lines += ["", "## Source health", "", *health]
    return "\n".join(lines) + "\n"


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


def _render_item(item: IndexedItem) -> list[str]:
    title = item.title.replace("[", "\\[").replace("]", "\\]")
    published = item.published[:10] if item.published else "date unknown"
    return [
        f"### [{title}]({item.url})",
        "",
        f"{item.source} · published {published} · `{item.path}`",
        "",
        f"> {item.snippet}",
    ]


def _failing_sources(polls: Sequence[PollRow]) -> dict[str, str]:
    """Sources whose last poll of the day failed, with that poll's reason."""
    last: dict[str, PollRow] = {}
    for poll in polls:
        last[poll.source] = poll
    return {name: p.error for name, p in sorted(last.items()) if p.error}


def write_digest(
    store: Store,
    data_dir: Path,
    day: str,
    topic_order: Sequence[str],
    sources: Sequence[str] = (),
    stale_after: timedelta = timedelta(days=7),
    tz: tzinfo = UTC,
) -> Path:
    day_end = datetime.combine(date.fromisoformat(day) + timedelta(days=1), time(0), tz)
    health = source_health(store, sources, day_end, stale_after)
    text = render_digest(day, store.items_of_day(day), store.polls_of_day(day), topic_order, health)
    path = digest_path(data_dir, day)
    write_text_atomic(path, text)
    log.info("digest for %s written to %s", day, path)
    return path


def missed_days(store: Store, data_dir: Path, today: date) -> list[str]:
    """Days before today with activity whose digest file does not exist (the service was down then)."""
    return [day for day in store.active_days(today.isoformat()) if not digest_path(data_dir, day).exists()]


def yesterday(now: datetime) -> str:
    return (now.date() - timedelta(days=1)).isoformat()


def write_digest_for(store: Store, config: Config, day: str) -> Path:
    """write_digest with everything taken from the config."""
    return write_digest(
        store,
        config.data_dir,
        day,
        list(config.topics),
        [s.name for s in config.sources if s.enabled],
        config.settings.digest.stale_after,
        config.tz,
    )
