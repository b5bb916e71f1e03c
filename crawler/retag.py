"""Topics after the fact: re-apply the current rules to the archive (`crawler retag`), and show why one
archived item has the topics it has (`crawler explain FILE`). Nothing is fetched: the archive's text files
hold everything the rules look at (title on line 1, body from line 3).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from crawler.archive import archive_dir, write_text_atomic
from crawler.store import Store
from crawler.topics import TopicMatcher, TopicVerdict, evaluate_topics, flag_topics

log = logging.getLogger(__name__)

_ITEM = re.compile(r"^\d{3,}_[0-9a-f]{16}\.txt$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TOPIC_KEYS = ("topics", "evidence", "scores")  # the sidecar keys retag rewrites; every other key is kept


def read_item(text_path: Path) -> tuple[str, str]:
    """(title, body) of an archive text file: the title on line 1, a blank line, the body from line 3."""
    title, _, rest = text_path.read_text("utf-8").partition("\n")
    return title, rest[1:] if rest.startswith("\n") else rest


def source_of(text_path: Path) -> str | None:
    """The source named by the item's sidecar, if there is one (to look up the source's own topics)."""
    try:
        sidecar = json.loads(text_path.with_suffix(".json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    source = sidecar.get("source") if isinstance(sidecar, dict) else None
    return source if isinstance(source, str) else None


def retag(
    store: Store,
    data_dir: Path,
    matcher: TopicMatcher,
    source_topics: Mapping[str, Sequence[str]],
    since: str | None = None,
) -> int:
    """Apply the current topic rules to the items filed on or after `since` (YYYY-MM-DD; None: all); returns
    how many items changed. A changed item gets its sidecar's topics, evidence and scores rewritten
    atomically (every other key kept as it was) and its index row updated; the rest are not touched.

    The index is updated before the sidecar, so an interrupted retag is finished by running it again. The
    sidecar is read again just before it is replaced, to keep what a running service may have added to it
    meanwhile (also_reported_by)."""
    if since is not None:
        date.fromisoformat(since)  # ValueError on a malformed day
    changed = 0
    for text_path in _items(data_dir, since):
        side_path = text_path.with_suffix(".json")
        try:
            sidecar = json.loads(side_path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("retag: %s: unreadable sidecar, skipped (%s)", side_path, exc)
            continue
        title, body = read_item(text_path)
        flags = flag_topics(title, body, matcher, source_topics.get(sidecar.get("source") or "", ()))
        new: dict[str, Any] = {
            "topics": list(flags.topics),
            "evidence": flags.evidence,
            "scores": flags.scores,
        }
        if all(sidecar.get(key) == value for key, value in new.items()):
            continue
        relative = text_path.relative_to(data_dir).as_posix()
        if not store.update_topics(relative, new["topics"], new["scores"]):
            log.warning("retag: %s is not in the index (run `crawler reindex`)", relative)
        latest = json.loads(side_path.read_text("utf-8"))
        write_text_atomic(side_path, json.dumps(_with(latest, new), ensure_ascii=False, indent=2) + "\n")
        log.info("retag: %s: %s -> %s", relative, sidecar.get("topics"), new["topics"])
        changed += 1
    return changed


def _items(data_dir: Path, since: str | None) -> Iterator[Path]:
    """The archive's text files that have a sidecar, oldest day first, for days on or after `since`."""
    root = archive_dir(data_dir)
    if not root.is_dir():
        return
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and _DAY.match(p.name)):
        if since is not None and folder.name < since:
            continue
        for path in sorted(folder.iterdir()):
            if _ITEM.match(path.name) and path.with_suffix(".json").is_file():
                yield path


def _with(sidecar: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The sidecar with the topic keys replaced in place; a missing one goes after the others' place."""
    out = {key: new.get(key, value) for key, value in sidecar.items()}
    for key in TOPIC_KEYS:
        if key not in out:
            # A sidecar from before scores existed: put them after the evidence, where new items have them.
            items = list(out.items())
            after = max((i for i, (k, _) in enumerate(items) if k in TOPIC_KEYS), default=len(items) - 1)
            items.insert(after + 1, (key, new[key]))
            out = dict(items)
    return out


# --- explain ----------------------------------------------------------------------------------------------


def explain(text_path: Path, matcher: TopicMatcher, source_topics: Sequence[str] = ()) -> str:
    """A report on one archive file: for every topic, FLAGGED or not and why: the terms that matched (count,
    where, first sentence) and each condition that failed (min_count not reached, a `none` term present, an
    `all` term missing, proximity not satisfied, a composite's part missing); and whether the sidecar's
    topics differ from what the rules give now (then `crawler retag` would change them)."""
    if text_path.suffix == ".json":  # the sidecar was named: explain its item
        text_path = text_path.with_suffix(".txt")
    title, body = read_item(text_path)
    verdicts = evaluate_topics(title, body, matcher, source_topics)
    lines = [f"{text_path}", f"title: {title}"]
    sidecar = _sidecar(text_path)
    if sidecar is not None:
        lines.append(f"source: {sidecar.get('source')}" + _source_note(source_topics))
    elif source_topics:
        lines.append(f"source topics: {', '.join(source_topics)}")
    now = sorted(v.name for v in verdicts if v.flagged)
    lines.append(f"topics now: {', '.join(now) or '(none)'}")
    if sidecar is not None:
        filed = list(sidecar.get("topics") or [])
        same = sorted(filed) == now
        lines.append(
            f"topics in the sidecar: {', '.join(filed) or '(none)'}"
            + ("" if same else "  <- differs: `crawler retag` would update it")
        )
    for verdict in verdicts:
        lines.append("")
        lines += _explain_topic(verdict)
    return "\n".join(lines) + "\n"


def _sidecar(text_path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(text_path.with_suffix(".json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _source_note(source_topics: Sequence[str]) -> str:
    return f" (its topics: {', '.join(source_topics)})" if source_topics else ""


def _explain_topic(v: TopicVerdict) -> list[str]:
    lines = [f"{v.name}: FLAGGED, score {v.score:g}" if v.flagged else f"{v.name}: not flagged"]
    if v.by_source and not v.defined:
        lines.append("  set by the source (no rule for it in topics.yaml)")
    elif v.by_source:
        holds = "holds" if not v.problems else "would not set it"
        lines.append(f"  set by the source; its rule alone {holds}")
        lines += [f"  - {problem}" for problem in v.problems]
    else:
        lines += [f"  why not: {problem}" for problem in v.problems]
    for e in v.evidence:
        if e["term"] == "@source":
            continue
        if e["term"].startswith("@"):
            what = f"part {e['term'][1:]} ({e['count']} match(es))"
        else:
            what = f"{e['term']!r} {e['count']}x"
        where = f", first in the {e['where']}" if "where" in e else ""
        quote = f': "{e["sentence"]}"' if e.get("sentence") else ""
        lines.append(f"  matched: {what}{where}{quote}")
    for e in v.ignored:
        lines.append(
            f'  ignored: {e["term"]!r} {e["count"]}x (terms inside it don\'t count): "{e["sentence"]}"'
        )
    if not v.evidence and not v.problems and not v.by_source:
        lines.append("  (nothing matched)")
    return lines
