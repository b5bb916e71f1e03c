"""The `crawler` command: argument parsing and exit codes only; the work is done in the stage modules."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path

from crawler import __version__
from crawler.config import CONFIG_ENV, Config, ConfigError, load_config

log = logging.getLogger("crawler")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from crawler.logs import setup_logging

    setup_logging(args.log_format, args.verbose)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from crawler.migrations import IndexUnusable  # alembic is imported only when this can be the case

        if not isinstance(exc, IndexUnusable):
            raise
        print(f"crawler {args.command}: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crawler",
        description="Monitor news sources: poll them on a schedule, file each new article once as plain text "
        "with topic flags, and write a daily digest.",
    )
    parser.add_argument("--version", action="version", version=f"crawler {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=os.environ.get("CRAWLER_LOG_FORMAT", "text"),
        help="log lines as text (default) or JSON objects, one per line ($CRAWLER_LOG_FORMAT)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config_help = f"config folder (default: ${CONFIG_ENV} or ./config)"

    run = sub.add_parser("run", help="run the service in the foreground until SIGTERM or Ctrl-C")
    run.add_argument("--config", type=Path, help=config_help)
    run.add_argument(
        "--role",
        choices=("embedded", "scheduler", "worker"),
        default=None,
        help="embedded (the default without `queue:`): everything in one process; with crawler.yaml "
        "`queue:` and a PostgreSQL `database:`: scheduler (one leads, others stand by) or worker (any "
        "number)",
    )
    run.set_defaults(func=cmd_run)

    poll = sub.add_parser("poll", help="poll sources now, file what is new, print a summary and exit")
    poll.add_argument("--config", type=Path, help=config_help)
    poll.add_argument("sources", nargs="*", metavar="SOURCE", help="source names (default: all enabled)")
    poll.add_argument(
        "--wait",
        type=float,
        default=60,
        metavar="SECONDS",
        help="wait this long for a running service or another poll to release the data folder (default 60)",
    )
    poll.set_defaults(func=cmd_poll)

    digest = sub.add_parser("digest", help="write (or rewrite) the digest of a day")
    digest.add_argument("--config", type=Path, help=config_help)
    digest.add_argument("--date", type=date.fromisoformat, help="YYYY-MM-DD (default: yesterday)")
    digest.set_defaults(func=cmd_digest)

    check = sub.add_parser("check", help="validate the config; problems as FILE:LINE: field: message")
    check.add_argument("--config", type=Path, help=config_help)
    check.set_defaults(func=cmd_check)

    sources = sub.add_parser("sources", help="show every source: kind, interval, health, next poll")
    sources.add_argument("--config", type=Path, help=config_help)
    sources.set_defaults(func=cmd_sources)

    imp = sub.add_parser("import-opml", help="add the feeds of an OPML file to sources.yaml (comments kept)")
    imp.add_argument("file", type=Path, help="the OPML file")
    imp.add_argument("--config", type=Path, help=config_help)
    imp.set_defaults(func=cmd_import_opml)

    exp = sub.add_parser("export-opml", help="write the feed sources as OPML (to stdout, or --out FILE)")
    exp.add_argument("--config", type=Path, help=config_help)
    exp.add_argument("--out", type=Path, help="write to this file instead of stdout")
    exp.set_defaults(func=cmd_export_opml)

    search = sub.add_parser("search", help="search the archive's text (ranked, with snippets)")
    search.add_argument("query", help='words, "a phrase", OR, NOT (SQLite also prefix*)')
    search.add_argument("--topic", help="only items flagged with this topic")
    search.add_argument("--since", type=date.fromisoformat, help="only items filed on or after YYYY-MM-DD")
    search.add_argument("--limit", type=int, default=20, help="at most this many results (default 20)")
    search.add_argument("--config", type=Path, help=config_help)
    search.set_defaults(func=cmd_search)

    reindex = sub.add_parser("reindex", help="rebuild the index from the archive files alone")
    reindex.add_argument("--config", type=Path, help=config_help)
    reindex.set_defaults(func=cmd_reindex)

    migrate = sub.add_parser("migrate", help="upgrade the index's schema (PostgreSQL: before first use)")
    migrate.add_argument("--config", type=Path, help=config_help)
    migrate.set_defaults(func=cmd_migrate)

    retag = sub.add_parser("retag", help="apply the current topic rules to archived items again")
    retag.add_argument("--since", type=date.fromisoformat, help="only items filed on or after YYYY-MM-DD")
    retag.add_argument("--config", type=Path, help=config_help)
    retag.set_defaults(func=cmd_retag)

    explain = sub.add_parser("explain", help="why each topic was or was not set on an archived item")
    explain.add_argument("file", type=Path, help="an archive .txt file")
    explain.add_argument("--config", type=Path, help=config_help)
    explain.set_defaults(func=cmd_explain)

    schema = sub.add_parser(
        "config-schema", help="print the JSON Schema of the config files (or write them with --out DIR)"
    )
    schema.add_argument(
        "file", nargs="?", choices=("crawler.yaml", "sources.yaml", "topics.yaml"), help="only this file's"
    )
    schema.add_argument("--out", type=Path, help="write FILE.schema.json files into this folder")
    schema.set_defaults(func=cmd_config_schema)

    demo = sub.add_parser("demo", help="poll a local demo news site built from seeds/ and write its digest")
    demo.add_argument(
        "--out", type=Path, default=Path("demo-output"), help="output folder (default: %(default)s)"
    )
    demo.add_argument("--seeds", type=Path, help="folder of seed documents (default: ./seeds)")
    demo.add_argument("--config", type=Path, help="take topics.yaml from this folder (default: ./config)")
    demo.set_defaults(func=cmd_demo)
    return parser


def _load(args: argparse.Namespace) -> Config | None:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return None
    from crawler.logs import set_source_names

    set_source_names(s.name for s in config.sources)  # so every log line about a source carries its name
    return config


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 1
    enabled = sum(1 for s in config.sources if s.enabled)
    print(
        f"{config.config_dir}: OK: {len(config.sources)} source(s) ({enabled} enabled), "
        f"{len(config.topics)} topic(s), data in {config.data_dir}"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from crawler import runtime

    # First of all: a SIGTERM while the program starts must stop it cleanly, not kill it half-started.
    runtime.catch_stop_signals()
    config = _load(args)
    if config is None:
        return 1
    from crawler.roles import role_problem

    role = args.role or "embedded"
    problem = role_problem(config, role)
    if problem:
        print(f"crawler run: {problem}", file=sys.stderr)
        return 1
    if role != "embedded":
        return _run_role(config, role, args.config)
    from crawler.lock import DataLock, LockHeld

    lock = DataLock(config.data_dir, "run")
    try:
        lock.acquire()
    except LockHeld as exc:
        print(f"crawler run: {exc}; one service per data folder (lock: {lock.path})", file=sys.stderr)
        return 1
    try:
        from crawler.config import default_config_dir
        from crawler.observe import observability
        from crawler.service import serve

        # Reloads read the folder as given here, so their errors name the files as `crawler check` does.
        config_path = args.config or default_config_dir()
        # Metrics always; the HTTP endpoint when crawler.yaml has `http: {listen: ...}`.
        extras = [observability(config.settings.http)]
        return runtime.run(lambda: serve(config, extras=extras, config_path=config_path))
    finally:
        lock.release()


def _run_role(config: Config, role: str, config_dir: Path | None) -> int:
    """A scheduler or worker node. No data-folder lock: the nodes coordinate through PostgreSQL and Redis,
    and any number of them may share the config and data folders."""
    from redis.exceptions import RedisError
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from crawler import runtime
    from crawler.config import default_config_dir
    from crawler.migrations import IndexUnusable

    config_path = config_dir or default_config_dir()
    try:
        if role == "scheduler":
            from crawler.roles.scheduler import schedule

            return runtime.run(lambda: schedule(config, config_path))
        from crawler.roles.worker import work

        return runtime.run(lambda: work(config, config_path))
    except IndexUnusable as exc:
        print(f"crawler run: {exc}", file=sys.stderr)
    except DBAPIError as exc:
        where = make_url(config.settings.database or "").render_as_string(hide_password=True)
        print(f"crawler run: crawler.yaml: database: {where}: {_first_line(exc.orig)}", file=sys.stderr)
    except RedisError as exc:
        print(
            f"crawler run: crawler.yaml: queue: {_hide_password(config.settings.queue)}: {exc}",
            file=sys.stderr,
        )
    return 1


def _first_line(error: BaseException | None) -> str:
    text = str(error or "").strip()
    return text.splitlines()[0] if text else type(error).__name__


def _hide_password(url: str | None) -> str:
    """The URL as it can be logged: a password in it replaced by ***."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url or "")
    if parts.password is None:
        return url or ""
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def cmd_poll(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 1
    known = {s.name for s in config.sources}
    unknown = [n for n in args.sources if n not in known]
    if unknown:
        print(
            f"unknown source(s): {', '.join(unknown)}; configured: {', '.join(sorted(known))}",
            file=sys.stderr,
        )
        return 1
    from crawler import report, runtime
    from crawler.lock import POLL_WAIT_SECONDS, DataLock, Holder, LockHeld
    from crawler.service import poll_once

    # One writer per data folder: while a service or another poll works on it, wait for it to finish
    # rather than file the same items concurrently.
    wait = float(getattr(args, "wait", POLL_WAIT_SECONDS))
    lock = DataLock(config.data_dir, "poll")

    def waiting(holder: Holder) -> None:
        print(
            f"waiting up to {wait:g} s for {holder.describe()} to release {config.data_dir}",
            file=sys.stderr,
        )

    try:
        lock.acquire(wait=wait, on_wait=waiting)
    except LockHeld as exc:
        hint = (
            "; the service polls on its own schedule: stop it to poll by hand"
            if exc.holder.command == "run"
            else ""
        )
        print(f"crawler poll: nothing polled: {exc} (waited {wait:g} s){hint}", file=sys.stderr)
        return 1
    try:
        total = len(args.sources) or sum(1 for s in config.sources if s.enabled)
        with report.progress(total) as on_done:
            reports = runtime.run(lambda: poll_once(config, args.sources, on_done))
    finally:
        lock.release()
    report.summary(reports)
    return 0  # a failing source is reported, not an error of the command


def cmd_digest(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 1
    from crawler.digest import DigestTemplateError, write_digest_for, yesterday
    from crawler.resources import open_store, recover
    from crawler.store import STALE_CLAIM

    day = args.date.isoformat() if args.date else yesterday(datetime.now(config.tz))
    with closing(open_store(config)) as store:
        # A service may be filing right now (readers take no lock): only old leftovers are cleaned up.
        recover(store, config.data_dir, shared_after=STALE_CLAIM)
        try:
            path = write_digest_for(store, config, day)
        except DigestTemplateError as exc:
            print(f"digest for {day}: Markdown written, HTML not: {exc}", file=sys.stderr)
            return 1
    print(path)
    return 0


def cmd_sources(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 1
    from crawler.report import sources_table
    from crawler.resources import open_store
    from crawler.status import source_rows

    with closing(open_store(config)) as store:
        sources_table(source_rows(config, store, datetime.now(UTC)))
    return 0


def cmd_import_opml(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 1
    from crawler.config import SOURCES_FILE
    from crawler.opml import OpmlError, add_to_sources, read_opml

    try:
        feeds = read_opml(args.file.read_bytes())
    except (OSError, OpmlError) as exc:
        print(f"{args.file}: cannot read OPML: {exc}", file=sys.stderr)
        return 1
    added = add_to_sources(config.config_dir / SOURCES_FILE, feeds)
    target = config.config_dir / SOURCES_FILE
    print(f"{len(added)} of {len(feeds)} feed(s) added to {target}: {', '.join(added) or 'none new'}")
    try:
        load_config(config.config_dir)
    except ConfigError as exc:  # e.g. a name clash the user must settle; the file says where
        print("\n".join(exc.problems), file=sys.stderr)
        return 1
    return 0


def cmd_export_opml(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 1
    from crawler.opml import export_opml

    data = export_opml(config.sources, title=f"crawler sources ({config.config_dir})")
    if args.out:
        args.out.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 1
    from crawler.resources import open_store
    from crawler.search import search

    since = args.since.isoformat() if args.since else None
    with closing(open_store(config)) as store:
        hits = search(store, args.query, args.topic, since, args.limit)
    for hit in hits:
        print(f"{hit.day}  {hit.source}  {hit.title}\n    {hit.path}\n    {hit.snippet}\n")
    print(f"{len(hits)} result(s)", file=sys.stderr)
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 1
    from crawler.lock import DataLock, LockHeld
    from crawler.resources import rebuild_index

    # The index is replaced under a running service's feet otherwise: refuse rather than wait.
    lock = DataLock(config.data_dir, "reindex")
    try:
        lock.acquire()
    except LockHeld as exc:
        print(f"crawler reindex: {exc}", file=sys.stderr)
        return 1
    try:
        count = rebuild_index(config)
    finally:
        lock.release()
    print(f"index rebuilt from the archive: {count} item(s)")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 1
    from crawler.resources import migrate_index

    before, after = migrate_index(config)
    if before == after:
        print(f"index already at revision {after}")
    else:
        print(f"index migrated from revision {before or 'none (new index)'} to {after}")
    return 0


def _source_topics(config: Config) -> dict[str, tuple[str, ...]]:
    return {s.name: s.topics for s in config.sources}


def cmd_retag(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 1
    from crawler.resources import open_store
    from crawler.retag import retag
    from crawler.topics import compile_topics

    since = args.since.isoformat() if args.since else None
    with closing(open_store(config)) as store:
        changed = retag(store, config.data_dir, compile_topics(config.topics), _source_topics(config), since)
    print(f"{changed} item(s) re-tagged")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 1
    from crawler.retag import explain, source_of
    from crawler.topics import compile_topics

    path = args.file if args.file.is_file() else config.data_dir / args.file  # as digests and search print it
    if not path.is_file():
        print(f"{args.file}: no such archive file", file=sys.stderr)
        return 1
    topics = _source_topics(config).get(source_of(path) or "", ())
    print(explain(path, compile_topics(config.topics), topics), end="")
    return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    from crawler.schema import run

    return run(args.file, args.out)


def cmd_demo(args: argparse.Namespace) -> int:
    from crawler.demo import run_demo

    return run_demo(args.out, args.seeds, args.config)


if __name__ == "__main__":
    sys.exit(main())
