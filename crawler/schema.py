"""`crawler config-schema`: JSON Schemas (draft 2020-12) of the three config files, from the pydantic models.

Editors that speak the YAML language server (VS Code's YAML extension, Neovim, Helix, JetBrains) complete
keys and flag mistakes as you type when a file's first line names its schema:

    # yaml-language-server: $schema=schema/sources.schema.json

The models stay the one description of the config: the schemas are generated from them, and the few places
where the YAML is freer than the model's type (durations written "1h30m", a clock time, the short `near:`
form) are described here, so the schema accepts what `crawler check` accepts. `crawler check` has the last
word: cross-file rules (unknown topic names, duplicate source names, composite topic cycles) and the
validators' finer checks (a crontab, a regular expression, a time zone) are not in the schema.
"""

from __future__ import annotations

import json
import sys
from datetime import time, timedelta
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from crawler.config import (
    SETTINGS_FILE,
    SOURCES_FILE,
    TOPICS_FILE,
    Settings,
    SourcesFile,
    TopicsFile,
    format_duration,
)

DIALECT = "https://json-schema.org/draft/2020-12/schema"
FILES: dict[str, type[BaseModel]] = {
    SETTINGS_FILE: Settings,
    SOURCES_FILE: SourcesFile,
    TOPICS_FILE: TopicsFile,
}
TITLES = {
    SETTINGS_FILE: "crawler.yaml: settings of the crawler (every key optional)",
    SOURCES_FILE: "sources.yaml: the sources to monitor",
    TOPICS_FILE: "topics.yaml: keyword rules that flag articles",
}

# crawler.config.parse_duration: "30m", "2h", "1h30m", "45s", "1d" (any case, spaces allowed), or seconds.
DURATION: JsonSchemaValue = {
    "anyOf": [
        {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*[dDhHmMsS]\s*)+$"},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*$"},
        {"type": "number", "exclusiveMinimum": 0},
    ],
    "description": "A duration such as 30m, 2h, 1h30m, 45s or 1d (a plain number is seconds).",
}
# DigestSettings._clock: "07:00"; an unquoted 07:00 is the number 420 in YAML 1.1, which the loader accepts.
CLOCK: JsonSchemaValue = {
    "anyOf": [
        {"type": "string", "pattern": r"^\s*([01]?\d|2[0-3]):[0-5]\d\s*$"},
        {"type": "integer", "minimum": 0, "maximum": 1439},
    ],
    "description": 'A local time "HH:MM" (quote it).',
}

# Descriptions shown by editors on hover, by model and key, for fields whose model says too little.
DESCRIPTIONS: dict[str, dict[str, str]] = {
    "Settings": {
        "data_dir": "Where the archive, the digests and the index live; relative to the config folder "
        "(default: $XDG_DATA_HOME/crawler, i.e. ~/.local/share/crawler).",
        "timezone": "IANA time zone name (default UTC): the filing day and the digest time use it.",
        "adaptive": "Bounds of `every: auto`.",
        "digest": "The daily digest.",
        "fetch": "Downloading: identity, politeness and limits.",
        "http": "The monitoring endpoint (/healthz, /metrics, /sources); off when absent.",
    },
    "AdaptiveSettings": {
        "min": "`every: auto` polls at most this often.",
        "max": "`every: auto` polls at least this often.",
    },
    "FetchSettings": {"user_agent": "The User-Agent header (fetch.contact is added to it)."},
    "Source": {
        "name": "A unique name: lower-case letters, digits, - and _.",
        "url": "The feed, listing page, sitemap or home page (http:// or https://).",
        "kind": "feed (RSS, Atom, RDF, JSON Feed), listing (an HTML page of headlines), sitemap, or auto "
        "(a home page: its feed if it advertises one, else read as a listing).",
        "every": "Poll interval such as 30m, 2h or 1d, or auto to follow how often the source publishes "
        "(default: `every:` of crawler.yaml).",
        "cron": 'A crontab schedule instead of `every:`, such as "0 */3 * * *" '
        "(in crawler.yaml's time zone).",
        "topics": "Topic flags set on every item of this source (names from topics.yaml).",
        "enabled": "false keeps the source listed but not polled.",
    },
    "LinkRule": {
        "css": "A CSS selector for the article links (or their containers).",
        "xpath": "An XPath expression for the article links (or their containers).",
        "allow": "Regular expressions: a link must match one of them (when any are given).",
        "deny": "Regular expressions: a link must match none of them.",
    },
    "TopicDef": {
        "any": "At least one of these terms must occur.",
        "all": "Every one of these terms must occur.",
        "near": "Proximity: these terms occur at most `within:` words apart; or a list of "
        "{terms: [...], within: N} clauses, each of which must hold.",
        "within": "Words allowed between `near:` terms (default 10).",
        "none": "If any of these terms occurs, the topic is not set.",
        "ignore": "Phrases whose words do not count as matches.",
        "all_topics": "Composite: set when all these topics are set.",
        "min_count": "The `any:` terms must occur this often in all (a title match counts twice).",
        "in": "Where the terms are looked for: title, text, or both (default).",
    },
    "NearClause": {
        "terms": "Terms that must all occur close together.",
        "within": "Words allowed between them (default: the topic's `within:`, else 10).",
    },
}


