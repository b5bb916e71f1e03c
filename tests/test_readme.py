"""The README's configuration examples are valid configuration."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT, crawler_cmd


def _block(readme: str, heading: str) -> str:
    section = readme.split(f"### {heading}", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match, heading
    return match.group(1)


def test_readme_config_examples_pass_check(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    for name in ("crawler.yaml", "sources.yaml", "topics.yaml"):
        (tmp_path / name).write_text(_block(readme, f"{name}"), "utf-8")
    result = crawler_cmd("check", "--config", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "OK: 5 source(s) (4 enabled), 5 topic(s)" in result.stdout
