"""Log output: readable lines by default, JSON lines with `--log-format json`; every line about a source
names it.

Convention: a message about a source starts with its name, ``log.warning("%s: poll failed: %s", name, why)``.
The SourceFilter reads that prefix into ``record.source``; ``extra={"source": name}`` says it explicitly (a
readable line then gets the prefix added). A JSON line is one object: time (UTC, ISO 8601), level, logger,
message, and source when the line is about one (exc holds the traceback of an exception).
"""

from __future__ import annotations

import copy
import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

FORMATS = ("text", "json")
# The libraries are chatty at INFO; their warnings still show (all of it with --verbose).
QUIET_LOGGERS = (
    "scrapy",
    "twisted",
    "apscheduler",
    "trafilatura",
    "htmldate",
    "courlan",
    "charset_normalizer",
)

# A source name as config.Source allows it, followed by ": ".
_PREFIX = re.compile(r"([a-z0-9][a-z0-9_-]{0,63}): ")


class SourceFilter(logging.Filter):
    """Sets ``record.source`` on every record: the source the line is about, or None.

    With the configured names known (`set_names`), only those count as a prefix, so "stopping: ..." is not
    taken for a source called "stopping"; before the config is read, any name-shaped prefix counts.
    """

    def __init__(self, names: Iterable[str] | None = None):
        super().__init__()
        self.names: frozenset[str] | None = None if names is None else frozenset(names)

    def set_names(self, names: Iterable[str] | None) -> None:
        self.names = None if names is None else frozenset(names)

    def source_of(self, message: str) -> str | None:
        match = _PREFIX.match(message)
        if match is None:
            return None
        name = match.group(1)
        return name if self.names is None or name in self.names else None

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "source", None):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it when formatting; not our business
            message = str(record.msg)
        record.source = self.source_of(message)
        return True


class TextFormatter(logging.Formatter):
    """The readable format; a line given its source by `extra=` alone gets the "<source>: " prefix."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        source = getattr(record, "source", None)
        if source and not record.message.startswith(f"{source}: "):
            record = copy.copy(record)
            record.message = f"{source}: {record.message}"
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line (a multi-line message or traceback stays on its line, escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        source = getattr(record, "source", None)
        if source:
            data["source"] = source
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, default=str)


# The filter of the handler setup_logging installs; the service tells it the source names.
SOURCES = SourceFilter()
_installed: logging.Handler | None = None


def set_source_names(names: Iterable[str] | None) -> None:
    """Tell the log filter the configured source names (after loading the config, and after a reload)."""
    SOURCES.set_names(names)


def setup_logging(
    format: str = "text", verbose: bool = False, stream: TextIO | None = None
) -> logging.Handler:
    """Send log records to `stream` (stderr): text, or JSON lines with format="json".

    Text on a terminal goes through rich (colours, and it shares the console with `crawler poll`'s progress
    bar); elsewhere it is plain timestamped lines. Calling it again replaces the handler it installed and
    leaves any other handler alone. Returns the handler.
    """
    global _installed
    if format not in FORMATS:
        raise ValueError(f"unknown log format {format!r}: use one of {', '.join(FORMATS)}")
    out = stream if stream is not None else sys.stderr
    handler: logging.Handler
    if format == "json":
        handler = logging.StreamHandler(out)
        handler.setFormatter(JsonFormatter())
    elif out is sys.stderr and _isatty(out):
        from rich.logging import RichHandler

        from crawler.report import STDERR

        handler = RichHandler(console=STDERR, show_path=False, markup=False)
        handler.setFormatter(TextFormatter("%(name)s: %(message)s", datefmt="%H:%M:%S"))
    else:
        handler = logging.StreamHandler(out)
        handler.setFormatter(
            TextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%Y-%m-%d %H:%M:%S")
        )
    handler.addFilter(SOURCES)
    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    _installed = handler
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
    # Python warnings become log records, so a JSON log stays one object per line.
    logging.captureWarnings(True)
    return handler


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
