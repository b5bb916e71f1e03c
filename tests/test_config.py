"""The config stage: YAML -> validated settings; `crawler check` reports FILE:LINE: field: message.

The CLI tests run the real command in a subprocess (conftest.crawler_cmd). Each broken config changes one line
of a small valid config, so the expected line number is known exactly.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path

import pytest
from conftest import ROOT, crawler_cmd

from crawler.config import ConfigError, load_config, parse_duration

SETTINGS = """\
data_dir: data
timezone: UTC
every: 1h
digest:
  at: "07:00"
fetch:
  timeout: 5
  delay: 0
"""

SOURCES = """\
sources:
  - name: alpha
    url: https://news.example.org/feed
    every: 30m
    topics: [dprk]
  - name: beta
    url: https://other.example.org/rss
    cron: "0 */3 * * *"
"""

TOPICS = """\
topics:
  dprk:
    any: [North Korea, DPRK]
  latin_america:
    any: [Venezuela, Cuba]
  dprk_latam:
    all_topics: [dprk, latin_america]
"""

FILES = {"crawler.yaml": SETTINGS, "sources.yaml": SOURCES, "topics.yaml": TOPICS}
PROBLEM = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<field>[^:]+): (?P<message>.+)$")
NO_ENV = {"CRAWLER_CONFIG": ""}  # an empty value means "not set": keep the caller's environment out


def make_config(folder: Path, edits: dict[str, list[tuple[str, str]]] | None = None) -> Path:
    """Write the valid config above into folder, with (old, new) text replacements applied per file."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        for old, new in (edits or {}).get(name, []):
            assert old in text, f"test bug: {old!r} not in {name}"
            text = text.replace(old, new, 1)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def problems_of(stderr: str) -> list[re.Match[str]]:
    lines = stderr.splitlines()
    matches = [PROBLEM.match(line) for line in lines]
    assert all(matches), f"not every line is FILE:LINE: field: message:\n{stderr}"
    return [m for m in matches if m]


# -- load_config --------------------------------------------------------------------------------------------


def test_shipped_config_loads() -> None:
    config = load_config(ROOT / "config")
    names = [s.name for s in config.sources]
    assert names, "the shipped config lists no sources"
    assert len(names) == len(set(names))
    for topic in ("dprk", "latin_america", "russia", "us_hegemony", "south_south", "sanctions", "military"):
        assert topic in config.topics, topic
    assert sorted(config.topics["dprk_latam"].all_topics) == ["dprk", "latin_america"]
    assert all(s.url.startswith(("http://", "https://")) for s in config.sources)
    assert all(set(s.topics) <= set(config.topics) for s in config.sources)
    assert config.settings.digest.at == time(7, 0)
    assert config.config_dir == (ROOT / "config").resolve()


def test_small_config_values(tmp_path: Path) -> None:
    config = load_config(make_config(tmp_path / "cfg"))
    assert [s.name for s in config.sources] == ["alpha", "beta"]
    alpha, beta = config.sources
    assert alpha.every == timedelta(minutes=30) and alpha.cron is None
    assert beta.cron == "0 */3 * * *" and beta.every is None
    assert config.interval(alpha) == timedelta(minutes=30)
    assert config.interval(beta) == timedelta(hours=1)  # the default from crawler.yaml
    assert alpha.topics == ("dprk",) and beta.topics == ()
    assert alpha.enabled and alpha.kind == "feed"
    assert config.settings.fetch.timeout == 5 and config.settings.fetch.delay == 0
    assert list(config.topics) == ["dprk", "latin_america", "dprk_latam"]
    assert config.source("beta") is beta


def test_defaults_when_settings_file_is_absent(tmp_path: Path) -> None:
    folder = make_config(tmp_path / "cfg")
    (folder / "crawler.yaml").unlink()
    config = load_config(folder)
    assert config.settings.timezone == "UTC"
    assert config.settings.every == timedelta(hours=1)
    assert config.settings.digest.at == time(7, 0)
    assert config.settings.fetch.timeout == 20.0
    assert config.settings.fetch.max_bytes == 15 * 1024 * 1024
    assert config.settings.fetch.per_host == 2


