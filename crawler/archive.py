"""The archive: one text file and one JSON sidecar per item, written so a crash never leaves half a file.

Layout: DATA/archive/YYYY-MM-DD/NNN_<16 hex>.txt and .json, where the day is the filing day in the
configured time zone, NNN the filing sequence of that day and the hex the start of SHA-256 of the normalised
URL. Each file is written to a temporary name in the same folder, flushed to disk and renamed; the text file
is renamed first and the sidecar last, so a sidecar marks a complete item. Whatever a crash leaves behind (a
temporary file, a text without its sidecar) is removed by ``reconcile`` at the next start, and complete items
missing from the index are added back to it.

NNN comes from the folder (one writer: the embedded mode) or, when several processes share the archive and a
PostgreSQL index, from the index (write_item's `allocate`, see store.Store.next_sequence).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^(\d{3,})_([0-9a-f]{16})\.(txt|json)$")
TMP_SUFFIX = ".tmp"


@dataclass(frozen=True, slots=True)
class Filed:
    text_path: Path
    sidecar_path: Path
    relative: str  # the text file's path relative to the data folder, as the index and digest show it


def archive_dir(data_dir: Path) -> Path:
    return data_dir / "archive"


def day_folder(data_dir: Path, day: str) -> Path:
    return archive_dir(data_dir) / day


def write_item(
    data_dir: Path,
    day: str,
    digest16: str,
    text: str,
    sidecar: dict[str, Any],
    allocate: Callable[[Path], int] | None = None,
) -> Filed:
    """Write one item under the day's folder with the next free sequence number.

    Without `allocate` the number is the folder's next (single writer only); filers sharing the archive pass
    one that allocates it in the shared index (given the day's folder, to seed a new day from its files).
    """
    folder = day_folder(data_dir, day)
    folder.mkdir(parents=True, exist_ok=True)
    if allocate is not None:
        sequence = allocate(folder)
        stem = f"{sequence:03d}_{digest16}"
        text_path, side_path = folder / f"{stem}.txt", folder / f"{stem}.json"
        _write_pair(folder, text_path, side_path, text, sidecar)
        return Filed(text_path, side_path, str(text_path.relative_to(data_dir)))
    sequence = next_sequence(folder)
    stem = f"{sequence:03d}_{digest16}"
    text_path, side_path = folder / f"{stem}.txt", folder / f"{stem}.json"
    _write_pair(folder, text_path, side_path, text, sidecar)
    _LAST[folder] = (sequence, os.stat(folder).st_mtime_ns)
    return Filed(text_path, side_path, str(text_path.relative_to(data_dir)))


def _write_pair(folder: Path, text_path: Path, side_path: Path, text: str, sidecar: dict[str, Any]) -> None:
    side = json.dumps(sidecar, ensure_ascii=False, indent=2, sort_keys=False) + "\n"
    _write_atomic(text_path, text.encode("utf-8"))
    _write_atomic(side_path, side.encode("utf-8"))  # last: a sidecar marks a complete item
    _fsync_dir(folder)


def highest_sequence(folder: Path) -> int:
    """The highest sequence among the folder's files (0 when none): where a new day's counter starts."""
    highest = 0
    for name in os.listdir(folder):
        match = _NAME.match(name.removesuffix(TMP_SUFFIX))
        if match:
            highest = max(highest, int(match.group(1)))
    return highest


# The last sequence this process wrote per day folder, with the folder's modification time just after. Listing
# the folder for every item would make filing slower as a busy day fills up (thousands of files); the listing
# is done again whenever anything else changed the folder since (its mtime moved).
_LAST: dict[Path, tuple[int, int]] = {}


def next_sequence(folder: Path) -> int:
    """One more than the highest sequence in the folder (files on disk are the truth, not the index)."""
    last = _LAST.get(folder)
    if last is not None:
        try:
            if os.stat(folder).st_mtime_ns == last[1]:
                return last[0] + 1
        except OSError:
            pass
    return highest_sequence(folder) + 1


def write_text_atomic(path: Path, content: str) -> None:
    """Replace a file (a digest, say) so readers see the old or the new content, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, content.encode("utf-8"))
    _fsync_dir(path.parent)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + TMP_SUFFIX)
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _in_window(path: Path, settled: float | None, since: float | None) -> bool:
    try:
        modified = path.stat().st_mtime
    except FileNotFoundError:  # renamed or removed meanwhile by its writer
        return False
    return (settled is None or modified <= settled) and (since is None or modified >= since)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def reconcile(
    data_dir: Path, days: int | None = 2, settled: float | None = None, since: float | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Clean up after a crash and yield (relative path, sidecar) of every complete item on disk.

    Only the newest ``days`` day folders are looked at by default: a crash can only have touched the days
    the service was filing into. ``days=None`` walks the whole archive (a full re-index).

    When other processes file into the same folder (a shared archive), a file one of them is writing right
    now looks exactly like a crash's leftover: ``settled`` (a time.time()) leaves alone every file modified
    after it, and ``since`` skips files modified before it (an earlier pass looked at them already).
    """
    root = archive_dir(data_dir)
    if not root.is_dir():
        return
    folders = sorted((p for p in root.iterdir() if p.is_dir()), reverse=True)
    for folder in folders if days is None else folders[:days]:
        for path in sorted(folder.iterdir()):
            if (settled is not None or since is not None) and not _in_window(path, settled, since):
                continue
            if path.name.endswith(TMP_SUFFIX):
                path.unlink(missing_ok=True)  # a write that never completed
                continue
            match = _NAME.match(path.name)
            if not match:
                continue
            text, side = path.with_suffix(".txt"), path.with_suffix(".json")
            if match.group(3) == "txt" and not side.exists():
                path.unlink(missing_ok=True)  # text renamed, sidecar never was: the item was not filed
            elif match.group(3) == "json" and text.exists():
                try:
                    yield str(text.relative_to(data_dir)), json.loads(side.read_text("utf-8"))
                except ValueError:
                    continue
            elif match.group(3) == "json":
                path.unlink(missing_ok=True)
