"""What a day's digest says, as plain data: the groups, their order, the summary. No formatting here.

Both renderings (Markdown and HTML) are built from one `Digest`, so they cannot disagree about which items are
shown, in which order, or what the counts are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from crawler.store import IndexedItem, PollRow

OTHER = "Other"  # the group of items no topic flagged


@dataclass(frozen=True, slots=True)
class DigestOptions:
    """The digest's settings (DigestSettings), with the template's path already resolved."""

    topics: tuple[str, ...] | None = None  # shown topics, in this order; None: all, in config order
    min_score: float = 0.0
    max_per_topic: int | None = None
    template: Path | None = None  # a Jinja2 template replacing the packaged one
    feed_size: int = 30


@dataclass(frozen=True, slots=True)
class Report:
    """Another source that carried the same story (a near-duplicate collapsed into the entry)."""

    source: str
    url: str


@dataclass(frozen=True, slots=True)
class Entry:
    """One item as shown under one topic."""

    title: str
    url: str
    source: str
    published: str | None  # YYYY-MM-DD
    path: str  # the archive file, relative to the data folder
    snippet: str
    score: float | None  # on this entry's topic; None when unscored (and under Other)
    also: tuple[Report, ...] = ()
    revision_of: str | None = None

    @property
    def sources(self) -> int:
        """How many sources reported the story."""
        return 1 + len(self.also)

    @property
    def updated(self) -> bool:
        return self.revision_of is not None


@dataclass(frozen=True, slots=True)
class TopicCount:
    """A topic's items on the day, and on the day before (None when unknown)."""

    name: str
    count: int
    previous: int | None = None

    @property
    def delta(self) -> int | None:
        return None if self.previous is None else self.count - self.previous

    @property
    def change(self) -> str:
        """The change from the day before as text: "+2", "-1", "±0" ("" when unknown)."""
        delta = self.delta
        if delta is None:
            return ""
        return f"+{delta}" if delta > 0 else f"-{-delta}" if delta < 0 else "±0"


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    count: int  # items on the topic (min_score applied), shown or not
    entries: tuple[Entry, ...]  # the most relevant, at most max_per_topic
    more: int = 0  # left out by max_per_topic

    @property
    def anchor(self) -> str:
        return "topic-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in self.name)


@dataclass(frozen=True, slots=True)
class Digest:
    day: str
    total: int  # items filed on the day, all of them
    counts: tuple[TopicCount, ...]  # the summary: shown topics with items on the day or the day before
    groups: tuple[Group, ...]  # shown topics with items, in display order
    polled: tuple[str, ...]  # sources polled on the day
    failing: tuple[tuple[str, str], ...]  # (source, error) of sources whose last poll of the day failed
    failed_items: int  # articles that could not be filed
    item_failures: tuple[tuple[str, str], ...] = ()  # (source, "url: reason")
    health: tuple[str, ...] = field(default=())  # source health lines, without the list marker

    @property
    def compared(self) -> bool:
        """Whether the counts carry the day before's (the service ran that day)."""
        return any(c.previous is not None for c in self.counts)

    @property
    def problems(self) -> tuple[str, ...]:
        """The Problems section's lines: failing sources first, then articles that failed."""
        return tuple(f"{s}: {e}" for s, e in self.failing) + tuple(f"{s}: {f}" for s, f in self.item_failures)


def build_digest(
    day: str,
    items: Sequence[IndexedItem],
    polls: Sequence[PollRow],
    topic_order: Sequence[str],
    health: Sequence[str] = (),
    previous: Mapping[str, int] | None = None,
    options: DigestOptions | None = None,
) -> Digest:
    """The digest of `day` from its items and polls. Pure: same inputs, same digest.

    `topic_order` is the configured topics' order; `previous` the day before's counts per topic (OTHER for
    untagged items), as `topic_counts` gives them, or None when unknown (no change is shown then).
    """
    opts = options or DigestOptions()
    members: dict[str, list[IndexedItem]] = {}
    for item in items:
        if not item.topics:
            members.setdefault(OTHER, []).append(item)
        for topic in item.topics:
            if item.scores.get(topic, 0.0) >= opts.min_score:
                members.setdefault(topic, []).append(item)
    shown = _shown_topics(topic_order, set(members) | set(previous or {}), opts.topics)
    counts = tuple(
        TopicCount(t, len(members.get(t, ())), None if previous is None else previous.get(t, 0))
        for t in shown
        if members.get(t) or (previous or {}).get(t)
    )
    groups = tuple(_group(t, members[t], opts.max_per_topic) for t in shown if members.get(t))
    last: dict[str, PollRow] = {}
    for poll in polls:
        last[poll.source] = poll
    return Digest(
        day=day,
        total=len(items),
        counts=counts,
        groups=groups,
        polled=tuple(sorted(last)),
        failing=tuple((name, p.error) for name, p in sorted(last.items()) if p.error),
        failed_items=sum(p.failed for p in polls),
        item_failures=tuple((p.source, f) for p in polls for f in p.failures),
        health=tuple(line.removeprefix("- ") for line in health),
    )


def _shown_topics(topic_order: Sequence[str], present: set[str], chosen: Sequence[str] | None) -> list[str]:
    if chosen is not None:
        # Exactly the chosen topics; untagged items only when "Other" is named too.
        return list(dict.fromkeys(chosen))
    # All configured topics in their order, then topics no longer configured that items still carry.
    retired = sorted(t for t in present if t not in topic_order and t != OTHER)
    return [*topic_order, *retired, OTHER]


def _group(topic: str, items: Sequence[IndexedItem], limit: int | None) -> Group:
    ranked = sorted(items, key=lambda item: _relevance(item, topic))
    kept = ranked if limit is None else ranked[:limit]
    return Group(topic, len(ranked), tuple(_entry(item, topic) for item in kept), len(ranked) - len(kept))


def _relevance(item: IndexedItem, topic: str) -> tuple[float, int, int, str]:
    """Most relevant first: score on the topic, then how many sources carried it, then filing order."""
    return (-item.scores.get(topic, 0.0), -len(item.also_reported_by), _filing_sequence(item.path), item.path)


def _filing_sequence(path: str) -> int:
    # NNN_<hex>.txt: NNN grows past 999 on a busy day, so compare it as a number, not as text.
    head = path.rsplit("/", 1)[-1].split("_", 1)[0]
    return int(head) if head.isdigit() else 0


def _entry(item: IndexedItem, topic: str) -> Entry:
    return Entry(
        title=item.title,
        url=item.url,
        source=item.source,
        published=item.published[:10] if item.published else None,
        path=item.path,
        snippet=item.snippet,
        score=item.scores.get(topic) if topic != OTHER else None,
        also=tuple(Report(r.get("source", "?"), r.get("url", "")) for r in item.also_reported_by),
        revision_of=item.revision_of,
    )


def count_topics(
    items: Sequence[tuple[Sequence[str], Mapping[str, float]]], min_score: float
) -> Counter[str]:
    """Items per topic (OTHER for untagged ones) from (topics, scores) pairs, with min_score applied."""
    counts: Counter[str] = Counter()
    for topics, scores in items:
        if not topics:
            counts[OTHER] += 1
        counts.update(t for t in topics if scores.get(t, 0.0) >= min_score)
    return counts


def safe_href(url: str | None) -> str | None:
    """The URL when a reader may follow it (http, https), else None: no javascript: or data: links."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None
