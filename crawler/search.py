"""`crawler search`: the archive's full text, ranked, with snippets.

SQLite: the FTS5 table, ranked by bm25, its query syntax (falling back to the plain words). PostgreSQL: the
generated tsvector of items_fts (the 'simple' configuration, GIN-indexed), queried with websearch_to_tsquery
(quotes, OR and -word as in a web search engine, never a syntax error), ranked by ts_rank with the title
weighing more, snippets by ts_headline. Unlike SQLite's index, PostgreSQL's does not fold accents (that needs
the unaccent extension, which a shared server may not offer).
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


_PG_SQL = """
SELECT items.path, items.title, items.source, items.filed_day, items.url,
       ts_headline('simple', items_fts.body, q,
                   'StartSel=[, StopSel=], MaxFragments=1, MaxWords=16, MinWords=6, FragmentDelimiter=…')
FROM items_fts JOIN items ON items.id = items_fts.item_id,
     websearch_to_tsquery('simple', :query) AS q
WHERE items_fts.document @@ q {filters}
ORDER BY ts_rank('{{0.1, 0.2, 0.4, 1.0}}', items_fts.document, q) DESC, items.id
LIMIT :limit
"""


def search(
    store: Store, query: str, topic: str | None = None, since: str | None = None, limit: int = 20
) -> list[Hit]:
    if store.dialect == "postgresql":
        return _search_postgres(store, query, topic, since, limit)
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


def _search_postgres(store: Store, query: str, topic: str | None, since: str | None, limit: int) -> list[Hit]:
    filters = ""
    params: dict[str, object] = {"limit": limit, "query": query}
    if topic:
        filters += " AND CAST(items.topics AS jsonb) ? :topic"
        params["topic"] = topic
    if since:
        filters += " AND items.filed_day >= :since"
        params["since"] = since
    with store.engine.connect() as conn:
        rows = conn.execute(text(_PG_SQL.format(filters=filters)), params).all()
    return [Hit(*row) for row in rows]
