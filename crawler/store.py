"""The index: what has been filed, every key known, source health and poll history (SQLAlchemy Core).

The archive folder is the source of truth; this index can be rebuilt from it (see archive.reconcile). It is
written through SQLAlchemy Core and runs on SQLite (the embedded default, a file in the data folder) or on
PostgreSQL (crawler.yaml `database:`, shared by several machines). Only the full-text part differs by engine
(SQLite FTS5, PostgreSQL tsvector: see migrations/versions/0001 and search.py); upserts go through the
engine's own INSERT ... ON CONFLICT. The schema is made and changed by the migrations (crawler.migrations).

Duplicate decisions belong to the database's unique constraints, not to a read before a write: `claim`
inserts an article's keys with ON CONFLICT DO UPDATE ... WHERE the key is not filed or claimed, RETURNING the
keys it got, so of two processes racing for the same key exactly one gets it (on PostgreSQL the second waits
for the first's transaction, then sees the row). The day's filing number comes from the same database when
it is shared (`next_sequence`, one atomic upsert).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    create_engine,
    event,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from crawler.dedup import BANDS, bands

metadata = MetaData()

items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("path", String, nullable=False, unique=True),  # relative to the data folder
    Column("url", Text, nullable=False),
    Column("source", String, nullable=False, index=True),
    Column("guid", Text),
    Column("title", Text, nullable=False),
    Column("published", String),  # ISO 8601, UTC
    Column("fetched_at", String, nullable=False),
    Column("filed_day", String, nullable=False, index=True),  # YYYY-MM-DD in the configured time zone
    Column("content_sha256", String, nullable=False, index=True),
    Column("topics", Text, nullable=False),  # JSON list
    Column("language", String),
    Column("snippet", Text, nullable=False),
    Column("scores", Text, nullable=False, default="{}"),  # JSON {topic: score}
    Column("revision_of", String),  # path of the earlier version of this article
    Column("simhash", String, index=True),  # 16 hex digits: the text's fingerprint, for near-duplicates
)

# Other sources that carried the same story ("also reported by"), kept on the item filed first.
reports = Table(
    "reports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item_id", Integer, nullable=False, index=True),
    Column("source", String, nullable=False),
    Column("url", Text, nullable=False),
    Column("fetched_at", String, nullable=False),
)

keys = Table(
    "keys",
    metadata,
    Column("key", Text, primary_key=True),
    Column("item_id", Integer),  # NULL for pages that were fetched but not filed (no article text)
    Column("status", String, nullable=False),  # filed | claimed | duplicate | rejected | old
    Column("source", String, nullable=False),
    Column("seen_at", String, nullable=False),
    Column("version", Text),  # the feed entry's version when last fetched (see FeedItem.version)
    Column("owner", String),  # while claimed: the filing's token (migration 0004)
)

# Key statuses a claim must not take over: an item filed under the key, or another process filing it now.
HELD = ("filed", "claimed")
# How long a claim may stay unfiled before it is taken for the leftover of a process that died (see recover).
STALE_CLAIM = timedelta(minutes=10)

# The last filing number (NNN) given out per day, when the index is shared (PostgreSQL, see migration 0002).
day_sequences = Table(
    "day_sequences",
    metadata,
    Column("day", String, primary_key=True),
    Column("last", Integer, nullable=False),
)

# Who writes each day's digest (migration 0003): the fence that makes a digest written once, whichever
# scheduler leads when it falls due.
digests = Table(
    "digests",
    metadata,
    Column("day", String, primary_key=True),
    Column("owner", String, nullable=False),
    Column("claimed_at", String, nullable=False),
    Column("written_at", String),
)
# A digest claimed this long ago and still not written: its writer died; another may take it.
STALE_DIGEST = timedelta(minutes=10)

# Simhash bands of recent items, to find near-duplicate candidates without scanning the archive.
simbands = Table(
    "simbands",
    metadata,
    Column("item_id", Integer, nullable=False),
    Column("band", Integer, nullable=False),
    Column("value", Integer, nullable=False),
    Column("day", String, nullable=False),
    Index("simbands_lookup", "band", "value", "day"),
)

sources = Table(
    "sources",
    metadata,
    Column("name", String, primary_key=True),
    Column("url", Text),  # the URL the state belongs to: a new URL in the config starts afresh
    Column("last_poll", String),
    Column("last_success", String),
    Column("last_error", Text),
    Column("failures", Integer, nullable=False, default=0),  # consecutive
    Column("failure_weight", Float, nullable=False, default=0.0),  # consecutive, soft ones weigh less
    Column("next_poll", String),
    Column("interval", Integer),  # seconds: the effective interval (adapted, or lengthened by the server)
    Column("etag", Text),
    Column("last_modified", Text),
    Column("body_sha256", String),
    Column("redirected_to", Text),  # a permanent redirect of the source's URL, for the user to adopt
    Column("discovered", Text),  # the feed an `auto` source found on its home page
    Column("disabled", Text),  # why polling stopped (HTTP 410 Gone); cleared when the URL changes
)

polls = Table(
    "polls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String, nullable=False, index=True),
    Column("day", String, nullable=False, index=True),
    Column("finished_at", String, nullable=False, index=True),
    Column("new", Integer, nullable=False),
    Column("duplicate", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("error", Text),  # the source itself failed (feed unreachable, not a feed, ...)
    Column("failures", Text, nullable=False),  # JSON list of "url: reason" for items that failed
)

meta = Table("meta", metadata, Column("key", String, primary_key=True), Column("value", Text))

# PostgreSQL's full-text table (its tsvector column is generated by the database, see migration 0001). Not in
# `metadata`: on SQLite the same name is an FTS5 virtual table, written with SQLite's own SQL.
pg_fts = Table(
    "items_fts",
    MetaData(),
    Column("item_id", Integer, primary_key=True),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
)


# The statements run for every article, built once: building a SQLAlchemy expression costs more than running
# the query on SQLite (the near-duplicate query is eight band clauses).
_SEEN = select(keys.c.status, keys.c.item_id, keys.c.version).where(keys.c.key == bindparam("key"))
_SEEN_MANY = select(keys.c.key, keys.c.status, keys.c.item_id, keys.c.version).where(
    keys.c.key.in_(bindparam("keys", expanding=True))
)
_SET_VERSION = update(keys).where(keys.c.key == bindparam("k")).values(version=bindparam("v"))
SEEN_BATCH = 500  # keys per query: well under SQLite's limit on bound parameters
_NEAR = (
    select(items.c.id, items.c.path, items.c.simhash)
    .join(simbands, simbands.c.item_id == items.c.id)
    .where(
        or_(*(and_(simbands.c.band == b, simbands.c.value == bindparam(f"v{b}")) for b in range(BANDS))),
        simbands.c.day >= bindparam("since"),
    )
    .distinct()
)
_ITEM_FOR_KEYS = (
    select(keys.c.item_id)
    .where(keys.c.key.in_(bindparam("keys", expanding=True)), keys.c.item_id.is_not(None))
    .limit(1)
)
_ITEM_WITH_CONTENT = select(items.c.id).where(items.c.content_sha256 == bindparam("sha")).limit(1)
_ITEM_PATH = select(items.c.path).where(items.c.id == bindparam("id"))
_INSERT_ITEM = insert(items)
_INSERT_BANDS = insert(simbands)
_SQLITE_FTS = "INSERT INTO items_fts(rowid, title, body) VALUES (?, ?, ?)"
# Advisory locks of items (PostgreSQL): the two-integer form, with this first key ("item" in ASCII), so they
# cannot collide with the scheduler's one-bigint leader lock.
ITEM_LOCK_SPACE = 0x6974656D
_ITEM_LOCK = text("SELECT pg_advisory_xact_lock(:space, :id)")


class _Upserts:
    """The INSERT ... ON CONFLICT statements, built once per engine with that engine's dialect."""

    def __init__(self, dialect: str):
        insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self.insert = insert_
        self.remember = insert_(keys).on_conflict_do_nothing(index_elements=["key"])
        # A claim returns the keys it got: a key another process holds (claimed) or has filed is not
        # returned. A key an earlier poll only remembered (old, rejected, duplicate) is taken over: that entry
        # is now being filed legitimately (a backfill, a page that became an article), and leaving such a key
        # in place would make its claim fail at every poll, for ever.
        claim = insert_(keys)
        self.claim = claim.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "item_id": null(),
                "status": claim.excluded.status,
                "source": claim.excluded.source,
                "seen_at": claim.excluded.seen_at,
                "owner": claim.excluded.owner,
            },
            # Literals, not parameters: an executemany (one row per key) cannot expand an IN list.
            where=and_(*(keys.c.status != literal_column(f"'{s}'") for s in HELD)),
        ).returning(keys.c.key)
        # The day's next filing number (PostgreSQL): one statement, atomic under concurrent filers.
        seq = insert_(day_sequences)
        self.next_sequence = seq.on_conflict_do_update(
            index_elements=["day"], set_={"last": day_sequences.c.last + 1}
        ).returning(day_sequences.c.last)
        # A digest day is taken when nobody has it, or its claim is stale and it was never written.
        digest = insert_(digests)
        self.claim_digest = digest.on_conflict_do_update(
            index_elements=["day"],
            set_={"owner": digest.excluded.owner, "claimed_at": digest.excluded.claimed_at},
            where=and_(digests.c.written_at.is_(None), digests.c.claimed_at <= bindparam("stale_before")),
        ).returning(digests.c.day)
        # A revision takes over the keys of the version before it, so the next check compares with it.
        file_keys = insert_(keys)
        self.file_keys = file_keys.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "item_id": file_keys.excluded.item_id,
                "status": file_keys.excluded.status,
                "version": file_keys.excluded.version,
            },
        )


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class IndexedItem:
    path: str
    url: str
    source: str
    title: str
    published: str | None
    fetched_at: str
    topics: list[str]
    snippet: str
    scores: dict[str, float] = field(default_factory=dict)
    also_reported_by: list[dict[str, str]] = field(default_factory=list)  # {source, url, fetched_at}
    revision_of: str | None = None