def test_relative_data_dir_resolves_against_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_config(tmp_path / "cfg", {"crawler.yaml": [("data_dir: data", "data_dir: ../store/here")]})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # A relative config folder, read from another working directory: data_dir follows the config folder.
    config = load_config(Path("..") / "cfg")
    assert config.data_dir == (tmp_path / "store" / "here").resolve()
    assert load_config(tmp_path / "cfg").data_dir == (tmp_path / "store" / "here").resolve()


def test_absolute_data_dir_kept(tmp_path: Path) -> None:
    target = tmp_path / "abs-data"
    folder = make_config(tmp_path / "cfg", {"crawler.yaml": [("data_dir: data", f"data_dir: {target}")]})
    assert load_config(folder).data_dir == target


@pytest.mark.parametrize(
    ("written", "expected"),
    [("07:00", time(7, 0)), ("7:30", time(7, 30)), ("18:45", time(18, 45)), ("00:05", time(0, 5))],
)
def test_unquoted_digest_time_is_read_as_clock_time(tmp_path: Path, written: str, expected: time) -> None:
    # YAML 1.1 reads an unquoted 07:00 as the base-60 integer 420.
    folder = make_config(tmp_path / "cfg", {"crawler.yaml": [('  at: "07:00"', f"  at: {written}")]})
    assert load_config(folder).settings.digest.at == expected


def test_unquoted_out_of_range_digest_time_is_an_error(tmp_path: Path) -> None:
    folder = make_config(tmp_path / "cfg", {"crawler.yaml": [('  at: "07:00"', "  at: 25:00")]})
    with pytest.raises(ConfigError) as err:
        load_config(folder)
    assert len(err.value.problems) == 1
    assert ":5: digest.at: " in err.value.problems[0]


def test_database_url_is_kept_and_absent_means_sqlite(tmp_path: Path) -> None:
    url = "postgresql+psycopg://crawler@127.0.0.1:5432/crawler"
    folder = make_config(
        tmp_path / "cfg", {"crawler.yaml": [("timezone: UTC", f"timezone: UTC\ndatabase: {url}")]}
    )
    assert load_config(folder).settings.database == url
    assert load_config(make_config(tmp_path / "plain")).settings.database is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not a url", "database: not a database URL: 'not a url'"),
        ("mysql://u@h/db", "database: unsupported database 'mysql'"),
    ],
)
def test_database_must_be_a_supported_url(tmp_path: Path, value: str, message: str) -> None:
    folder = make_config(
        tmp_path / "cfg", {"crawler.yaml": [("timezone: UTC", f"timezone: UTC\ndatabase: {value}")]}
    )
    with pytest.raises(ConfigError) as err:
        load_config(folder)
    assert len(err.value.problems) == 1
    assert f"crawler.yaml:3: {message}" in err.value.problems[0]


def _with_settings(tmp_path: Path, lines: str) -> Path:
    return make_config(tmp_path / "cfg", {"crawler.yaml": [("timezone: UTC", f"timezone: UTC\n{lines}")]})


