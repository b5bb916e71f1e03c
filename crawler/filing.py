"""Filing one extracted article: the last duplicate checks, topics, the archive files and the index.

Runs on the single writer thread, one article at a time. Processes sharing a PostgreSQL index file at the
same time: the reads are only a fast path, and the claim of the article's keys and content hash (store.claim,
a unique constraint) decides which of them files a story that reaches two of them at once. Duplicates are not
filed but recorded on the item filed first ("also reported by"), in its sidecar and in the index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

from crawler import dedup
from crawler.archive import highest_sequence, write_item, write_text_atomic
from crawler.config import Source
from crawler.models import Article, FeedItem, Flags
from crawler.resources import Resources
from crawler.store import ClaimLost, Store, utcnow
from crawler.topics import TopicDef, TopicMatcher, compile_topics, flag_topics

log = logging.getLogger(__name__)

SNIPPET_CHARS = 300
# Syndicated copies appear within days; near-duplicates are looked for among the items of this window.
NEAR_WINDOW = timedelta(days=30)
# An updated article whose text is this similar to the filed version is the same article (a typo fixed).
TRIVIAL_EDIT = 0.9

# "pending": another process sharing the index holds the article's claim and has not indexed it yet (if it
# dies, the claim is released and a later poll files the article).
Outcome = tuple[Literal["new", "duplicate", "known", "pending"], str]


@dataclass(frozen=True, slots=True)
class Prepared:
    """What filing needs that depends on the article alone: its content hash, its Simhash and its topics.

    Computed in a worker process (see prepare), not on the writer thread: these are the costly part of
    filing (a few milliseconds of CPU per article for the topics, as much for the Simhash), and on the writer
    thread they would run one article at a time, holding the GIL the downloads need.
    """

    content_sha256: str
    simhash: int
    flags: Flags


@dataclass(frozen=True, slots=True)
class Candidate:
    """An article ready to file, with everything known about where it came from."""

    source: Source
    entry: FeedItem
    url: str  # the URL finally fetched (after redirects)
    article: Article
    keys: list[str]
    published: str | None
    revision_of: int | None = None  # the item this may update
    prepared: Prepared | None = None  # None: computed while filing


@dataclass(frozen=True, slots=True)
class TopicRules:
    """The topic definitions as sent to a worker process: pickled once here, compiled once per worker.

    A compiled TopicMatcher is slow to pickle and unpickle (its patterns are compiled again on arrival); the
    definitions are small, and the key lets a worker reuse the matcher it compiled for the same rules.
    """

    key: str
    blob: bytes

    def matcher(self) -> TopicMatcher:
        found = _COMPILED.get(self.key)
        if found is None:
            _COMPILED.clear()  # rules change rarely (a config reload): keep only the current ones
            found = _COMPILED[self.key] = compile_topics(pickle.loads(self.blob))
        return found


_COMPILED: dict[str, TopicMatcher] = {}  # in a worker process: key -> matcher
_RULES: list[tuple[Mapping[str, TopicDef], TopicRules]] = []  # in the service: the rules last sent


def topic_rules(topics: Mapping[str, TopicDef]) -> TopicRules:
    """The rules to send with each article, pickled once per config (a reload brings a new mapping)."""
    if _RULES and _RULES[0][0] is topics:
        return _RULES[0][1]
    blob = pickle.dumps(dict(topics))
    rules = TopicRules(hashlib.sha256(blob).hexdigest(), blob)
    _RULES[:] = [(topics, rules)]
    return rules


def prepare(article: Article, rules: TopicRules, source_topics: Sequence[str]) -> Prepared:
    """The article-only part of filing, for a worker process."""
    return Prepared(
        dedup.content_hash(article),
        dedup.fingerprint(article.body),
        flag_topics(article.title, article.body, rules.matcher(), source_topics),
    )


def file_article(res: Resources, c: Candidate) -> Outcome:
    store = res.store
    sha = c.prepared.content_sha256 if c.prepared else dedup.content_hash(c.article)
    fp = c.prepared.simhash if c.prepared else dedup.fingerprint(c.article.body)
    previous = None
    token = uuid.uuid4().hex  # this filing's claims: only it may file them
    if c.revision_of is not None:
        previous = store.item_path(c.revision_of)
        if previous and _body(res, previous) and _similar(_body(res, previous), c.article.body):
            store.set_version(c.keys[0], c.entry.version)
            return "known", f"{c.url}: updated, but the text barely changed"
        # Two polls of one source may overlap (a slow worker's request taken over): one files the revision.
        if not store.claim([revision_key(c.revision_of, sha)], c.source.name, token):
            return "pending", c.url
    else:
        # The reads are the fast path (a copy of a filed item, the usual case); the claim below decides.
        existing = store.item_for_keys(c.keys) or store.item_with_content(sha) or _near(res, c, fp)
        if existing is not None:
            record_duplicate(res, existing, c.source.name, c.url, c.keys)
            return "duplicate", c.url
        lost = _claim(res, c, sha, token)
        if lost is not None:
            return lost
    if c.prepared is not None:
        flags = c.prepared.flags
    else:
        flags = flag_topics(c.article.title, c.article.body, res.matcher, c.source.topics)
    day = res.today()
    sidecar: dict[str, Any] = {
        "url": c.url,
        "source": c.source.name,
        "title": c.article.title,
        "published": c.published,
        "fetched_at": utcnow(),
        "topics": list(flags.topics),
        "evidence": flags.evidence,
        "scores": flags.scores,
        "language": c.article.language,
        "content_sha256": sha,
        "simhash": f"{fp:016x}",
        "guid": c.entry.guid,
        "feed_url": c.entry.url if c.entry.url != c.url else None,
        "canonical_url": c.article.canonical_url,
        "also_reported_by": [],
        "revision_of": previous,
    }
    filed = write_item(
        res.data_dir, day, dedup.url_digest(c.url), c.article.text, sidecar, _allocator(store, day)
    )
    if c.revision_of is not None:
        claimed = [revision_key(c.revision_of, sha)]
        item_keys = [*c.keys, *claimed]
    else:
        item_keys = claimed = [*c.keys, content_key(sha)]
    try:
        index_item(
            store, filed.relative, day, sidecar, c.article.body, item_keys, c.entry.version, (claimed, token)
        )
    except ClaimLost as lost:
        # Too slow: the claims were released as a dead process's (queue_claim_after) and may be another's
        # now. Take the files back; the item is filed by that process, or at a later poll.
        filed.text_path.unlink(missing_ok=True)
        filed.sidecar_path.unlink(missing_ok=True)
        log.warning(
            "%s: %s not filed: its claim was released while it was written (%s)", c.source.name, c.url, lost
        )
        return "pending", c.url
    log.info("%s: filed %s (%s)", c.source.name, filed.relative, c.article.title[:80])
    return "new", filed.relative


def index_item(
    store: Store,
    path: str,
    day: str,
    sidecar: Mapping[str, Any],
    body: str,
    keys: list[str],
    version: str | None = None,
    claimed: tuple[list[str], str] | None = None,
) -> int:
    """Record an archived item in the index (also used to rebuild the index from the archive); `claimed`:
    the claims the filing must still hold (see Store.add_item)."""
    fp = int(sidecar["simhash"], 16) if sidecar.get("simhash") else dedup.fingerprint(body)
    return store.add_item(
        index_row(path, day, sidecar, body),
        keys,
        body=body,
        simhash=fp,
        reported_by=sidecar.get("also_reported_by") or [],
        version=version,
        claimed=claimed,
    )


def revision_key(item_id: int, sha256: str) -> str:
    """The key under which a revision of item_id with this text is claimed and filed."""
    return f"revision:{item_id}:{sha256}"


def content_key(sha256: str) -> str:
    """The key under which an article's text is claimed: two sources' identical copies race for it."""
    return f"content:{sha256}"


def _claim(res: Resources, c: Candidate, sha: str, token: str) -> Outcome | None:
    """Take the article's keys and its content key for this process; the outcome when another has them.

    Another process sharing the index may have passed the same reads at the same moment: the claim (the keys
    table's primary key) lets exactly one of them file. The loser looks again: the winner's item, once
    indexed, gets this copy as "also reported by"; while the winner is still writing, the copy is pending.
    """
    store = res.store
    if store.claim([*c.keys, content_key(sha)], c.source.name, token):
        return None
    existing = store.item_for_keys(c.keys) or store.item_with_content(sha)
    if existing is None:
        return "pending", c.url
    record_duplicate(res, existing, c.source.name, c.url, c.keys)
    return "duplicate", c.url


def _allocator(store: Store, day: str) -> Callable[[Path], int] | None:
    """Filers sharing a PostgreSQL index number a day's items from it; the embedded mode from the folder."""
    if store.dialect == "sqlite":
        return None
    return lambda folder: store.next_sequence(day, lambda: highest_sequence(folder))


def record_duplicate(res: Resources, item_id: int, source: str, url: str, keys: list[str]) -> None:
    """Remember the copy's keys, and add it to the filed item's "also reported by" (sidecar and index)."""
    store = res.store
    store.remember(keys, "duplicate", source, item_id)
    path = store.item_path(item_id)
    if path is None:
        return
    side_path = (res.data_dir / path).with_suffix(".json")
    # Two workers sharing the archive may record copies of one item at once: without the lock, the second
    # write of the sidecar would drop the first one's entry.
    with store.item_lock(item_id):
        sidecar = json.loads(side_path.read_text("utf-8"))
        reported = sidecar.setdefault("also_reported_by", [])
        if sidecar["url"] == url or any(r["url"] == url for r in reported):
            return  # the same copy seen again
        entry = {"source": source, "url": url, "fetched_at": utcnow()}
        reported.append(entry)
        write_text_atomic(side_path, json.dumps(sidecar, ensure_ascii=False, indent=2) + "\n")
        store.add_report(item_id, **entry)
    log.info("%s: %s is a copy of %s", source, url, path)


def _near(res: Resources, c: Candidate, fp: int) -> int | None:
    """A recent item this article is a near-duplicate of: close Simhash, then confirmed on the texts."""
    since = (date.fromisoformat(res.today()) - NEAR_WINDOW).isoformat()
    for item_id, path, other in res.store.near_candidates(fp, since):
        if other and dedup.hamming(fp, int(other, 16)) <= dedup.NEAR_BITS:
            text = _body(res, path)
            if text and dedup.resemblance(text, c.article.body) >= dedup.NEAR_JACCARD:
                return item_id
    return None


def _similar(a: str, b: str) -> bool:
    return dedup.resemblance(a, b) >= TRIVIAL_EDIT


def _body(res: Resources, path: str) -> str:
    try:
        return (res.data_dir / path).read_text("utf-8").split("\n", 2)[-1]
    except OSError:
        return ""


def index_row(path: str, day: str, sidecar: Mapping[str, Any], body: str) -> dict[str, Any]:
    """The index's row for a filed item, from its sidecar (also used to re-index files after a crash)."""
    return {
        "path": path,
        "url": sidecar["url"],
        "source": sidecar["source"],
        "guid": sidecar.get("guid"),
        "title": sidecar["title"],
        "published": sidecar.get("published"),
        "fetched_at": sidecar["fetched_at"],
        "filed_day": day,
        "content_sha256": sidecar["content_sha256"],
        "topics": sidecar.get("topics") or [],
        "scores": sidecar.get("scores") or {},
        "language": sidecar.get("language"),
        "snippet": snippet(body),
        "revision_of": sidecar.get("revision_of"),
        "simhash": sidecar.get("simhash"),
    }


def snippet(body: str, limit: int = SNIPPET_CHARS) -> str:
    text = " ".join(body.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"
