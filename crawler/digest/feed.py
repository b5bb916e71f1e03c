"""An Atom feed of the latest digests (DATA/digests/feed.xml), so a feed reader can follow them.

Built from the digest files on disk: an entry per day whose HTML page exists, newest first, linking to it by a
relative href (a reader resolves it against the feed's own address, wherever the folder is served from). Every
date in it derives from the day it covers, so rewriting it with the same files gives the same bytes.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path

from feedgen.feed import FeedGenerator
from markupsafe import escape

from crawler import __version__
from crawler.archive import write_text_atomic

FEED_NAME = "feed.xml"
_DAY_PAGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.html$")


def digest_days(folder: Path) -> list[str]:
    """Days with an HTML digest in the folder, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(m.group(1) for p in folder.iterdir() if (m := _DAY_PAGE.match(p.name)))


def render_feed(folder: Path, size: int, tz: tzinfo) -> bytes:
    days = digest_days(folder)[-size:]
    # Ids are stable for this digests folder: a reader does not see old digests as new after a rewrite.
    base = folder.resolve().as_uri()
    fg = FeedGenerator()
    fg.id(uuid.uuid5(uuid.NAMESPACE_URL, base).urn)
    fg.title("Crawler digests")
    fg.subtitle("The daily digest of the items filed, by topic")
    fg.author({"name": "crawler"})
    fg.link(href=FEED_NAME, rel="self", type="application/atom+xml")
    fg.generator("crawler", version=__version__)
    fg.language("en")
    fg.updated(_end_of(days[-1], tz) if days else datetime.combine(date(1970, 1, 1), time(0), tz))
    for day in days:  # feedgen prepends each entry: the newest ends up first
        entry = fg.add_entry()
        entry.id(uuid.uuid5(uuid.NAMESPACE_URL, f"{base}/{day}.html").urn)
        entry.title(f"Digest for {day}")
        entry.link(href=f"{day}.html", rel="alternate", type="text/html")
        entry.published(_end_of(day, tz))
        entry.updated(_end_of(day, tz))
        entry.content(_summary_html(folder, day), type="html")
    return bytes(fg.atom_str(pretty=True))


def write_feed(folder: Path, size: int, tz: tzinfo) -> Path:
    path = folder / FEED_NAME
    write_text_atomic(path, render_feed(folder, size, tz).decode("utf-8"))
    return path


def _end_of(day: str, tz: tzinfo) -> datetime:
    """When the day a digest covers ends: its items are all in by then."""
    return datetime.combine(date.fromisoformat(day) + timedelta(days=1), time(0), tz)


def _summary_html(folder: Path, day: str) -> str:
    """The digest's summary (the Markdown file's opening paragraph and its topic headings), as HTML."""
    try:
        lines = (folder / f"{day}.md").read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    body = [line for line in lines[1:] if line and not line.startswith("#")][:1]
    topics = [line[3:] for line in lines if line.startswith("## ") and line[3:] not in _NOT_TOPICS]
    parts = [f"<p>{escape(text)}</p>" for text in body]
    if topics:
        parts.append("<ul>" + "".join(f"<li>{escape(t)}</li>" for t in topics) + "</ul>")
    parts.append(f'<p><a href="{day}.html">Read the digest for {day}</a></p>')
    return "".join(parts)


_NOT_TOPICS = {"Problems", "Source health"}
