"""Hot reload: config edits applied to a running service, invalid edits reported and ignored."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from conftest import Site, article_html, crawler_cmd, lorem, rss, write_config
from service_helpers import kill_group, log_text, start_service, stop, wait_for

from crawler.config import Config, load_config
from crawler.reload import diff_configs, effective_config
from crawler.resources import Resources
from crawler.schedule import DIGEST_JOB, persistent_scheduler, poll_job_id
from crawler.service import POLL_JOB, Service
from crawler.store import Store
from crawler.topics import compile_topics

TOPICS = {"topics": {"cuba": {"any": ["Cuba", "Havana"]}}}


def _sources(**over: dict[str, Any] | None) -> list[dict[str, Any]]:
    base: dict[str, dict[str, Any]] = {
        "a": {"name": "a", "url": "http://127.0.0.1:9/a.xml", "every": "1h"},
        "b": {"name": "b", "url": "http://127.0.0.1:9/b.xml", "every": "1h"},
        "c": {"name": "c", "url": "http://127.0.0.1:9/c.xml", "every": "1h", "topics": ["cuba"]},
    }
    for name, value in over.items():
        if value is None:
            base.pop(name)
        else:
            base[name] = {"name": name, **value}
    return list(base.values())


def _config(folder: Path, sources: list[dict[str, Any]], **settings: Any) -> Config:
    return load_config(write_config(folder, sources, settings, topics=TOPICS))


def test_diff_names_what_changed_and_what_needs_a_restart(tmp_path: Path) -> None:
    old = _config(tmp_path / "one", _sources())
    new = _config(
        tmp_path / "two",
        _sources(
            a={"url": "http://127.0.0.1:9/a2.xml", "every": "1h"},  # new URL: a new job
            b=None,  # removed
            c={"url": "http://127.0.0.1:9/c.xml", "every": "1h"},  # topics only: same job
            d={"url": "http://127.0.0.1:9/d.xml", "cron": "0 * * * *"},  # added
        ),
        every="2h",
        min_chars=100,
        fetch={"delay": 0, "timeout": 5, "allow_private_networks": True},
        http={"listen": "127.0.0.1:8787"},
    )
    changes = diff_configs(old, new)
    assert changes.added == ["d"] and changes.removed == ["b"]
    assert changes.changed == {"a": ["url"], "c": ["topics"]}
    assert changes.rescheduled == ["a"]
    assert not changes.topics and not changes.digest
    assert changes.settings == ["every", "min_chars"]
    assert changes.need_restart == ["data_dir", "fetch", "http"]  # two folders, two data dirs
    assert changes.describe() == (
        "added d; removed b; changed a (url), c (topics); settings changed (every, min_chars)"
    )
    # Until the restart, the running data folder and fetch settings stay.
    running = effective_config(old, new)
    assert running.data_dir == old.data_dir
    assert running.settings.fetch == old.settings.fetch and running.settings.http is None
    assert running.settings.min_chars == 100 and running.sources == new.sources


def test_default_interval_change_reschedules_the_sources_that_inherit_it(tmp_path: Path) -> None:
    sources = [
        {"name": "inherits", "url": "http://127.0.0.1:9/a.xml"},
        {"name": "own", "url": "http://127.0.0.1:9/b.xml", "every": "1h"},
    ]
    old = _config(tmp_path / "c", sources)
    new = _config(tmp_path / "c", sources, every="15m", digest={"at": "05:00"})
    changes = diff_configs(old, new)
    assert changes.rescheduled == ["inherits"] and changes.changed == {"inherits": ["schedule"]}
    assert changes.digest and changes.need_restart == []
    assert not diff_configs(new, new)


def test_apply_replaces_the_jobs_of_changed_sources_only(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    old = _config(folder, _sources())
    new_topics = {"topics": {**TOPICS["topics"], "venezuela": {"any": ["Venezuela"]}}}
    store = Store(old.data_dir / "index.sqlite3")

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], Service]:
        scheduler = persistent_scheduler(asyncio.get_running_loop(), old)
        scheduler.start(paused=True)
        res = Resources(old, store, None, None, None, compile_topics(old.topics))  # type: ignore[arg-type]
        service = Service(res, scheduler, folder)
        service.install_schedule()
        before = {job.id: job.next_run_time for job in scheduler.get_jobs()}
        write_config(
            folder,
            _sources(
                a={"url": "http://127.0.0.1:9/a2.xml", "every": "1h"},
                b=None,
                d={"url": "http://127.0.0.1:9/d.xml", "every": "1h"},
                e={"url": "http://127.0.0.1:9/e.xml", "enabled": False},
            ),
            topics=new_topics,
        )
        await service.reload()
        after = {job.id: job for job in scheduler.get_jobs()}
        scheduler.shutdown(wait=False)
        return before, after, service

    before, after, service = asyncio.run(scenario())
    store.close()
    assert set(after) == {poll_job_id(n) for n in "acd"} | {DIGEST_JOB}  # e is disabled, b removed
    assert all(job.func_ref == POLL_JOB for job_id, job in after.items() if job_id != DIGEST_JOB)
    assert after[poll_job_id("c")].next_run_time == before[poll_job_id("c")]  # untouched
    assert after[poll_job_id("a")].next_run_time <= datetime.now(UTC)  # a new URL: polled right away
    # Polls and filing use the new config and topics from now on.
    assert service.res.config.source("a").url.endswith("/a2.xml")
    assert "venezuela" in service.res.matcher.names


def _problem_lines(log: str) -> list[str]:
    return [line.split("crawler.service: ", 1)[1] for line in log.splitlines() if " ERROR " in line][:-1]


def test_running_service_applies_edits_and_keeps_running_on_an_invalid_config(
    site: Site, tmp_path: Path
) -> None:
    def publish(feed: str, slug: str, title: str, words: str) -> None:
        site.set(f"/{slug}.html", article_html(title, [f"{words} {p}" for p in lorem(slug)]))
        entries = [*published.setdefault(feed, []), (f"/{slug}.html", title)]
        published[feed] = entries
        site.set(feed, rss(site, entries[::-1]), content_type="application/rss+xml")

    published: dict[str, list[tuple[str, str]]] = {}
    publish("/a.xml", "a1", "Harbour works begin", "The harbour works began on Monday.")
    publish("/a2.xml", "a2-1", "Railway plans", "The railway plans were shown on Tuesday.")
    site.set("/b.xml", rss(site, []), content_type="application/rss+xml")
    site.set("/c.xml", rss(site, []), content_type="application/rss+xml")
    fast = {"every": "1s"}
    sources = [{"name": "a", "url": site.url("/a.xml"), **fast}]
    cfg = write_config(tmp_path / "config", sources, topics=TOPICS)
    data = cfg / "data"
    log = tmp_path / "run.log"
    proc = start_service(cfg, log)

    def logged(text: str) -> bool:
        return text in log_text(log)

    def sidecar(slug_title: str) -> dict[str, Any] | None:
        for path in (data / "archive").rglob("*.json"):
            side = json.loads(path.read_text("utf-8"))
            if side["title"] == slug_title:
                return dict(side)
        return None

    try:
        wait_for(lambda: sidecar("Harbour works begin"), 60, "the first item")
        # Sources: a moves to a new URL, b and c are added (c polled later, spread out).
        sources = [
            {"name": "a", "url": site.url("/a2.xml"), **fast},
            {"name": "b", "url": site.url("/b.xml"), "every": "1h"},
            {"name": "c", "url": site.url("/c.xml"), "every": "1h"},
        ]
        write_config(cfg, sources, topics=TOPICS)
        wait_for(lambda: logged("config reloaded: added b, c; changed a (url)"), 30, "the reload")
        wait_for(lambda: sidecar("Railway plans"), 30, "a's new URL to be polled")
        # Topics: a new one, applied to the next item filed (and b removed at the same time).
        topics = {"topics": {**TOPICS["topics"], "rail": {"any": ["railway"]}}}
        write_config(cfg, [sources[0], sources[2]], topics=topics)
        wait_for(lambda: logged("removed b; topics changed"), 30, "the topics reload")
        publish("/a2.xml", "a2-2", "More railway news", "The railway reached the coast.")
        wait_for(lambda: sidecar("More railway news"), 30, "the next item")
        assert "rail" in sidecar("More railway news")["topics"]  # type: ignore[index]
        assert "rail" not in sidecar("Railway plans")["topics"]  # type: ignore[index]

        # An invalid edit: the errors `crawler check` prints, and the service goes on with the old config.
        (cfg / "sources.yaml").write_text(
            "sources:\n  - name: a\n    url: ftp://nowhere\n    every: soon\n", encoding="utf-8"
        )
        wait_for(lambda: logged("config not reloaded"), 30, "the invalid config to be reported")
        check = crawler_cmd("check", "--config", str(cfg))
        assert check.returncode == 1
        assert _problem_lines(log_text(log)) == check.stderr.splitlines()
        hits = site.hits_of("/a2.xml")
        wait_for(lambda: site.hits_of("/a2.xml") > hits + 1, 30, "polls on the old config")
        assert proc.poll() is None

        # Fixed again, with a fetch setting that cannot change while running.
        write_config(
            cfg,
            [sources[0]],
            {"fetch": {"delay": 0, "timeout": 7, "allow_private_networks": True}},
            topics=topics,
        )
        wait_for(lambda: logged("fetch changed: needs a restart"), 30, "the restart notice")
        assert logged("config reloaded: removed c")
        proc.send_signal(signal.SIGHUP)  # a reload on request, as systemd's ExecReload would send
        # The file still differs from the running fetch settings: said again, nothing else applied.
        wait_for(lambda: log_text(log).count("fetch changed: needs a restart") == 2, 30, "the SIGHUP reload")
        assert logged("config reloaded: nothing to apply")
        code, _took = stop(proc)
    finally:
        kill_group(proc)
    assert code == 0, log_text(log)[-3000:]
    assert "Traceback" not in log_text(log)
    assert yaml.safe_load((cfg / "sources.yaml").read_text())["sources"][0]["name"] == "a"
