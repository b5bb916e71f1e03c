"""Schema migrations of the index (Alembic), for SQLite and PostgreSQL alike.

No alembic.ini: the Alembic configuration is built here, in code, pointing at this package, so the
migrations ship inside the installed package. An embedded SQLite index is brought up to date whenever it is
opened (a user of the default never runs anything); a PostgreSQL index is shared by several machines and is
only changed by `crawler migrate`, so opening one whose schema is behind fails with a message saying so.

An index made before migrations existed (its tables created by `metadata.create_all`, no `alembic_version`)
is checked table by table and column by column, then stamped at the first revision: never recreated.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

HERE = Path(__file__).parent
FIRST = "0001"  # the schema of the code before migrations: what an unversioned index is stamped at
# The newest revision, so that opening a current index needs no Alembic import (~80 ms per command);
# tests/test_migrate.py checks it is the head of versions/. A new revision updates it.
HEAD = "0004"
UNVERSIONED = "unversioned (made before migrations)"
# Tables of revisions after the first: an index made before migrations lacks them, and the upgrade adds them.
LATER_TABLES = frozenset({"day_sequences", "digests"})  # 0002, 0003
LATER_COLUMNS = frozenset({("keys", "owner")})  # 0004


class IndexUnusable(Exception):
    """The index cannot be used as it is: its message says what to do."""


class OutOfDate(IndexUnusable):
    """A PostgreSQL index whose schema is behind the code's."""


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(HERE))
    # env.py runs on this connection (see env.py): no URL, no ini file.
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    return HEAD


@cache
def script_head() -> str:
    """The head of versions/, as Alembic reads it."""
    from alembic.script import ScriptDirectory

    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert found is not None
    return found


def current(conn: Connection) -> str | None:
    """The index's revision (None: no alembic_version table, or an empty one), read with plain SQL."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    try:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        return None


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the index to the latest revision; returns (revision before, revision after).

    The revision before is None for a new (empty) index and UNVERSIONED for one made before migrations.
    """
    from alembic import command

    with engine.begin() as conn:
        before = current(conn)
        if before is None and _has_tables(conn):
            _check_legacy(conn)
            command.stamp(alembic_config(conn), FIRST)
            before = UNVERSIONED
        if current(conn) != head():
            command.upgrade(alembic_config(conn), "head")
    return before, head()


def ensure_ready(engine: Engine) -> None:
    """Called when the index is opened: SQLite upgrades itself, PostgreSQL must already be current."""
    with engine.connect() as conn:
        found = current(conn)
    if found == head():
        return
    if engine.dialect.name == "sqlite":
        try:
            upgrade(engine)
        except Exception:
            # Another process opening the same new index may have created it first: fine if it is current.
            with engine.connect() as conn:
                if current(conn) != head():
                    raise
        return
    url = engine.url.render_as_string(hide_password=True)
    raise OutOfDate(
        f"the index at {url} is at schema revision {found or 'none'}, this crawler needs {head()}: "
        "run `crawler migrate` (once, from one machine) to upgrade it"
    )


def _has_tables(conn: Connection) -> bool:
    return bool(set(inspect(conn).get_table_names()) - {"alembic_version"})


def _check_legacy(conn: Connection) -> None:
    """An unversioned index must hold exactly the first revision's tables and columns to be stamped."""
    from crawler.store import metadata  # the first revision's tables: today's but LATER_TABLES

    found = inspect(conn)
    names = set(found.get_table_names())
    problems = []
    for table in metadata.sorted_tables:
        if table.name in LATER_TABLES:
            continue
        if table.name not in names:
            problems.append(f"table {table.name} missing")
            continue
        have = {c["name"] for c in found.get_columns(table.name)}
        wanted = {c.name for c in table.columns if (table.name, c.name) not in LATER_COLUMNS}
        missing = sorted(wanted - have)
        if missing:
            problems.append(f"{table.name} lacks {', '.join(missing)}")
    if conn.dialect.name == "sqlite" and "items_fts" not in names:
        problems.append("table items_fts missing")
    if problems:
        raise IndexUnusable(
            "the index was made by an unknown version of the crawler ("
            + "; ".join(problems)
            + "): move it aside and run `crawler reindex` to rebuild it from the archive"
        )