@dataclass(frozen=True, slots=True)
class PollRow:
    source: str
    new: int
    duplicate: int
    failed: int
    error: str | None
    failures: list[str]


class ClaimLost(Exception):
    """A filing's claims were released (it stalled longer than a claim lives) before it could file."""


class Store:
    """The index. `target` is an SQLite file (a Path) or an SQLAlchemy URL (crawler.yaml `database:`).

    Opening brings an SQLite index up to the current schema; a PostgreSQL index must already be current
    (`crawler migrate`), else crawler.migrations.OutOfDate is raised. ready=False skips that (for migrate).
    """

    def __init__(self, target: Path | str, *, ready: bool = True):
        self.engine: Engine = make_engine(target)
        self.dialect = self.engine.dialect.name
        self._upserts = _Upserts(self.dialect)
        if ready:
            from crawler.migrations import ensure_ready  # migrations import this module's metadata

            ensure_ready(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- keys -------------------------------------------------------------------------------------------
    def known(self, candidates: Iterable[str]) -> str | None:
        """The status of the first candidate key already recorded, or None when all are new."""
        wanted = list(candidates)
        if not wanted:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(keys.c.status).where(keys.c.key.in_(wanted)).limit(1)).first()
        return row[0] if row else None

    def item_with_content(self, sha256: str) -> int | None:
        with self.engine.connect() as conn:
            row = conn.execute(_ITEM_WITH_CONTENT, {"sha": sha256}).first()
        return row[0] if row else None

    def item_for_keys(self, candidates: Iterable[str]) -> int | None:
        wanted = list(candidates)
        if not wanted:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(_ITEM_FOR_KEYS, {"keys": wanted}).first()
        return row[0] if row else None

    def remember(
        self, candidates: Iterable[str], status: str, source: str, item_id: int | None = None
    ) -> None:
        rows = [
            {"key": k, "item_id": item_id, "status": status, "source": source, "seen_at": utcnow()}
            for k in dict.fromkeys(candidates)
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(self._upserts.remember, rows)

    def claim(self, candidates: Iterable[str], source: str, owner: str | None = None) -> bool:
        """Take an article's keys for this process before it is filed; False if another holds any of them.

        The decision is the keys table's primary key (INSERT ... ON CONFLICT DO NOTHING RETURNING), so two
        processes racing for one article cannot both win. A lost claim takes nothing: its transaction is
        rolled back. The keys are held as 'claimed' until add_item files them (status 'filed').
        """
        wanted = list(dict.fromkeys(candidates))
        if not wanted:
            return True
        now = utcnow()
        rows = [
            {"key": k, "item_id": None, "status": "claimed", "source": source, "seen_at": now, "owner": owner}
            for k in wanted
        ]
        with self.engine.connect() as conn, conn.begin() as tx:
            got = set(conn.execute(self._upserts.claim, rows).scalars())
            if got == set(wanted):
                return True
            tx.rollback()  # also gives back the remembered keys this claim had taken over
        return False

    def release_stale_claims(self, older_than: timedelta = STALE_CLAIM) -> int:
        """Forget claims older than `older_than`: a process died between claim and add_item.

        Their entries become unknown again, so the next poll fetches and files them. An item whose files were
        written before the death is re-indexed from the archive by recover (which files its keys) first.
        """
        cutoff = (datetime.now(UTC) - older_than).isoformat(timespec="seconds")
        stale = keys.delete().where(keys.c.status == "claimed", keys.c.seen_at <= cutoff)
        with self.engine.begin() as conn:
            return conn.execute(stale).rowcount

    def next_sequence(self, day: str, seed: Callable[[], int]) -> int:
        """The day's next filing number, allocated in the index (for filers sharing a PostgreSQL index).

        One statement when the day's row exists; the first filing of a day seeds the row from `seed()` (the
        highest number already in the day's folder), and a race for that first row is settled by ON CONFLICT.
        """
        with self.engine.begin() as conn:
            bumped = conn.execute(
                update(day_sequences)
                .where(day_sequences.c.day == day)
                .values(last=day_sequences.c.last + 1)
                .returning(day_sequences.c.last)
            ).scalar()
            if bumped is None:
                bumped = conn.execute(self._upserts.next_sequence, {"day": day, "last": seed() + 1}).scalar()
        assert bumped is not None  # the upsert always returns its row
        return int(bumped)

    # -- digests ----------------------------------------------------------------------------------------
    def claim_digest(self, day: str, owner: str, stale: timedelta = STALE_DIGEST) -> bool:
        """Take the writing of `day`'s digest for `owner`; False if it is written, or another writer has it.

        One statement decides (the day's primary key), so two schedulers that both think they lead cannot
        both write it. A claim whose writer died unwritten is taken over after `stale`.
        """
        now = datetime.now(UTC)
        row = {"day": day, "owner": owner, "claimed_at": now.isoformat(timespec="seconds")}
        stale_before = (now - stale).isoformat(timespec="seconds")
        with self.engine.begin() as conn:
            got = conn.execute(self._upserts.claim_digest, {**row, "stale_before": stale_before}).first()
        return got is not None

    def digest_written(self, day: str, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(digests)
                .where(digests.c.day == day, digests.c.owner == owner)
                .values(written_at=utcnow())
            )

    def release_digest(self, day: str, owner: str) -> None:
        """Give a claimed, unwritten day back (its writing failed): the next try may take it at once."""
        with self.engine.begin() as conn:
            conn.execute(
                digests.delete().where(
                    digests.c.day == day, digests.c.owner == owner, digests.c.written_at.is_(None)
                )
            )

    def digest_rows(self) -> dict[str, tuple[str, str | None]]:
        """day -> (owner, written_at), for status and tests."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(digests.c.day, digests.c.owner, digests.c.written_at)).all()
        return {day: (owner, written) for day, owner, written in rows}

    # -- items ------------------------------------------------------------------------------------------
    def add_item(
        self,
        row: Mapping[str, Any],
        item_keys: Iterable[str],
        body: str = "",
        simhash: int | None = None,
        reported_by: Iterable[Mapping[str, str]] = (),
        version: str | None = None,
        claimed: tuple[list[str], str] | None = None,
    ) -> int:
        """Record a filed item, its keys, its search text, its near-duplicate bands, in one transaction.

        `claimed`: the keys the filing claimed and its token. The item is recorded only if they are all still
        claimed by it (ClaimLost otherwise): a filer that stalled past the claim's release must not file.
        """
        with self.engine.begin() as conn:
            if claimed is not None:
                self._still_claimed(conn, *claimed)
            values = dict(row)
            values["topics"] = json.dumps(list(values["topics"]), ensure_ascii=False)
            values["scores"] = json.dumps(dict(values.get("scores") or {}), ensure_ascii=False)
            inserted = conn.execute(_INSERT_ITEM, values).inserted_primary_key
            assert inserted is not None
            item_id = int(inserted[0])
            key_rows = [
                {
                    "key": k,
                    "item_id": item_id,
                    "status": "filed",
                    "source": row["source"],
                    "seen_at": utcnow(),
                    "version": version,
                }
                for k in dict.fromkeys(item_keys)
            ]
            conn.execute(self._upserts.file_keys, key_rows)
            if self.dialect == "sqlite":
                conn.exec_driver_sql(_SQLITE_FTS, (item_id, row["title"], body))
            else:
                conn.execute(insert(pg_fts).values(item_id=item_id, title=row["title"], body=body))
            if simhash is not None:
                conn.execute(
                    _INSERT_BANDS,
                    [
                        {"item_id": item_id, "band": b, "value": v, "day": row["filed_day"]}
                        for b, v in bands(simhash)
                    ],
                )
            for rep in reported_by:
                conn.execute(insert(reports).values(item_id=item_id, **rep))
        return item_id

    def _still_claimed(self, conn: Connection, claim_keys: list[str], owner: str) -> None:
        wanted = set(claim_keys)
        query = select(keys.c.key).where(
            keys.c.key.in_(wanted), keys.c.status == "claimed", keys.c.owner == owner
        )
        if self.dialect == "postgresql":
            query = query.with_for_update()  # held until this transaction files them
        held = set(conn.execute(query).scalars())
        if held != wanted:
            raise ClaimLost(f"{len(wanted - held)} of {len(wanted)} claimed key(s) no longer held")

    def add_report(self, item_id: int, source: str, url: str, fetched_at: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(reports).values(item_id=item_id, source=source, url=url, fetched_at=fetched_at)
            )

    def near_candidates(self, simhash: int, since_day: str) -> list[tuple[int, str, str]]:
        """(item id, path, simhash hex) of items filed since `since_day` sharing a Simhash band."""
        params: dict[str, Any] = {f"v{b}": v for b, v in bands(simhash)}
        params["since"] = since_day
        with self.engine.connect() as conn:
            return [(r[0], r[1], r[2]) for r in conn.execute(_NEAR, params)]

    @contextmanager
    def item_lock(self, item_id: int) -> Iterator[None]:
        """Hold the item for a read-modify-write of its sidecar, against other processes sharing the index.

        PostgreSQL: a transaction-scoped advisory lock on the item, released when the block ends (or its
        process dies). SQLite: nothing to do; one process writes (the data folder's lock), on one thread.
        """
        if self.dialect != "postgresql":
            yield
            return
        with self.engine.connect() as conn, conn.begin():
            conn.execute(_ITEM_LOCK, {"space": ITEM_LOCK_SPACE, "id": item_id})
            yield

    def item_path(self, item_id: int) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(_ITEM_PATH, {"id": item_id}).scalar()

    def seen(self, key: str) -> tuple[str, int | None, str | None] | None:
        """(status, item id, version) recorded for a key, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(_SEEN, {"key": key}).first()
        return (row[0], row[1], row[2]) if row else None

    def seen_many(self, candidates: Iterable[str]) -> dict[str, tuple[str, int | None, str | None]]:
        """seen() of many keys in one round trip (a poll's entries): key -> (status, item id, version)."""
        wanted = list(dict.fromkeys(candidates))
        found: dict[str, tuple[str, int | None, str | None]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), SEEN_BATCH):
                batch = wanted[start : start + SEEN_BATCH]
                for key, status, item_id, version in conn.execute(_SEEN_MANY, {"keys": batch}):
                    found[key] = (status, item_id, version)
        return found

    def set_version(self, key: str, version: str | None) -> None:
        self.set_versions([(key, version)])

    def set_versions(self, pairs: Iterable[tuple[str, str | None]]) -> None:
        """Record the feed entry versions of keys already filed, in one transaction."""
        rows = [{"k": key, "v": version} for key, version in pairs]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(_SET_VERSION, rows)

    def has_path(self, path: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(items.c.id).where(items.c.path == path)).first() is not None

    def update_topics(self, path: str, topics: list[str], scores: dict[str, float]) -> bool:
        """Set an indexed item's topics and scores (`crawler retag`); False when the path is not indexed."""
        values = {
            "topics": json.dumps(list(topics), ensure_ascii=False),
            "scores": json.dumps(dict(scores), ensure_ascii=False),
        }
        with self.engine.begin() as conn:
            return conn.execute(update(items).where(items.c.path == path).values(**values)).rowcount > 0

    def items_of_day(self, day: str) -> list[IndexedItem]:
        query = select(items).where(items.c.filed_day == day).order_by(items.c.path)
        with self.engine.connect() as conn:
            rows = list(conn.execute(query))
            also: dict[int, list[dict[str, str]]] = {}
            ids = [r.id for r in rows]
            for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
                for rep in conn.execute(
                    select(reports).where(reports.c.item_id.in_(chunk)).order_by(reports.c.id)
                ):
                    also.setdefault(rep.item_id, []).append(
                        {"source": rep.source, "url": rep.url, "fetched_at": rep.fetched_at}
                    )
        return [
            IndexedItem(
                path=r.path,
                url=r.url,
                source=r.source,
                title=r.title,
                published=r.published,
                fetched_at=r.fetched_at,
                topics=json.loads(r.topics),
                snippet=r.snippet,
                scores=json.loads(r.scores or "{}"),
                also_reported_by=also.get(r.id, []),
                revision_of=r.revision_of,
            )
            for r in rows
        ]

    def active_days(self, before: str) -> list[str]:
        """Days before `before` on which anything was polled or filed, oldest first (both columns indexed)."""
        with self.engine.connect() as conn:
            days = set(
                conn.execute(select(items.c.filed_day).where(items.c.filed_day < before).distinct()).scalars()
            )
            days |= set(conn.execute(select(polls.c.day).where(polls.c.day < before).distinct()).scalars())
        return sorted(days)

    def count_items(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(items)).scalar() or 0)

    # -- sources and polls ------------------------------------------------------------------------------
    def record_poll(self, day: str, row: PollRow) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                insert(polls).values(
                    source=row.source,
                    day=day,
                    finished_at=now,
                    new=row.new,
                    duplicate=row.duplicate,
                    failed=row.failed,
                    error=row.error,
                    failures=json.dumps(row.failures, ensure_ascii=False),
                )
            )

    def polls_of_day(self, day: str) -> list[PollRow]:
        query = select(polls).where(polls.c.day == day).order_by(polls.c.id)
        with self.engine.connect() as conn:
            return [
                PollRow(r.source, r.new, r.duplicate, r.failed, r.error, json.loads(r.failures))
                for r in conn.execute(query)
            ]

    def source_states(self) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            return {r.name: dict(r._mapping) for r in conn.execute(select(sources))}

    def source_state(self, name: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(sources).where(sources.c.name == name)).first()
        return dict(row._mapping) if row else {"name": name, "failures": 0, "failure_weight": 0.0}

    def save_source_state(self, name: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                self._upserts.insert(sources)
                .values(name=name, **values)
                .on_conflict_do_update(index_elements=["name"], set_=values)
            )

    def reset_source_state(self, name: str, url: str) -> None:
        """Forget what was learnt about a source whose URL changed in the config (validators, 410, ...)."""
        with self.engine.begin() as conn:
            conn.execute(sources.delete().where(sources.c.name == name))
            conn.execute(insert(sources).values(name=name, url=url, failures=0, failure_weight=0.0))

    def failure_streaks(self, since: str, before: str) -> dict[str, tuple[int, str | None]]:
        """Per source: failed polls in a row up to `before` (counted back to `since`), and the last error."""
        query = (
            select(polls.c.source, polls.c.error)
            .where(polls.c.finished_at >= since, polls.c.finished_at < before)
            .order_by(polls.c.id)
        )
        streaks: dict[str, tuple[int, str | None]] = {}
        with self.engine.connect() as conn:
            for source, error in conn.execute(query):
                count = streaks.get(source, (0, None))[0]
                streaks[source] = (count + 1, error) if error else (0, None)
        return streaks

    def first_polls(self) -> dict[str, str]:
        query = select(polls.c.source, func.min(polls.c.finished_at)).group_by(polls.c.source)
        with self.engine.connect() as conn:
            return {source: first for source, first in conn.execute(query)}

    def last_filed(self, before: str) -> dict[str, str]:
        query = (
            select(items.c.source, func.max(items.c.fetched_at))
            .where(items.c.fetched_at < before)
            .group_by(items.c.source)
        )
        with self.engine.connect() as conn:
            return {source: last for source, last in conn.execute(query)}

    def source_activity(self, since: str) -> dict[str, tuple[int, str | None]]:
        """Per source: items filed since `since` (ISO time), and when its newest item was filed."""
        query = select(
            items.c.source,
            func.sum(case((items.c.fetched_at >= since, 1), else_=0)),
            func.max(items.c.fetched_at),
        ).group_by(items.c.source)
        with self.engine.connect() as conn:
            return {r[0]: (int(r[1] or 0), r[2]) for r in conn.execute(query)}

    # -- small settings ---------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()

    def set_meta(self, key: str, value: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                self._upserts.insert(meta)
                .values(key=key, value=value)
                .on_conflict_do_update(index_elements=["key"], set_={"value": value})
            )

    def iter_paths(self) -> Iterator[str]:
        with self.engine.connect() as conn:
            for (path,) in conn.execute(select(items.c.path)):
                yield path


def make_engine(target: Path | str) -> Engine:
    """An engine for an SQLite file (a Path) or a database URL, set up for the index's use."""
    if isinstance(target, Path):
        target.parent.mkdir(parents=True, exist_ok=True)
        target = f"sqlite:///{target}"
    url = make_url(target)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")  # psycopg 3: the driver the crawler depends on
    # pool_pre_ping: a long-running service survives a database restart.
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets the digest and `crawler poll` read while the service writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
