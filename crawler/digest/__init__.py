"""The daily digest: the items filed on one day, grouped by topic, most relevant first.

Three files in DATA/digests/: YYYY-MM-DD.md, YYYY-MM-DD.html (self-contained, from a Jinja2 template) and
feed.xml (Atom, the latest digests). Built from the index alone and without the clock, so writing a day again
gives the same bytes and a missed day can be written later.

    build.py     what the digest says (groups, order, summary), as plain data
    queries.py   what it asks the index beyond the day's items and polls
    markdown.py  the .md file
    html.py      the .html file (Jinja2, autoescaped) and its inline SVG chart
    feed.py      feed.xml (feedgen)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path

from crawler.archive import write_text_atomic
from crawler.config import Config
from crawler.digest.build import OTHER, Digest, DigestOptions, build_digest
from crawler.digest.feed import FEED_NAME, write_feed
from crawler.digest.html import DigestTemplateError, load_template, render_html
from crawler.digest.markdown import render_markdown
from crawler.digest.queries import source_health, topic_counts, was_active
from crawler.store import IndexedItem, PollRow, Store

log = logging.getLogger(__name__)

# The store's meta key holding the newest day whose .md and .html are both in place.
LAST_DIGESTED = "digest.last_day"

__all__ = [
    "LAST_DIGESTED",
    "OTHER",
    "Digest",
    "DigestOptions",
    "DigestTemplateError",
    "build_digest",
    "digest_path",
    "feed_path",
    "html_path",
    "missed_days",
    "options_from",
    "render_digest",
    "render_html",
    "source_health",
    "write_digest",
    "write_digest_for",
    "write_digest_once",
    "yesterday",
]


def digest_path(data_dir: Path, day: str) -> Path:
    return data_dir / "digests" / f"{day}.md"


def html_path(data_dir: Path, day: str) -> Path:
    return data_dir / "digests" / f"{day}.html"


def feed_path(data_dir: Path) -> Path:
    return data_dir / "digests" / FEED_NAME


def render_digest(
    day: str,
    items: Sequence[IndexedItem],
    polls: Sequence[PollRow],
    topic_order: Sequence[str],
    health: Sequence[str] = (),
    previous: dict[str, int] | None = None,
    options: DigestOptions | None = None,
) -> str:
    """The digest's Markdown. Pure: same inputs, same text."""
    return render_markdown(build_digest(day, items, polls, topic_order, health, previous, options))


def write_digest(
    store: Store,
    data_dir: Path,
    day: str,
    topic_order: Sequence[str],
    sources: Sequence[str] = (),
    stale_after: timedelta = timedelta(days=7),
    tz: tzinfo = UTC,
    options: DigestOptions | None = None,
) -> Path:
    """Write the day's .md and .html, then mark the day digested and refresh feed.xml; returns the .md path.

    The Markdown is written first and does not depend on the template: when the template is bad, the .md is
    in place, DigestTemplateError (naming the template's file and line) is raised, and the day is neither
    marked digested nor added to the feed, so it is tried again at the next start.
    """
    opts = options or DigestOptions()
    day_end = datetime.combine(date.fromisoformat(day) + timedelta(days=1), time(0), tz)
    health = source_health(store, sources, day_end, stale_after)
    before = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
    # Compared with the day before only when the service ran then: after a first day or an outage, "+5" would
    # say nothing about the news.
    previous = dict(topic_counts(store, before, opts.min_score)) if was_active(store, before) else None
    digest = build_digest(
        day, store.items_of_day(day), store.polls_of_day(day), topic_order, health, previous, opts
    )
    md = digest_path(data_dir, day)
    write_text_atomic(md, render_markdown(digest))
    write_text_atomic(html_path(data_dir, day), render_html(digest, load_template(opts.template)))
    # Both files are in place: only now do the day's items count as digested.
    last = store.get_meta(LAST_DIGESTED)
    if last is None or last < day:
        store.set_meta(LAST_DIGESTED, day)
    write_feed(md.parent, opts.feed_size, tz)
    log.info("digest for %s written to %s (and .html)", day, md)
    return md


def missed_days(store: Store, data_dir: Path, today: date) -> list[str]:
    """Days before today with activity whose digest (.md or .html) is missing: the service was down then."""
    return [
        day
        for day in store.active_days(today.isoformat())
        if not (digest_path(data_dir, day).exists() and html_path(data_dir, day).exists())
    ]


def yesterday(now: datetime) -> str:
    return (now.date() - timedelta(days=1)).isoformat()


def options_from(config: Config) -> DigestOptions:
    """The digest's settings, with the template's path resolved against the config folder."""
    s = config.settings.digest
    return DigestOptions(
        topics=s.topics,
        min_score=s.min_score,
        max_per_topic=s.max_per_topic,
        template=(config.config_dir / s.template) if s.template is not None else None,
        feed_size=s.feed_size,
    )


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
        options_from(config),
    )


def write_digest_once(store: Store, config: Config, day: str, owner: str) -> Path | None:
    """write_digest_for, when `owner` wins the day's claim in the index; None if it is written or taken.

    For schedulers sharing an index: a digest is written by one of them, once, even if two briefly both
    believe they lead. A failed writing gives the claim back so the next try (or the next leader) does it.
    """
    if not store.claim_digest(day, owner):
        log.info("digest for %s: written or being written by another scheduler; not written here", day)
        return None
    try:
        path = write_digest_for(store, config, day)
    except BaseException:
        store.release_digest(day, owner)
        raise
    store.digest_written(day, owner)
    return path
