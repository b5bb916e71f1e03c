"""`crawler config-schema`: the JSON Schemas of the config files accept what `crawler check` accepts."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, crawler_cmd

from crawler.config import ConfigError, load_config
from crawler.observe import HttpSettings
from crawler.schema import FILES, config_schema, config_schemas, modeline, run, schema_file_name

jsonschema = pytest.importorskip(
    "jsonschema", reason="jsonschema is a test dependency: pip install -e '.[test]'"
)


def _errors(file: str, data: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(config_schema(file))
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]


def test_schemas_are_valid_draft_2020_12() -> None:
    for file, schema in config_schemas().items():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["title"].startswith(file)
        # Editors run the patterns as ECMAScript regexes: no Python-only syntax such as (?P<name>...).
        assert "(?P<" not in json.dumps(schema)


@pytest.mark.parametrize("file", list(FILES))
def test_schema_accepts_the_shipped_config(file: str) -> None:
    data = yaml.safe_load((ROOT / "config" / file).read_text("utf-8"))
    assert _errors(file, data) == []


def test_schema_accepts_the_readme_examples() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    for file in FILES:
        section = readme.split(f"### {file}", 1)[1]
        block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
        assert _errors(file, yaml.safe_load(block)) == [], file


@pytest.mark.parametrize(
    ("file", "data", "where"),
    [
        (
            "sources.yaml",
            {"sources": [{"name": "rt", "url": "https://rt.com/rss", "evry": "1h"}]},
            "sources.0",
        ),
        ("crawler.yaml", {"timezone": "UTC", "fetch": {"timeot": 20}}, "fetch"),
        ("crawler.yaml", {"data_dri": "../data"}, ""),
        ("topics.yaml", {"topics": {"cuba": {"any": ["Cuba"], "mincount": 2}}}, "topics.cuba"),
    ],
)
def test_schema_rejects_a_misspelt_key(file: str, data: Any, where: str, tmp_path: Path) -> None:
    errors = _errors(file, data)
    assert len(errors) == 1 and errors[0].startswith(f"{where}: Additional properties are not allowed"), (
        errors
    )


@pytest.mark.parametrize(
    ("file", "data"),
    [
        ("sources.yaml", {"sources": [{"name": "RT", "url": "https://rt.com/rss"}]}),
        ("sources.yaml", {"sources": [{"name": "rt", "url": "ftp://rt.com/rss"}]}),
        ("sources.yaml", {"sources": [{"name": "rt", "url": "https://rt.com/rss", "kind": "atom"}]}),
        ("sources.yaml", {"sources": [{"name": "rt", "url": "https://rt.com/rss", "every": "an hour"}]}),
        ("sources.yaml", {"sources": [{"url": "https://rt.com/rss"}]}),
        ("crawler.yaml", {"every": "-5m"}),
        ("crawler.yaml", {"digest": {"at": "7 am"}}),
        ("crawler.yaml", {"fetch": {"per_host": 0}}),
        ("topics.yaml", {"topics": {"cuba": {"any": "Cuba", "in": ["body"]}}}),
    ],
)
def test_schema_and_loader_reject_the_same_mistakes(file: str, data: Any, tmp_path: Path) -> None:
    assert _errors(file, data)
    _write_folder(tmp_path, file, data)
    with pytest.raises(ConfigError):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("file", "data"),
    [
        ("sources.yaml", {"sources": [{"name": "rt", "url": "https://rt.com/rss", "every": "1H30m"}]}),
        ("sources.yaml", {"sources": [{"name": "rt", "url": "https://rt.com/rss", "every": 3600}]}),
        ("sources.yaml", {"sources": [{"name": "rt", "url": "https://rt.com/rss", "every": "auto"}]}),
        ("sources.yaml", {"sources": [{"name": "rt", "url": "https://rt.com/rss", "cron": "0 * * * *"}]}),
        ("crawler.yaml", {"digest": {"at": 420}}),  # an unquoted 07:00 in YAML 1.1
        ("crawler.yaml", {"every": "90", "max_age": 86400.5, "adaptive": {"min": "10m", "max": "2d"}}),
        ("topics.yaml", {"topics": {"a": {"near": ["Cuba", "Korea"], "within": 5}}}),
        ("topics.yaml", {"topics": {"a": {"near": [{"terms": ["Cuba", "Korea"], "within": 5}]}}}),
    ],
)
def test_schema_and_loader_accept_the_same_forms(file: str, data: Any, tmp_path: Path) -> None:
    assert _errors(file, data) == []
    _write_folder(tmp_path, file, data)
    load_config(tmp_path)


def _write_folder(folder: Path, file: str, data: Any) -> None:
    files: dict[str, Any] = {"sources.yaml": {"sources": []}, file: data}
    for name, content in files.items():
        (folder / name).write_text(yaml.safe_dump(content), "utf-8")


def test_http_settings_schema() -> None:
    schema = HttpSettings.model_json_schema()
    assert schema["required"] == ["listen"] and schema["additionalProperties"] is False
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"listen": "127.0.0.1:8787"}) and validator.is_valid({"listen": "[::1]:8787"})
    assert not validator.is_valid({"listen": "8787"}) and not validator.is_valid({"listen": "::1:8787"})
    assert "(?P<" not in json.dumps(schema)


def test_run_prints_or_writes_the_schemas(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run(stream=out) == 0
    assert set(json.loads(out.getvalue())) == set(FILES)
    out = io.StringIO()
    assert run("sources.yaml", stream=out) == 0
    assert json.loads(out.getvalue())["title"].startswith("sources.yaml")
    out = io.StringIO()
    assert run(out=tmp_path / "schema", stream=out) == 0
    written = sorted(p.name for p in (tmp_path / "schema").iterdir())
    assert written == ["crawler.schema.json", "sources.schema.json", "topics.schema.json"]
    assert out.getvalue().count("\n") == 3
    assert run("nope.yaml", stream=io.StringIO()) == 1


SCHEMA_DIR = ROOT / "config" / "schema"


def test_shipped_config_points_editors_at_up_to_date_schemas() -> None:
    if not SCHEMA_DIR.is_dir():
        pytest.skip("config/schema/ not generated yet: crawler config-schema --out config/schema")
    for file in FILES:
        first = (ROOT / "config" / file).read_text("utf-8").splitlines()[0]
        assert first == modeline(file), f"config/{file} should start with: {modeline(file)}"
        shipped = json.loads((SCHEMA_DIR / schema_file_name(file)).read_text("utf-8"))
        assert shipped == config_schema(file), (
            f"config/schema/{schema_file_name(file)} is out of date: "
            "crawler config-schema --out config/schema"
        )


def test_config_schema_command() -> None:
    help_text = crawler_cmd("--help").stdout
    if "config-schema" not in help_text:
        pytest.skip("`crawler config-schema` is not wired into the CLI yet")
    result = crawler_cmd("config-schema")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(json.dumps(config_schemas()))


def test_schema_module_needs_no_service_imports() -> None:
    # The schema is generated from the config models alone: no Scrapy, no reactor.
    code = "import sys, crawler.schema; print('scrapy' in sys.modules, 'twisted.internet' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
