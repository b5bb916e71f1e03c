"""`crawler sources`: what the crawler knows about each configured source, from the config and the index."""

from __future__ import annotations

from datetime import datetime, timedelta

from crawler.config import Config, format_duration
from crawler.store import Store


def source_rows(config: Config, store: Store, now: datetime) -> list[dict[str, str]]:
    states = store.source_states()
    week = store.source_activity((now - timedelta(days=7)).isoformat(timespec="seconds"))
    rows = []
    for src in config.sources:
        state = states.get(src.name, {})
        if state.get("url") not in (None, src.url):
            state = {}  # learnt about another URL: it starts afresh at its next poll
        filed, last_new = week.get(src.name, (0, None))
        kind: str = src.kind
        if src.kind == "auto":
            kind += f" -> feed {state['discovered']}" if state.get("discovered") else " -> listing"
        problem = state.get("last_error") or ""
        if state.get("disabled"):
            problem = f"STOPPED: {state['disabled']}"
        if state.get("redirected_to"):
            problem = f"{problem}; moved permanently to {state['redirected_to']}".lstrip("; ")
        rows.append(
            {
                "source": src.name + ("" if src.enabled else " (disabled)"),
                "kind": kind,
                "interval": _interval(config, src.name, state.get("interval")),
                "last poll": _when(state.get("last_poll")),
                "last new item": _when(last_new),
                "new in 7 days": str(filed),
                "failures": str(state.get("failures") or 0),
                "last error": problem,
                "next poll": _when(state.get("next_poll"))
                if src.enabled and not state.get("disabled")
                else "-",
            }
        )
    return rows


def _interval(config: Config, name: str, effective: int | None) -> str:
    src = config.source(name)
    if src.cron:
        text = f"cron {src.cron}"
    elif src.every == "auto":
        text = "auto"
    else:
        text = format_duration(config.interval(src))
    if effective and text != format_duration(timedelta(seconds=effective)):
        text += f" (now {format_duration(timedelta(seconds=effective))})"
    return text


def _when(value: str | None) -> str:
    return value.replace("T", " ")[:16] + " UTC" if value else "-"