def test_queue_absent_means_embedded_mode_and_claim_after_defaults_to_a_minute(tmp_path: Path) -> None:
    settings = load_config(make_config(tmp_path / "plain")).settings
    assert settings.queue is None
    assert settings.queue_claim_after == timedelta(seconds=60)


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "redis://:secret@queue.internal", "rediss://q.example:6380/2",
            "unix:///run/redis/redis.sock"],
)  # fmt: skip
def test_queue_url_and_claim_after_are_kept(tmp_path: Path, url: str) -> None:
    settings = load_config(_with_settings(tmp_path, f"queue: {url}\nqueue_claim_after: 90s")).settings
    assert settings.queue == url
    assert settings.queue_claim_after == timedelta(seconds=90)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "queue: postgresql://u@h/db",
            "queue: not a Redis URL: 'postgresql://u@h/db': use redis://host:6379/0",
        ),
        ("queue: localhost:6379", "queue: not a Redis URL: 'localhost:6379': use redis://"),
        ("queue: redis://", "queue: not a Redis URL: 'redis://': it needs a host"),
        ("queue: redis://h:port/0", "queue: not a Redis URL: 'redis://h:port/0': the port must be a number"),
        ("queue: redis://h:6379/jobs", "the path is the database number"),
        ("queue: unix://", "a unix:// URL needs the socket's path"),
        ("queue_claim_after: soon", "queue_claim_after: invalid duration 'soon'"),
        ("queue_claim_after: 0", "queue_claim_after: a duration must be positive"),
    ],
)
def test_queue_settings_are_validated(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_with_settings(tmp_path, line))
    assert len(err.value.problems) == 1
    assert "crawler.yaml:3: " in err.value.problems[0]
    assert message in err.value.problems[0]


def test_config_error_lists_problems(tmp_path: Path) -> None:
    folder = make_config(tmp_path / "cfg", {"crawler.yaml": [("timezone: UTC", "timzone: UTC")]})
    with pytest.raises(ConfigError) as err:
        load_config(folder)
    assert err.value.problems == [f"{folder}/crawler.yaml:2: timzone: unknown key (misspelt?)"]
    assert str(err.value) == err.value.problems[0]


def test_missing_config_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nowhere")
    assert err.value.problems == [f"{tmp_path / 'nowhere'}:0: config: no such folder"]


