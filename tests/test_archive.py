"""The archive: atomic text + sidecar files, per-day sequences, crash clean-up and re-indexing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import CHECK_ARCHIVE, need_shared

from crawler import dedup
from crawler.archive import next_sequence, reconcile, write_item, write_text_atomic
from crawler.resources import recover
from crawler.store import Store

DAY = "2024-03-05"
HEX = "0123456789abcdef"
TEXT = "Пхеньян и Каракас подписали соглашение\n\nFirst paragraph of the body.\n\nSecond paragraph, café."
NAME = re.compile(r"^\d{3}_[0-9a-f]{16}\.(txt|json)$")


def sidecar(url: str = "https://news.example.org/a/1", **extra: Any) -> dict[str, Any]:
    """A sidecar shaped like the one crawler.pipeline writes."""
    base: dict[str, Any] = {
        "url": url,
        "source": "kcna",
        "title": "Пхеньян и Каракас подписали соглашение",
        "published": "2024-03-05T06:00:00+00:00",
        "fetched_at": "2024-03-05T07:00:00+00:00",
        "topics": ["dprk", "latin_america"],
        "evidence": {"dprk": ["Пхеньян"], "latin_america": ["Каракас"]},
        "language": "ru",
        "content_sha256": "ab" * 32,
        "guid": "urn:story:1",
        "feed_url": None,
        "canonical_url": None,
    }
    base.update(extra)
    return base


# -- write_item ---------------------------------------------------------------------------------------------


def test_write_item_names_and_content(tmp_path: Path) -> None:
    side = sidecar()
    filed = write_item(tmp_path, DAY, HEX, TEXT, side)
    folder = tmp_path / "archive" / DAY
    assert filed.text_path == folder / f"001_{HEX}.txt"
    assert filed.sidecar_path == folder / f"001_{HEX}.json"
    assert filed.relative == f"archive/{DAY}/001_{HEX}.txt"
    assert filed.text_path.read_bytes() == TEXT.encode("utf-8")  # exactly the text: no BOM, no newline added
    assert json.loads(filed.sidecar_path.read_text("utf-8")) == side
    assert "Пхеньян" in filed.sidecar_path.read_text("utf-8")  # readable UTF-8, not \\u escapes
    assert sorted(p.name for p in folder.iterdir()) == [f"001_{HEX}.json", f"001_{HEX}.txt"]


def test_sequences_count_per_day(tmp_path: Path) -> None:
    names = [
        write_item(tmp_path, DAY, dedup.url_digest(f"https://e.org/{i}"), TEXT, sidecar(f"https://e.org/{i}"))
        for i in range(3)
    ]
    other_day = write_item(tmp_path, "2024-03-06", HEX, TEXT, sidecar())
    again = write_item(tmp_path, DAY, dedup.url_digest("https://e.org/0"), TEXT, sidecar())
    assert [Path(f.relative).name[:4] for f in names] == ["001_", "002_", "003_"]
    assert [Path(f.relative).name[4:20] for f in names] == [
        dedup.url_digest(f"https://e.org/{i}") for i in range(3)
    ]
    assert other_day.relative == f"archive/2024-03-06/001_{HEX}.txt"
    assert Path(again.relative).name.startswith("004_")
    for path in (tmp_path / "archive").rglob("*"):
        assert path.is_dir() or NAME.match(path.name), path


def test_write_item_leaves_no_temporary_file(tmp_path: Path) -> None:
    for i in range(5):
        write_item(tmp_path, DAY, f"{i:016x}", TEXT, sidecar(f"https://e.org/{i}"))
    files = sorted(p.name for p in (tmp_path / "archive" / DAY).iterdir())
    assert len(files) == 10
    assert not [name for name in files if name.endswith(".tmp")]


def test_next_sequence_reads_the_disk(tmp_path: Path) -> None:
    folder = tmp_path / "day"
    folder.mkdir()
    assert next_sequence(folder) == 1
    (folder / f"001_{HEX}.txt").write_text("x")
    assert next_sequence(folder) == 2
    (folder / f"007_{'f' * 16}.json").write_text("{}")  # a gap: the highest number counts
    assert next_sequence(folder) == 8
    (folder / f"012_{HEX}.txt.tmp").write_text("x")  # a write in progress (or left by a crash) holds 012
    assert next_sequence(folder) == 13
    for junk in ("README", "099_nothex.txt", "100_0123456789ABCDEF.txt", "200_abc.txt", "notes.md"):
        (folder / junk).write_text("x")
    assert next_sequence(folder) == 13
    (folder / f"1000_{HEX}.txt").write_text("x")  # more than 999 items in a day
    assert next_sequence(folder) == 1001


def test_write_item_skips_a_sequence_held_by_a_temporary_file(tmp_path: Path) -> None:
    folder = tmp_path / "archive" / DAY
    folder.mkdir(parents=True)
    (folder / f"001_{'e' * 16}.json.tmp").write_text("{")
    filed = write_item(tmp_path, DAY, HEX, TEXT, sidecar())
    assert filed.relative == f"archive/{DAY}/002_{HEX}.txt"


def test_write_text_atomic_replaces(tmp_path: Path) -> None:
    path = tmp_path / "digests" / "2024-03-05.md"
    write_text_atomic(path, "# one\n")
    write_text_atomic(path, "# two — ü\n")
    assert path.read_bytes() == "# two — ü\n".encode()
    assert [p.name for p in path.parent.iterdir()] == ["2024-03-05.md"]


# -- reconcile ----------------------------------------------------------------------------------------------


def _crash_leftovers(data: Path, day: str = DAY) -> Path:
    """A day folder as a crash can leave it: complete pairs, a text without sidecar, temporary files."""
    write_item(data, day, "1" * 16, TEXT, sidecar("https://e.org/1"))  # 001: complete
    write_item(data, day, "2" * 16, TEXT, sidecar("https://e.org/2"))  # 002: complete
    folder = data / "archive" / day
    (folder / f"003_{'3' * 16}.txt").write_text(TEXT, "utf-8")  # renamed, sidecar never written
    (folder / f"004_{'4' * 16}.txt").write_text(TEXT, "utf-8")  # renamed, sidecar still a temporary file
    (folder / f"004_{'4' * 16}.json.tmp").write_text('{"url": "https://e.', "utf-8")
    (folder / f"005_{'5' * 16}.txt.tmp").write_text("Half a ti", "utf-8")  # crashed while writing the text
    (folder / f"006_{'6' * 16}.json").write_text(json.dumps(sidecar("https://e.org/6")), "utf-8")  # no text
    return folder


def test_reconcile_cleans_up_and_yields_complete_pairs(tmp_path: Path) -> None:
    folder = _crash_leftovers(tmp_path)
    found = list(reconcile(tmp_path))
    assert [path for path, _ in found] == [
        f"archive/{DAY}/001_{'1' * 16}.txt",
        f"archive/{DAY}/002_{'2' * 16}.txt",
    ]
    assert [side["url"] for _, side in found] == ["https://e.org/1", "https://e.org/2"]
    assert found[0][1] == sidecar("https://e.org/1")
    assert sorted(p.name for p in folder.iterdir()) == [
        f"001_{'1' * 16}.json",
        f"001_{'1' * 16}.txt",
        f"002_{'2' * 16}.json",
        f"002_{'2' * 16}.txt",
    ]
    assert (folder / f"001_{'1' * 16}.txt").read_text("utf-8") == TEXT


def test_reconcile_is_repeatable_and_handles_no_archive(tmp_path: Path) -> None:
    assert list(reconcile(tmp_path)) == []
    _crash_leftovers(tmp_path)
    first = list(reconcile(tmp_path))
    assert list(reconcile(tmp_path)) == first


def test_reconcile_looks_at_newest_days_unless_asked_for_all(tmp_path: Path) -> None:
    days = ["2024-03-01", "2024-03-02", "2024-03-03"]
    for day in days:
        _crash_leftovers(tmp_path, day)
    recent = list(reconcile(tmp_path))  # default: the two newest day folders
    assert sorted({Path(p).parent.name for p, _ in recent}) == days[1:]
    assert list((tmp_path / "archive" / days[0]).glob("*.tmp"))  # the oldest day was not touched
    everything = list(reconcile(tmp_path, days=None))
    assert len(everything) == 6
    assert not list((tmp_path / "archive").rglob("*.tmp"))


# -- recover (re-index after a crash) -----------------------------------------------------------------------


def test_recover_reindexes_complete_items_and_is_idempotent(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = Store(data / "index.sqlite3")
    try:
        side = sidecar(
            "https://news.example.org/a/1?utm_source=rss", canonical_url="https://news.example.org/c/1"
        )
        filed = write_item(data, DAY, dedup.url_digest(side["url"]), TEXT, side)
        folder = data / "archive" / DAY
        (folder / f"002_{'2' * 16}.txt.tmp").write_text("half", "utf-8")
        assert not store.has_path(filed.relative)

        assert recover(store, data) == 1
        assert store.has_path(filed.relative)
        assert store.count_items() == 1
        (item,) = store.items_of_day(DAY)
        assert item.path == filed.relative
        assert item.url == side["url"]
        assert item.source == "kcna"
        assert item.title == side["title"]
        assert item.topics == ["dprk", "latin_america"]
        assert item.published == side["published"]
        assert item.snippet == "First paragraph of the body. Second paragraph, café."  # body, not the title
        assert store.known([dedup.url_key("https://news.example.org/a/1")]) == "filed"  # normalised URL key
        assert store.known([dedup.guid_key("kcna", "urn:story:1")]) == "filed"
        assert store.known([dedup.url_key("https://news.example.org/c/1")]) == "filed"
        assert store.item_with_content("ab" * 32) is not None
        assert not list(folder.glob("*.tmp"))

        assert recover(store, data) == 0  # idempotent
        assert store.count_items() == 1
    finally:
        store.close()


def test_recover_skips_items_already_indexed(tmp_path: Path) -> None:
    from crawler.filing import index_row

    data = tmp_path / "data"
    store = Store(data / "index.sqlite3")
    try:
        first = write_item(data, DAY, "1" * 16, TEXT, sidecar("https://e.org/1"))
        store.add_item(index_row(first.relative, DAY, sidecar("https://e.org/1"), "body"), ["url:x"])
        second = write_item(data, DAY, "2" * 16, TEXT, sidecar("https://e.org/2", guid=None))
        assert recover(store, data) == 1
        assert sorted(store.iter_paths()) == [first.relative, second.relative]
        assert store.known([dedup.url_key("https://e.org/2")]) == "filed"
    finally:
        store.close()


# -- the format checker -------------------------------------------------------------------------------------


def run_checker(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK_ARCHIVE), str(folder)], capture_output=True, text=True, timeout=60
    )


def test_written_files_pass_check_archive(tmp_path: Path) -> None:
    need_shared()
    texts = [
        TEXT,
        "Kim Jong Un meets Nicolás Maduro\n\nA single paragraph.",
        "Título con acentos: Bogotá\n\nPárrafo uno.\n\nPárrafo dos — con raya.\n\n“Citas” y ‘comillas’.",
    ]
    for i, text in enumerate(texts):
        write_item(tmp_path, DAY, dedup.url_digest(f"https://e.org/{i}"), text, sidecar(f"https://e.org/{i}"))
    result = run_checker(tmp_path / "archive")
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1] == "3 files, 0 failed"


def test_check_archive_catches_a_bad_file(tmp_path: Path) -> None:
    # The checker run above must be able to fail: a text with a trailing newline is refused.
    need_shared()
    write_item(tmp_path, DAY, HEX, TEXT + "\n", sidecar())
    result = run_checker(tmp_path / "archive")
    assert result.returncode == 1
    assert "ends with a newline" in result.stdout


@pytest.mark.parametrize("day", ["2024-12-31", "2025-01-01"])
def test_relative_path_is_under_archive_day(tmp_path: Path, day: str) -> None:
    filed = write_item(tmp_path, day, HEX, TEXT, sidecar())
    assert (tmp_path / filed.relative) == filed.text_path
    assert Path(filed.relative).parts == ("archive", day, f"001_{HEX}.txt")
