"""`crawler search`: the archive's full text, ranked (SQLite FTS5, bm25), with snippets.

The FTS5 table is SQLite's; a PostgreSQL index would use its own full-text search behind the same function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from crawler.store import Store


@dataclass(frozen=True, slots=True)
class Hit:
    path: str
    title: str
    source: str
    day: str
    url: str
    snippet: str


_SQL = """
SELECT items.path, items.title, items.source, items.filed_day, items.url,
       snippet(items_fts, 1, '[', ']', '…', 16) AS snip
FROM items_fts JOIN items ON items.id = items_fts.rowid
WHERE items_fts MATCH :query {filters}
ORDER BY bm25(items_fts, 5.0, 1.0)  -- a match in the title weighs more
LIMIT :limit
"""


def search(
    store: Store, query: str, topic: str | None = None, since: str | None = None, limit: int = 20
) -> list[Hit]:
    filters = ""
    params: dict[str, object] = {"limit": limit}
    if topic:
        filters += " AND EXISTS (SELECT 1 FROM json_each(items.topics) WHERE json_each.value = :topic)"
        params["topic"] = topic
    if since:
        filters += " AND items.filed_day >= :since"
        params["since"] = since
    sql = text(_SQL.format(filters=filters))
    with store.engine.connect() as conn:
        try:
            rows = conn.execute(sql, {**params, "query": query}).all()
        except OperationalError:
            # Not valid FTS5 syntax (a stray quote, a hyphen...): search for the words themselves.
            rows = conn.execute(sql, {**params, "query": _plain(query)}).all()
    return [Hit(*row) for row in rows]


def _plain(query: str) -> str:
    words = re.findall(r"\w+", query)
    return " ".join(f'"{w}"' for w in words) or '""'
