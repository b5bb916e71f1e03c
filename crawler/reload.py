"""Hot reload: what changed between the running config and the one just loaded, and the watch on its folder.

The service applies a valid new config without a restart (see Service.apply). Three settings cannot change
under a running service: the data folder (its lock, index, job store and archive are open), the fetch
settings (Scrapy reads them once, when the spider starts) and the HTTP endpoint (its socket is bound at
start). A new value of any is reported as needing a restart, and the running value is kept until then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from crawler.config import SETTINGS_FILE, SOURCES_FILE, TOPICS_FILE, Config, Source
from crawler.schedule import digest_key, schedule_key

log = logging.getLogger(__name__)

CONFIG_FILES = frozenset({SETTINGS_FILE, SOURCES_FILE, TOPICS_FILE})
# Editors save in bursts (a backup, a temporary file, a rename; several files): a change is applied once
# the files have been quiet for QUIET_MS, or after DEBOUNCE_MS of continuous changes.
QUIET_MS = 300
DEBOUNCE_MS = 2000
# Settings (besides data_dir) that only a restart applies.
RESTART_SETTINGS = ("fetch", "http")
# Source fields whose change the log names; any other difference is reported as "settings".
_SOURCE_FIELDS = ("url", "kind", "every", "cron", "enabled", "topics", "links", "robots", "backfill")


@dataclass
class ConfigChanges:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)  # source -> fields that changed
    rescheduled: list[str] = field(default_factory=list)  # sources whose job must be replaced
    topics: bool = False
    settings: list[str] = field(default_factory=list)  # settings applied at once
    digest: bool = False  # the digest job must be replaced (time or time zone)
    need_restart: list[str] = field(default_factory=list)  # settings kept until a restart

    def __bool__(self) -> bool:
        return bool(
            self.added or self.removed or self.changed or self.topics or self.settings or self.need_restart
        )

    def describe(self) -> str:
        """One line for the log: "added a, b; removed c; changed d (url); topics changed"."""
        parts = []
        if self.added:
            parts.append("added " + ", ".join(self.added))
        if self.removed:
            parts.append("removed " + ", ".join(self.removed))
        if self.changed:
            parts.append(
                "changed " + ", ".join(f"{name} ({', '.join(what)})" for name, what in self.changed.items())
            )
        if self.topics:
            parts.append("topics changed (from the next item filed; `crawler retag` re-flags the archive)")
        if self.settings:
            parts.append("settings changed (" + ", ".join(self.settings) + ")")
        if not parts:
            parts.append("nothing to apply")
        return "; ".join(parts)


def diff_configs(old: Config, new: Config) -> ConfigChanges:
    changes = ConfigChanges()
    before = {s.name: s for s in old.sources}
    after = {s.name: s for s in new.sources}
    changes.added = [n for n in after if n not in before]
    changes.removed = [n for n in before if n not in after]
    for name, src in after.items():
        prev = before.get(name)
        if prev is None:
            continue
        what = _source_fields(prev, src)
        if what:
            changes.changed[name] = what
        if schedule_key(old, prev) != schedule_key(new, src):
            # Also when only a setting it inherits changed (the default `every`, the time zone).
            changes.rescheduled.append(name)
            if not what:
                changes.changed[name] = ["schedule"]
    changes.topics = dict(old.topics) != dict(new.topics)
    changes.digest = digest_key(old) != digest_key(new)
    if old.data_dir != new.data_dir:
        changes.need_restart.append("data_dir")
    for name in type(new.settings).model_fields:
        if name == "data_dir" or getattr(old.settings, name) == getattr(new.settings, name):
            continue
        (changes.need_restart if name in RESTART_SETTINGS else changes.settings).append(name)
    return changes


def _source_fields(old: Source, new: Source) -> list[str]:
    what = [f for f in _SOURCE_FIELDS if getattr(old, f) != getattr(new, f)]
    if not what and old != new:
        what.append("settings")
    return what


def effective_config(old: Config, new: Config) -> Config:
    """The new config, with the settings that need a restart kept at their running values."""
    # The running data folder, absolute (a relative data_dir is relative to the config folder).
    kept = {name: getattr(old.settings, name) for name in RESTART_SETTINGS}
    settings = new.settings.model_copy(update={"data_dir": old.data_dir, **kept})
    return Config(new.config_dir, settings, new.sources, new.topics)


def _is_config_file(_change: object, path: str) -> bool:
    return Path(path).name in CONFIG_FILES


async def watch_config(folder: Path, on_change: Callable[[], Awaitable[object]], stop: asyncio.Event) -> None:
    """Call `on_change` after each burst of edits to the config files, until `stop` is set.

    The folder is watched without recursion: the data folder is often inside it, and the archive's writes
    must not wake the watcher. A change arriving while `on_change` runs is handled after it, once.
    """
    from watchfiles import awatch

    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # it logs every change at INFO
    try:
        async for _changes in awatch(
            folder,
            watch_filter=_is_config_file,
            debounce=DEBOUNCE_MS,
            step=QUIET_MS,
            stop_event=stop,
            recursive=False,
        ):
            await on_change()
    except Exception as exc:  # a folder removed or unreadable: the service goes on, without reloads
        log.error("config watch stopped: %s: changes to %s apply at the next restart", exc, folder)
