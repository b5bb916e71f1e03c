"""`crawler demo`: the offline demo round-trips every seed story through the real crawler."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import CHECK_ARCHIVE, ROOT, crawler_cmd, need_shared

from crawler.demo_site import read_seeds


def test_demo_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = crawler_cmd("demo", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"archive: {out / 'archive'}" in result.stdout
    digest = next((out / "digests").glob("*.md"))
    assert f"digest:  {digest}" in result.stdout

    stories = {s.slug: s for s in read_seeds(ROOT / "seeds")}
    files = sorted((out / "archive").rglob("*.txt"))
    assert len(files) == len(stories) == 5
    for txt in files:
        side = json.loads(txt.with_suffix(".json").read_text("utf-8"))
        story = stories[Path(side["url"]).stem]
        title, _blank, *rest = txt.read_text("utf-8").split("\n")
        paragraphs = [p for p in rest if p]
        assert title == story.title
        # Exactly the paragraphs the generator put into the page, in order...
        assert paragraphs == list(story.paragraphs), story.slug
        # ...and none of the page furniture around them.
        text = txt.read_text("utf-8")
        for furniture in story.furniture:
            if furniture not in story.paragraphs and furniture != story.title:
                assert furniture not in text, (story.slug, furniture)
        for chrome in ("We use cookies", "Manage choices", "Facebook", "Subscribe to our newsletter"):
            assert chrome not in text
    digest_text = digest.read_text("utf-8")
    assert digest_text.count("### [") >= 5
    assert "## dprk_latam" in digest_text

    need_shared()
    check = subprocess.run(
        [sys.executable, str(CHECK_ARCHIVE), str(out / "archive")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout
    assert check.stdout.strip().endswith("5 files, 0 failed")


def test_demo_refuses_to_overwrite_crawler_data_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "precious.txt").write_text("keep me")
    result = crawler_cmd("demo", "--out", str(tmp_path))
    assert result.returncode != 0
    assert "holds crawler data the demo did not write" in result.stderr
    assert (tmp_path / "archive" / "precious.txt").read_text() == "keep me"


def test_demo_runs_in_a_folder_with_other_files_and_leaves_them(tmp_path: Path) -> None:
    (tmp_path / ".demo.log").write_text("a log kept beside the output")
    result = crawler_cmd("demo", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "archive").rglob("*.txt"))) == 5
    assert (tmp_path / ".demo.log").read_text() == "a log kept beside the output"
    # A second run rewrites its own output from nothing.
    assert crawler_cmd("demo", "--out", str(tmp_path)).returncode == 0
    assert len(list((tmp_path / "archive").rglob("*.txt"))) == 5
