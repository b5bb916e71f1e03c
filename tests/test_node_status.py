"""A scheduler node's /healthz verdicts and /metrics gauges, from its status (no servers needed)."""

from __future__ import annotations

from pathlib import Path

from conftest import write_config

from crawler.config import load_config
from crawler.roles.status import DATABASE_SILENCE, NodeStatus, SchedulerProbe, node_metrics
from crawler.store import Store

NOW = 1_800_000_000.0


def _status(tmp_path: Path) -> NodeStatus:
    cfg = write_config(tmp_path / "config", [{"name": "a", "url": "http://127.0.0.1:9/a.xml"}])
    config = load_config(cfg)
    config.data_dir.mkdir(parents=True)
    return NodeStatus("node-a:1", config, Store(config.data_dir / "index.sqlite3"), database_answered=NOW)


def test_a_standby_is_healthy_while_the_database_answers(tmp_path: Path) -> None:
    status = _status(tmp_path)
    probe = SchedulerProbe(status, clock=lambda: NOW + DATABASE_SILENCE - 1)
    health = probe.health()
    assert (health.ok, health.reason, health.details["leading"]) == (True, "standing by", False)
    status.database_answered = NOW - 5
    silent = SchedulerProbe(status, clock=lambda: NOW + DATABASE_SILENCE).health()
    assert not silent.ok and silent.reason == f"no answer from the database for {DATABASE_SILENCE + 5:.0f} s"
    assert probe.sources()["sources"][0]["source"] == "a"
    status.store.close()


def test_a_leader_reports_its_schedule_and_the_queue_depth(tmp_path: Path) -> None:
    status = _status(tmp_path)
    status.leading, status.scheduled, status.next_due = True, 12, NOW + 30
    status.waiting, status.pending = 7, 3
    health = SchedulerProbe(status, clock=lambda: NOW).health()
    assert health.ok and health.reason == "leading: 12 source(s) scheduled, next poll due in 30 s"
    assert health.details["poll_requests_waiting"] == 7
    body, _ctype = node_metrics(status).render()
    text = body.decode()
    assert "crawler_scheduler_leading 1.0" in text
    assert 'crawler_poll_requests{state="waiting"} 7.0' in text
    assert 'crawler_poll_requests{state="pending"} 3.0' in text
    status.leading = False
    assert "crawler_scheduler_leading 0.0" in node_metrics(status).render()[0].decode()
    status.store.close()
