"""Configuration: the three YAML files of the config folder, validated into frozen settings.

Every problem is reported as ``FILE:LINE: field: message`` so a typo in a file the user edits by hand points
at the line to fix. Unknown keys are errors for the same reason. All defaults live in the models below, once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from apscheduler.triggers.cron import CronTrigger
from cssselect import GenericTranslator, SelectorError
from lxml import etree
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from crawler import __version__
from crawler.observe import HttpSettings
from crawler.topics import TopicDef, check_topic_refs

CONFIG_ENV = "CRAWLER_CONFIG"
SETTINGS_FILE = "crawler.yaml"
SOURCES_FILE = "sources.yaml"
TOPICS_FILE = "topics.yaml"

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(value: Any) -> timedelta:
    """Read '30m', '2h', '1h30m', '45s', '1d' (or a number of seconds) as a positive duration."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float | str) and re.fullmatch(r"\s*-?\d+(?:\.\d+)?\s*", str(value)):
        seconds = float(value)  # a plain number is seconds (a bool is not a number here: str(True))
    elif isinstance(value, str) and value.strip():
        text = value.strip().lower().replace(" ", "")
        parts = _DURATION.findall(text)
        if "".join(n + u for n, u in parts) != text:
            raise ValueError(f"invalid duration {value!r}: write it like 30m, 2h, 1h30m, 45s or 1d")
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    else:
        raise ValueError(f"invalid duration {value!r}: write it like 30m, 2h, 1h30m, 45s or 1d")
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    out = ""
    for unit in ("d", "h", "m", "s"):
        count, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        if count:
            out += f"{count}{unit}"
    return out or "0s"


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    # Unknown keys are errors: a misspelt key would otherwise be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DigestSettings(_Strict):
    at: time = Field(
        default=time(7, 0), description='Local time of the daily digest, "HH:MM" (or "HH:MM:SS").'
    )
    stale_after: Duration = Field(
        default=timedelta(days=7), description="A source with no new item for this long is listed as quiet."
    )
    topics: tuple[str, ...] | None = Field(default=None, description="Topics shown (default: all).")
    min_score: float = Field(default=0.0, ge=0, description="Items scoring less on a topic are left out.")
    max_per_topic: int | None = Field(default=None, ge=1, description="At most this many items per topic.")
    template: Path | None = Field(
        default=None, description="A Jinja2 template for the HTML digest (relative to the config folder)."
    )
    feed_size: int = Field(default=30, ge=1, description="Digests listed in the digests' Atom feed.")

    @field_validator("at", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 07:00 as the sexagesimal number 420; anything else is a mistake.
            if 0 <= value < 24 * 60:
                return time(value // 60, value % 60)
            raise ValueError(f'expected a time like "07:00" (quote it), got {value!r}')
        if isinstance(value, str) and not re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value.strip()):
            raise ValueError(f'expected a time like "07:00", got {value!r}')
        return value


class FetchSettings(_Strict):
    user_agent: str = Field(default=f"crawler/{__version__} (news monitor)", min_length=1)
    contact: str | None = Field(
        default=None,
        description="A URL (or mailto:) where site owners can reach you; added to the User-Agent.",
    )
    allow_private_networks: bool = Field(
        default=False,
        description="Allow requests to loopback, private, link-local, CGNAT and multicast addresses.",
    )
    timeout: float = Field(default=20.0, gt=0, description="Seconds before a request is given up.")
    max_bytes: int = Field(default=15 * 1024 * 1024, gt=0, description="Largest response body accepted.")
    per_host: int = Field(default=2, ge=1, description="Concurrent requests to one host.")
    delay: float = Field(default=1.0, ge=0, description="Seconds between requests to one host.")

    @property
    def full_user_agent(self) -> str:
        return f"{self.user_agent} (+{self.contact})" if self.contact else self.user_agent


class AdaptiveSettings(_Strict):
    """Bounds of `every: auto`, which polls a source as often as it publishes."""

    min: Duration = timedelta(minutes=15)
    max: Duration = timedelta(hours=24)

    @model_validator(mode="after")
    def _ordered(self) -> AdaptiveSettings:
        if self.min > self.max:
            raise ValueError("`min` must not exceed `max`")
        return self


# The index engines: SQLite (embedded, the default) and PostgreSQL (shared by several machines).
DATABASE_DIALECTS = ("sqlite", "postgresql")
# The schemes the Redis client accepts for the work queue.
QUEUE_SCHEMES = ("redis", "rediss", "unix")


class Settings(_Strict):
    data_dir: Path | None = Field(default=None, description="Relative to the config folder.")
    database: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the index, e.g. postgresql+psycopg://user@host:5432/crawler "
        "(default: the SQLite file index.sqlite3 in the data folder).",
    )
    queue: str | None = Field(
        default=None,
        description="Redis URL of the work queue shared by scheduler and workers, e.g. redis://host:6379/0 "
        "(default: none, everything runs in one process).",
    )
    worker_polls: int = Field(
        default=16,
        ge=1,
        description="Sources one `crawler run --role worker` polls at once. Only used with queue.",
    )
    queue_claim_after: Duration = Field(
        default=timedelta(seconds=60),
        description="A poll request a worker took and did not finish within this long is given to another "
        "worker (the first one is presumed dead). Only used with queue.",
    )
    timezone: str = "UTC"
    every: Duration = Field(default=timedelta(hours=1), description="Default poll interval of a source.")
    max_age: Duration = Field(
        default=timedelta(days=30),
        description="Items published longer ago are not filed when first seen (unless a source backfills).",
    )
    adaptive: AdaptiveSettings = AdaptiveSettings()
    min_chars: int = Field(
        default=200, ge=0, description="Pages with less body text than this are not articles."
    )
    digest: DigestSettings = DigestSettings()
    fetch: FetchSettings = FetchSettings()
    http: HttpSettings | None = Field(default=None, description="The monitoring endpoint; off unless set.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Europe/Madrid") from None
        return value

    @field_validator("database")
    @classmethod
    def _database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # Parsed here so a typo is reported by `crawler check` at its line, not when the index is opened.
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                f"not a database URL: {value!r}: use e.g. postgresql+psycopg://user@host:5432/crawler"
            ) from None
        if url.get_backend_name() not in DATABASE_DIALECTS:
            raise ValueError(
                f"unsupported database {url.get_backend_name()!r}: use postgresql://... or sqlite:///..."
            )
        return value

    @field_validator("queue")
    @classmethod
    def _queue(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # Checked here, without the Redis client, so `crawler check` reports a typo at its line.
        url = urlsplit(value.strip())
        if url.scheme not in QUEUE_SCHEMES:
            raise ValueError(
                f"not a Redis URL: {value!r}: use redis://host:6379/0 (or rediss:// for TLS, unix:///path)"
            )
        if url.scheme == "unix" and not url.path:
            raise ValueError(f"not a Redis URL: {value!r}: a unix:// URL needs the socket's path")
        if url.scheme != "unix":
            try:
                url.port  # noqa: B018  (parsing the port is the check)
            except ValueError:
                raise ValueError(f"not a Redis URL: {value!r}: the port must be a number") from None
            if not url.hostname:
                raise ValueError(f"not a Redis URL: {value!r}: it needs a host, e.g. redis://host:6379/0")
            if url.path.strip("/") and not url.path.strip("/").isdigit():
                raise ValueError(f"not a Redis URL: {value!r}: the path is the database number, e.g. /0")
        return value.strip()


class LinkRule(_Strict):
    """Which links of a listing page are articles: a CSS or XPath selector, then URL regexes."""

    css: str | None = None
    xpath: str | None = None
    allow: tuple[str, ...] = ()  # a link must match one of these (when any are given)
    deny: tuple[str, ...] = ()  # and none of these

    @field_validator("css")
    @classmethod
    def _css(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                GenericTranslator().css_to_xpath(value)
            except SelectorError as exc:
                raise ValueError(f"invalid CSS selector {value!r}: {exc}") from None
        return value

    @field_validator("xpath")
    @classmethod
    def _xpath(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                etree.XPath(value)
            except etree.XPathSyntaxError as exc:
                raise ValueError(f"invalid XPath {value!r}: {exc}") from None
        return value

    @field_validator("allow", "deny")
    @classmethod
    def _regexes(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return values

    @model_validator(mode="after")
    def _one_selector(self) -> LinkRule:
        if self.css is not None and self.xpath is not None:
            raise ValueError("give either `css:` or `xpath:`, not both")
        return self


class Source(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    url: str
    kind: Literal["feed", "listing", "sitemap", "auto"] = "feed"
    links: LinkRule | None = Field(default=None, description="Listing sources: which links are articles.")
    every: Duration | Literal["auto"] | None = None
    cron: str | None = None
    topics: tuple[str, ...] = ()
    robots: bool = Field(default=True, description="Obey robots.txt for listing, sitemap and article pages.")
    backfill: bool = Field(default=False, description="File items older than max_age too (back catalogue).")
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value

    @field_validator("cron")
    @classmethod
    def _crontab(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                CronTrigger.from_crontab(value)
            except ValueError as exc:
                raise ValueError(f"invalid crontab {value!r}: {exc}") from None
        return value

    @field_validator("every", mode="before")
    @classmethod
    def _every(cls, value: Any) -> Any:
        return value if value == "auto" else parse_duration(value) if value is not None else None

    @model_validator(mode="after")
    def _one_schedule(self) -> Source:
        if self.every is not None and self.cron is not None:
            raise ValueError("give either `every:` or `cron:`, not both")
        if self.links is not None and self.kind not in ("listing", "auto"):
            raise ValueError("`links:` applies to `kind: listing` (or `auto`) sources only")
        return self


class SourcesFile(_Strict):
    sources: list[Source] = []


class TopicsFile(_Strict):
    topics: dict[str, TopicDef] = {}


@dataclass(frozen=True)
class Config:
    """Everything the service needs, validated."""

    config_dir: Path
    settings: Settings
    sources: tuple[Source, ...]
    topics: Mapping[str, TopicDef] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        if self.settings.data_dir is None:
            base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
            return Path(base) / "crawler"
        return (self.config_dir / self.settings.data_dir).resolve()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    def interval(self, source: Source) -> timedelta:
        """The configured interval; `every: auto` starts from the default and adapts (see crawler.health)."""
        return source.every if isinstance(source.every, timedelta) else self.settings.every

    def source(self, name: str) -> Source:
        for src in self.sources:
            if src.name == name:
                return src
        raise KeyError(name)


class ConfigError(Exception):
    """The config is invalid; ``problems`` holds one ``FILE:LINE: field: message`` line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def default_config_dir() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or "config")


def load_config(config_dir: Path | str | None = None) -> Config:
    """Load and validate the config folder, or raise ConfigError listing every problem found."""
    folder = Path(config_dir) if config_dir is not None else default_config_dir()
    problems: list[str] = []
    if not folder.is_dir():
        raise ConfigError([f"{folder}:0: config: no such folder"])
    settings = _load(folder / SETTINGS_FILE, Settings, problems, required=False)
    sources_file = _load(folder / SOURCES_FILE, SourcesFile, problems, required=True)
    topics_file = _load(folder / TOPICS_FILE, TopicsFile, problems, required=False)
    if sources_file is not None and topics_file is not None:
        problems += _cross_checks(folder, sources_file, topics_file)
    if problems or settings is None or sources_file is None or topics_file is None:
        raise ConfigError(problems)
    return Config(folder.resolve(), settings, tuple(sources_file.sources), dict(topics_file.topics))


def _load(path: Path, model: type[_Strict], problems: list[str], required: bool) -> Any:
    if not path.exists():
        if required:
            problems.append(f"{path}:0: file: missing (see the README for an example)")
            return None
        return model()
    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text)
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}:0: file: cannot read: {exc}")
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problems.append(f"{path}:{line}: yaml: {getattr(exc, 'problem', None) or exc}")
        return None
    if root is None:
        return model()
    problems += [f"{path}:{line}: {key}: duplicate key" for line, key in _duplicate_keys(root, "")]
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        problems.append(f"{path}:{root.start_mark.line + 1}: file: expected a mapping at the top level")
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = _line_of(root, loc)
            problems.append(f"{path}:{line}: {_field_name(data, loc)}: {_message(err)}")
        return None


def _message(err: Mapping[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key (misspelt?)"
    msg = str(err["msg"])
    # pydantic prefixes errors raised by our validators with "Value error, "; the reader wants the reason.
    return msg.removeprefix("Value error, ")


def _field_name(data: Any, loc: tuple[Any, ...]) -> str:
    """A readable field path; list items are named by their `name:` when they have one."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            name = node[part].get("name") if isinstance(node, list) and isinstance(node[part], dict) else None
            out += f"[{name}]" if name else f"[{part}]"
        elif isinstance(part, str) and part.startswith(("function-", "tagged-union")):
            continue  # pydantic's internal validator names, not keys the user wrote
        else:
            out += f".{part}" if out else str(part)
        node = _child(node, part)
    return out or "file"


def _child(node: Any, part: Any) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def _line_of(node: yaml.Node, loc: Iterable[Any]) -> int:
    """The line of the deepest YAML node the error location reaches (1-based)."""
    line = node.start_mark.line + 1
    for part in loc:
        nxt: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    nxt = value
                    # A nested block is best shown at its key; a scalar or list item at itself.
                    line = (key if isinstance(value, yaml.MappingNode) else value).start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
            line = nxt.start_mark.line + 1
        if nxt is None:
            break
        node = nxt
    return line


def _duplicate_keys(node: yaml.Node, where: str) -> Iterable[tuple[int, str]]:
    # PyYAML keeps the last of two equal keys without a word; in a hand-edited file that hides a mistake.
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = f"{where}.{key.value}" if where else str(key.value)
            if key.value in seen:
                yield key.start_mark.line + 1, name
            seen.add(key.value)
            yield from _duplicate_keys(value, name)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            label = _item_name(item) or str(i)
            yield from _duplicate_keys(item, f"{where}[{label}]")


def _item_name(node: yaml.Node) -> str | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "name" and isinstance(value, yaml.ScalarNode):
                return str(value.value)
    return None


def _cross_checks(folder: Path, sources: SourcesFile, topics: TopicsFile) -> list[str]:
    """Checks that span files: unique source names, topics named by sources exist, composites resolve."""
    problems: list[str] = []
    src_path, top_path = folder / SOURCES_FILE, folder / TOPICS_FILE
    src_root = _compose(src_path)
    top_root = _compose(top_path)
    seen: set[str] = set()
    for i, src in enumerate(sources.sources):
        if src.name in seen:
            line = _line_of(src_root, ("sources", i, "name")) if src_root else 0
            problems.append(f"{src_path}:{line}: sources[{src.name}].name: duplicate source name")
        seen.add(src.name)
        for j, topic in enumerate(src.topics):
            if topic not in topics.topics:
                line = _line_of(src_root, ("sources", i, "topics", j)) if src_root else 0
                problems.append(
                    f"{src_path}:{line}: sources[{src.name}].topics: unknown topic {topic!r}"
                    f" (not defined in {TOPICS_FILE})"
                )
    for name, message in check_topic_refs(topics.topics):
        line = _line_of(top_root, ("topics", name, "all_topics")) if top_root else 0
        field_name, _, text = message.partition(": ")
        problems.append(f"{top_path}:{line}: topics.{name}.{field_name}: {text}")
    return problems


def _compose(path: Path) -> yaml.Node | None:
    try:
        return yaml.compose(path.read_text(encoding="utf-8")) if path.exists() else None
    except (OSError, yaml.YAMLError):
        return None