# -- parse_duration -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30m", 1800),
        ("2h", 7200),
        ("1h30m", 5400),
        ("45s", 45),
        ("1d", 86400),
        ("1d2h3m4s", 86400 + 7200 + 180 + 4),
        ("1h 30m", 5400),
        ("30M", 1800),
        ("1.5h", 5400),
        (2, 2),
        (90.5, 90.5),
        (timedelta(minutes=5), 300),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_parse_duration_bare_number_string_is_seconds() -> None:
    assert parse_duration("2") == timedelta(seconds=2)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("30x", "invalid duration"),
        ("1h30", "invalid duration"),
        ("h", "invalid duration"),
        ("", "invalid duration"),
        ("   ", "invalid duration"),
        ("-5m", "invalid duration"),
        ("thirty minutes", "invalid duration"),
        (None, "invalid duration"),
        (True, "invalid duration"),
        ([30], "invalid duration"),
        ("0m", "must be positive"),
        ("0s0m", "must be positive"),
        (0, "must be positive"),
        (-60, "must be positive"),
        (timedelta(0), "must be positive"),
    ],
)
def test_parse_duration_errors(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


# -- crawler check ------------------------------------------------------------------------------------------


def test_check_shipped_config_exits_0() -> None:
    result = crawler_cmd("check", env=NO_ENV, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "OK" in result.stdout
    assert str((ROOT / "config").resolve()) in result.stdout


def test_check_valid_config_reports_counts(tmp_path: Path) -> None:
    folder = make_config(tmp_path / "cfg")
    result = crawler_cmd("check", "--config", str(folder), env=NO_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"{folder.resolve()}: OK: 2 source(s) (2 enabled), 3 topic(s), data in {(folder / 'data').resolve()}"
    )


# (case id, file, edits, expected line, expected field (regex), expected message (regex)[, marks])
CASES = [
    ("typo-crawler", "crawler.yaml", [("timezone: UTC", "timzone: UTC")], 2, "timzone", "unknown key"),
    (
        "typo-crawler-nested",
        "crawler.yaml",
        [('  at: "07:00"', '  att: "07:00"')],
        5,
        r"digest\.att",
        "unknown key",
    ),
    (
        "typo-sources",
        "sources.yaml",
        [("every: 30m", "evrey: 30m")],
        4,
        r"sources\[alpha\]\.evrey",
        "unknown key",
    ),
    (
        "typo-sources-top",
        "sources.yaml",
        [('    cron: "0 */3 * * *"', '    cron: "0 */3 * * *"\nsorces: []')],
        9,
        "sorces",
        "unknown key",
    ),
    (
        "typo-topics",
        "topics.yaml",
        [("    any: [North Korea, DPRK]", "    any: [North Korea, DPRK]\n    nnone: [South Korea]")],
        4,
        r"topics\.dprk\.nnone",
        "unknown key",
    ),
    ("bad-duration", "sources.yaml", [("every: 30m", "every: 30x")], 4, r"sources\[alpha\]\.every", "'30x'"),
    ("every-zero", "sources.yaml", [("every: 30m", "every: 0")], 4, r"sources\[alpha\]\.every", "positive"),
    (
        "every-zero-unit",
        "sources.yaml",
        [("every: 30m", "every: 0m")],
        4,
        r"sources\[alpha\]\.every",
        "positive",
    ),
    ("every-negative", "sources.yaml", [("every: 30m", "every: -5m")], 4, r"sources\[alpha\]\.every", "-5m"),
    ("default-every-zero", "crawler.yaml", [("every: 1h", "every: 0s")], 3, "every", "positive"),
    (
        "every-and-cron",
        "sources.yaml",
        [("    every: 30m", '    every: 30m\n    cron: "0 * * * *"')],
        2,
        r"sources\[alpha\]",
        "either `every:` or `cron:`",
    ),
    (
        "every-and-cron-second-source",
        "sources.yaml",
        [('    cron: "0 */3 * * *"', '    cron: "0 */3 * * *"\n    every: 2h')],
        6,
        r"sources\[beta\]",
        "either `every:` or `cron:`",
    ),
    (
        "missing-url",
        "sources.yaml",
        [("    url: https://news.example.org/feed\n", "")],
        2,
        r"sources\[alpha\]\.url",
        "Field required",
    ),
    (
        "missing-url-second-source",
        "sources.yaml",
        [("    url: https://other.example.org/rss\n", "")],
        6,
        r"sources\[beta\]\.url",
        "Field required",
    ),
    (
        "bad-cron-value",
        "sources.yaml",
        [('cron: "0 */3 * * *"', 'cron: "61 * * * *"')],
        8,
        r"sources\[beta\]\.cron",
        "invalid crontab '61",
    ),
    (
        "bad-cron-fields",
        "sources.yaml",
        [('cron: "0 */3 * * *"', "cron: every hour")],
        8,
        r"sources\[beta\]\.cron",
        "invalid crontab 'every hour'",
    ),
    (
        "bad-timezone",
        "crawler.yaml",
        [("timezone: UTC", "timezone: Mars/Olympus")],
        2,
        "timezone",
        "Mars/Olympus",
    ),
    ("bad-digest-at-range", "crawler.yaml", [('"07:00"', '"25:00"')], 5, r"digest\.at", "hour"),
    ("bad-digest-at-text", "crawler.yaml", [('"07:00"', "seven")], 5, r"digest\.at", "expected a time like"),
    (
        "non-http-url",
        "sources.yaml",
        [("url: https://news.example.org/feed", "url: ftp://news.example.org/feed")],
        3,
        r"sources\[alpha\]\.url",
        "http:// or https://",
    ),
    (
        "schemeless-url",
        "sources.yaml",
        [("url: https://other.example.org/rss", "url: other.example.org/rss")],
        7,
        r"sources\[beta\]\.url",
        "http:// or https://",
    ),
    (
        "duplicate-source-name",
        "sources.yaml",
        [("name: beta", "name: alpha")],
        6,
        r"sources\[alpha\]\.name",
        "duplicate source name",
    ),
    (
        "unknown-source-topic",
        "sources.yaml",
        [("topics: [dprk]", "topics: [dprk, sport]")],
        5,
        r"sources\[alpha\]\.topics",
        "unknown topic 'sport'.*topics.yaml",
    ),
    (
        "composite-unknown-topic",
        "topics.yaml",
        [("all_topics: [dprk, latin_america]", "all_topics: [dprk, latam]")],
        7,
        r"topics\.dprk_latam\.all_topics",
        "unknown topic 'latam'",
    ),
    (
        "duplicate-key",
        "crawler.yaml",
        [("every: 1h", "every: 1h\ntimezone: UTC")],
        4,
        "timezone",
        "duplicate key",
    ),
    (
        "duplicate-key-nested",
        "sources.yaml",
        [
            (
                "url: https://other.example.org/rss",
                "url: https://other.example.org/rss\n    url: https://x.example/",
            )
        ],
        8,
        r".*url",
        "duplicate key",
    ),
    (
        "yaml-syntax",
        "crawler.yaml",
        [("timezone: UTC", "timezone: UTC: Europe")],
        2,
        "yaml",
        "not allowed here",
    ),
    (
        "yaml-syntax-indent",
        "sources.yaml",
        [("    topics: [dprk]", "    topics: [dprk]\n   enabled: false")],
        6,
        "yaml",
        ".",
    ),
]


@pytest.mark.parametrize(
    ("file", "edits", "line", "field", "message"),
    [pytest.param(*c[1:6], id=c[0], marks=c[6:]) for c in CASES],
)
def test_check_reports_one_line_per_problem(
    tmp_path: Path, file: str, edits: list[tuple[str, str]], line: int, field: str, message: str
) -> None:
    folder = make_config(tmp_path / "cfg", {file: edits})
    result = crawler_cmd("check", "--config", str(folder), env=NO_ENV)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    problems = problems_of(result.stderr)
    assert len(problems) == 1, result.stderr
    (problem,) = problems
    assert problem["file"] == str(folder / file)
    assert int(problem["line"]) == line, result.stderr
    assert re.fullmatch(field, problem["field"]), result.stderr
    assert re.search(message, problem["message"]), result.stderr


def test_check_missing_sources_file(tmp_path: Path) -> None:
    folder = make_config(tmp_path / "cfg")
    (folder / "sources.yaml").unlink()
    result = crawler_cmd("check", "--config", str(folder), env=NO_ENV)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{folder}/sources.yaml:0: file: missing (see the README for an example)"
    ]


def test_check_reports_several_problems_together(tmp_path: Path) -> None:
    folder = make_config(
        tmp_path / "cfg",
        {
            "crawler.yaml": [("timezone: UTC", "timzone: UTC")],
            "sources.yaml": [
                ("url: https://news.example.org/feed", "url: ftp://news.example.org/feed"),
                ('cron: "0 */3 * * *"', 'cron: "61 * * * *"'),
            ],
            "topics.yaml": [("    any: [Venezuela, Cuba]", "    any: [Venezuela, Cuba]\n    min_cout: 2")],
        },
    )
    result = crawler_cmd("check", "--config", str(folder), env=NO_ENV)
    assert result.returncode == 1
    found = [(m["file"], int(m["line"]), m["field"]) for m in problems_of(result.stderr)]
    assert found == [
        (str(folder / "crawler.yaml"), 2, "timzone"),
        (str(folder / "sources.yaml"), 3, "sources[alpha].url"),
        (str(folder / "sources.yaml"), 8, "sources[beta].cron"),
        (str(folder / "topics.yaml"), 6, "topics.latin_america.min_cout"),
    ]


def test_check_reports_cross_file_problems_together(tmp_path: Path) -> None:
    # Checks that span files (names, topic references) run once every file is valid on its own.
    folder = make_config(
        tmp_path / "cfg",
        {
            "sources.yaml": [("name: beta", "name: alpha"), ("topics: [dprk]", "topics: [dprk, sport]")],
            "topics.yaml": [("all_topics: [dprk, latin_america]", "all_topics: [dprk, latam]")],
        },
    )
    result = crawler_cmd("check", "--config", str(folder), env=NO_ENV)
    assert result.returncode == 1
    found = [(m["file"], int(m["line"]), m["field"]) for m in problems_of(result.stderr)]
    assert found == [
        (str(folder / "sources.yaml"), 5, "sources[alpha].topics"),
        (str(folder / "sources.yaml"), 6, "sources[alpha].name"),
        (str(folder / "topics.yaml"), 7, "topics.dprk_latam.all_topics"),
    ]


@pytest.mark.parametrize("command", ["poll", "run"])
def test_poll_and_run_with_invalid_config_exit_1_like_check(tmp_path: Path, command: str) -> None:
    folder = make_config(
        tmp_path / "cfg",
        {
            "crawler.yaml": [("timezone: UTC", "timezone: Nowhere/Land")],
            "sources.yaml": [("every: 30m", "every: 30x")],
        },
    )
    check = crawler_cmd("check", "--config", str(folder), env=NO_ENV)
    assert check.returncode == 1
    assert len(problems_of(check.stderr)) == 2
    other = crawler_cmd(command, "--config", str(folder), env=NO_ENV, timeout=60)
    assert other.returncode == 1
    assert other.stderr == check.stderr
    assert not (folder / "data").exists()  # nothing was started


def test_crawler_config_env_overrides_default(tmp_path: Path) -> None:
    folder = make_config(tmp_path / "elsewhere" / "cfg")
    work = tmp_path / "work"
    work.mkdir()  # no ./config here
    result = crawler_cmd("check", cwd=work, env={"CRAWLER_CONFIG": str(folder)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{folder.resolve()}: OK: 2 source(s)")


def test_default_is_config_in_working_directory(tmp_path: Path) -> None:
    make_config(tmp_path / "config")
    result = crawler_cmd("check", cwd=tmp_path, env=NO_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{(tmp_path / 'config').resolve()}: OK: 2 source(s)")
    missing = crawler_cmd("check", cwd=tmp_path / "config", env=NO_ENV)  # no ./config below it
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == ["config:0: config: no such folder"]


def test_env_points_at_broken_config_and_option_wins(tmp_path: Path) -> None:
    broken = make_config(tmp_path / "broken", {"crawler.yaml": [("timezone: UTC", "timezone: Nowhere/Land")]})
    good = make_config(tmp_path / "good")
    bad = crawler_cmd("check", cwd=tmp_path, env={"CRAWLER_CONFIG": str(broken)})
    assert bad.returncode == 1
    assert bad.stderr.startswith(f"{broken}/crawler.yaml:2: timezone: ")
    ok = crawler_cmd("check", "--config", str(good), cwd=tmp_path, env={"CRAWLER_CONFIG": str(broken)})
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize(
    ("role", "settings", "message"),
    [
        (None, {"queue": "redis://127.0.0.1:9/0"}, "queue is set, so this crawler runs as separate roles"),
        ("embedded", {"queue": "redis://127.0.0.1:9/0"}, "start `crawler run --role scheduler`"),
        ("worker", {}, "--role worker needs crawler.yaml `queue: redis://...`"),
        ("scheduler", {"queue": "redis://127.0.0.1:9/0"}, "--role scheduler needs crawler.yaml `database: "),
        (
            "worker",
            {"queue": "redis://127.0.0.1:9/0", "database": "sqlite:////tmp/x.sqlite3"},
            "SQLite cannot be shared between machines",
        ),
    ],
)
def test_run_says_which_setting_a_role_needs(
    tmp_path: Path, role: str | None, settings: dict[str, str], message: str
) -> None:
    from conftest import write_config

    cfg = write_config(tmp_path / "config", [{"name": "a", "url": "http://127.0.0.1:9/a.xml"}], settings)
    out = crawler_cmd("run", "--config", str(cfg), *(["--role", role] if role else []))
    assert out.returncode == 1
    assert out.stderr.startswith("crawler run: ")
    assert message in out.stderr
    assert not (cfg / "data" / "crawler.lock").exists()  # refused before taking the data folder
