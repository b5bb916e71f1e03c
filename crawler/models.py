"""Plain data passed between the stages. No behaviour lives here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One entry of a polled source, before its article page is fetched."""

    url: str
    guid: str | None = None
    title: str | None = None
    published: datetime | None = None  # timezone-aware UTC when known
    # What changes when the publisher updates the entry (its updated date, else a hash of its summary):
    # a known entry whose version changed is fetched again, and filed as a revision if its text changed.
    version: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Article:
    """An extracted article in the archive's text format."""

    title: str
    paragraphs: tuple[str, ...]
    published: datetime | None = None
    language: str | None = None
    canonical_url: str | None = None

    @property
    def text(self) -> str:
        """The archive file's content: title, a blank line, paragraphs separated by blank lines."""
        return "\n\n".join((self.title, *self.paragraphs))

    @property
    def body(self) -> str:
        return "\n\n".join(self.paragraphs)


@dataclass(frozen=True, slots=True)
class Flags:
    """Topics an article matches, why (the evidence) and how strongly (the score).

    evidence: topic -> one dict per matched term, as the sidecar stores it:
        {"term": as written in topics.yaml, "count": matches, "sentence": the first sentence it matched in}
    scores: topic -> relevance (matches in the title weigh more); the digest orders items by it.
    """

    topics: tuple[str, ...] = ()
    evidence: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What the downloader answered for one URL: a response, or the reason there is none."""

    url: str  # the URL finally answered (after redirects)
    status: int = 0  # 0 when no HTTP response arrived
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    body: bytes = b""
    error: str | None = None  # set when the fetch failed; a human-readable reason
    redirects: tuple[tuple[int, str], ...] = ()  # (status, URL it led to) for each redirect followed
    # Seconds the server asked us to stay away (Retry-After on a 429 or 503), uncapped; None when it did not.
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300