_PLACEHOLDER = "x-crawler-type"


def _link_placeholders(node: Any) -> set[str]:
    """Replace the generator's placeholders with $refs to the shared definitions; returns the names used."""
    used: set[str] = set()
    if isinstance(node, dict):
        name = node.pop(_PLACEHOLDER, None)
        if name is not None:
            node["$ref"] = f"#/$defs/{name}"
            used.add(name)
        for value in node.values():
            used |= _link_placeholders(value)
    elif isinstance(node, list):
        for value in node:
            used |= _link_placeholders(value)
    return used


def _as_written(value: Any) -> Any:
    """A default as one writes it in YAML: "1h", not ISO 8601's "PT1H"; "07:00", not "07:00:00"."""
    if isinstance(value, BaseModel):
        value = {k: getattr(value, k) for k in type(value).model_fields}
    if isinstance(value, dict):
        return {k: _as_written(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_written(v) for v in value]
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return value


class _Generator(GenerateJsonSchema):
    def timedelta_schema(self, schema: core_schema.TimedeltaSchema) -> JsonSchemaValue:
        return {_PLACEHOLDER: "Duration"}  # made a $ref below: pydantic resolves the refs it sees

    def time_schema(self, schema: core_schema.TimeSchema) -> JsonSchemaValue:
        return {_PLACEHOLDER: "Clock"}

    def encode_default(self, dft: Any) -> Any:
        return super().encode_default(_as_written(dft))

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False  # "Min Score" for min_score says nothing the key does not


def config_schema(file: str) -> dict[str, Any]:
    """The JSON Schema of one config file: "crawler.yaml", "sources.yaml" or "topics.yaml"."""
    try:
        model = FILES[file]
    except KeyError:
        raise ValueError(f"no schema for {file!r}: choose one of {', '.join(FILES)}") from None
    schema = model.model_json_schema(mode="validation", schema_generator=_Generator)
    used = _link_placeholders(schema)
    for name, definition in (("Duration", DURATION), ("Clock", CLOCK)):
        if name in used:
            schema.setdefault("$defs", {})[name] = definition
    for name, definition in [(model.__name__, schema), *schema.get("$defs", {}).items()]:
        for key, text in DESCRIPTIONS.get(name, {}).items():
            prop = definition.get("properties", {}).get(key)
            if prop is not None:
                prop["description"] = text
    topic = schema.get("$defs", {}).get("TopicDef")
    if topic is not None:
        # TopicDef._simple_near: `near: [a, b]` is short for one clause.
        near = topic["properties"]["near"]
        near.pop("items", None)
        near.pop("type", None)
        near["anyOf"] = [
            {"type": "array", "items": {"type": "string"}, "minItems": 2},
            {"type": "array", "items": {"$ref": "#/$defs/NearClause"}},
        ]
    source = schema.get("$defs", {}).get("Source")
    if source is not None:
        source["properties"]["url"]["pattern"] = r"^https?://[^/\s]+"
    return {"$schema": DIALECT, "title": TITLES[file], **{k: v for k, v in schema.items() if k != "title"}}


def config_schemas() -> dict[str, dict[str, Any]]:
    """The schemas of the three files, by file name."""
    return {file: config_schema(file) for file in FILES}


def schema_file_name(file: str) -> str:
    """sources.yaml -> sources.schema.json"""
    return Path(file).stem + ".schema.json"


def modeline(file: str, folder: str = "schema") -> str:
    """The first line of a config file that points YAML editors at its schema."""
    return f"# yaml-language-server: $schema={folder}/{schema_file_name(file)}"


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(out: Path, files: list[str] | None = None) -> list[Path]:
    """Write the schema files (all three by default) into `out`, created if missing; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file in files or list(FILES):
        path = out / schema_file_name(file)
        path.write_text(render(config_schema(file)), encoding="utf-8")
        written.append(path)
    return written


def run(file: str | None = None, out: Path | None = None, stream: TextIO | None = None) -> int:
    """`crawler config-schema [FILE] [--out DIR]`: print one schema or all three (by file), or write them."""
    stream = stream if stream is not None else sys.stdout
    if file is not None and file not in FILES:
        print(f"no schema for {file!r}: choose one of {', '.join(FILES)}", file=sys.stderr)
        return 1
    if out is not None:
        for path in write_schemas(out, [file] if file else None):
            print(path, file=stream)
        return 0
    stream.write(render(config_schema(file) if file else config_schemas()))
    return 0
