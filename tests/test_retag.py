"""`crawler retag` and `crawler explain` on a real archive and index (files and SQLite on tmp_path)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crawler import dedup
from crawler.archive import Filed, write_item
from crawler.filing import index_row
from crawler.retag import explain, read_item, retag, source_of
from crawler.store import Store
from crawler.topics import TopicDef, TopicMatcher, compile_topics, flag_topics

DAY1, DAY2 = "2024-03-04", "2024-03-05"

OLD_RULES = {"dprk": {"any": ["DPRK"]}}
NEW_RULES = {
    "dprk": {"any": ["DPRK", "North Korea"]},
    "latam": {"any": ["Cuba", "Venezuela"], "min_count": 2, "none": ["baseball"]},
    "both": {"all_topics": ["dprk", "latam"]},
}


def matcher(rules: dict[str, dict[str, Any]]) -> TopicMatcher:
    return compile_topics({name: TopicDef.model_validate(d) for name, d in rules.items()})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "index.sqlite3")
    yield s
    s.close()


_seq = iter(range(1, 10_000))


def file_item(
    data_dir: Path,
    store: Store,
    day: str,
    title: str,
    body: str,
    rules: TopicMatcher,
    source: str = "kcna",
    source_topics: tuple[str, ...] = (),
) -> Filed:
    """File an item the way crawler.filing does: text and sidecar in the archive, a row in the index."""
    n = next(_seq)
    url = f"https://news.example.org/story/{n}"
    flags = flag_topics(title, body, rules, source_topics)
    sidecar: dict[str, Any] = {
        "url": url,
        "source": source,
        "title": title,
        "published": f"{day}T06:00:00+00:00",
        "fetched_at": f"{day}T08:00:00+00:00",
        "topics": list(flags.topics),
        "evidence": flags.evidence,
        "scores": flags.scores,
        "language": "en",
        "content_sha256": f"{n:064x}",
        "guid": None,
        "also_reported_by": [{"source": "tass", "url": f"{url}?copy", "fetched_at": f"{day}T09:00:00+00:00"}],
        "revision_of": None,
    }
    filed = write_item(data_dir, day, dedup.url_digest(url), f"{title}\n\n{body}", sidecar)
    store.add_item(index_row(filed.relative, day, sidecar, body), [dedup.url_key(url)])
    return filed


def sidecar(filed: Filed) -> dict[str, Any]:
    return json.loads(filed.sidecar_path.read_text("utf-8"))


def indexed(store: Store, day: str) -> dict[str, tuple[list[str], dict[str, float]]]:
    return {item.path: (item.topics, item.scores) for item in store.items_of_day(day)}


@pytest.fixture
def archive(tmp_path: Path, store: Store) -> dict[str, Filed]:
    old = matcher(OLD_RULES)
    return {
        "nk": file_item(tmp_path, store, DAY1, "North Korea news", "North Korea said so in Pyongyang.", old),
        "dprk": file_item(tmp_path, store, DAY1, "DPRK statement", "The DPRK said so.", old),
        "cuba": file_item(tmp_path, store, DAY2, "Cuba and Venezuela", "Havana and Caracas met.", old),
        "both": file_item(tmp_path, store, DAY2, "DPRK and Cuba", "The DPRK greets Cuba and Venezuela.", old),
        "plain": file_item(tmp_path, store, DAY2, "Weather", "Sunny all week.", old),
    }


def test_retag_rewrites_changed_items_only(tmp_path: Path, store: Store, archive: dict[str, Filed]) -> None:
    untouched = {name: archive[name].sidecar_path.read_bytes() for name in ("dprk", "plain")}
    mtimes = {name: archive[name].sidecar_path.stat().st_mtime_ns for name in ("dprk", "plain")}
    before = sidecar(archive["nk"])

    assert retag(store, tmp_path, matcher(NEW_RULES), {}, None) == 3  # nk, cuba, both

    for name, data in untouched.items():
        assert archive[name].sidecar_path.read_bytes() == data
        assert archive[name].sidecar_path.stat().st_mtime_ns == mtimes[name]
    after = sidecar(archive["nk"])
    assert after["topics"] == ["dprk"]
    assert after["evidence"] == {
        "dprk": [{"term": "North Korea", "count": 2, "sentence": "North Korea news", "where": "title"}]
    }
    assert after["scores"] == {"dprk": 4.0}
    # Every other key is kept, with its value and in its place.
    assert list(after) == list(before)
    assert {k: v for k, v in after.items() if k not in ("topics", "evidence", "scores")} == {
        k: v for k, v in before.items() if k not in ("topics", "evidence", "scores")
    }
    assert sidecar(archive["both"])["topics"] == ["both", "dprk", "latam"]
    assert sidecar(archive["cuba"])["topics"] == ["latam"]
    # The index follows.
    assert indexed(store, DAY1)[archive["nk"].relative] == (["dprk"], {"dprk": 4.0})
    assert indexed(store, DAY2)[archive["both"].relative] == (
        ["both", "dprk", "latam"],
        {"both": 4.0, "dprk": 4.0, "latam": 5.0},
    )
    assert indexed(store, DAY2)[archive["plain"].relative] == ([], {})
    # No temporary files left behind, and a second run has nothing to do.
    assert not list(tmp_path.rglob("*.tmp"))
    assert retag(store, tmp_path, matcher(NEW_RULES), {}, None) == 0


def test_retag_since_a_day(tmp_path: Path, store: Store, archive: dict[str, Filed]) -> None:
    assert retag(store, tmp_path, matcher(NEW_RULES), {}, DAY2) == 2
    assert sidecar(archive["nk"])["topics"] == []  # filed the day before: left as it was
    assert indexed(store, DAY1)[archive["nk"].relative] == ([], {})
    assert sidecar(archive["cuba"])["topics"] == ["latam"]
    assert retag(store, tmp_path, matcher(NEW_RULES), {}, "2024-03-06") == 0
    with pytest.raises(ValueError):
        retag(store, tmp_path, matcher(NEW_RULES), {}, "yesterday")


def test_retag_applies_source_topics(tmp_path: Path, store: Store, archive: dict[str, Filed]) -> None:
    assert retag(store, tmp_path, matcher(NEW_RULES), {"kcna": ["dprk"]}, None) == 5
    plain = sidecar(archive["plain"])
    assert plain["topics"] == ["dprk"]
    assert plain["evidence"] == {"dprk": [{"term": "@source", "count": 1, "sentence": ""}]}
    assert plain["scores"] == {"dprk": 3.0}
    # A source topic counts for composites: the Cuba item is now about both.
    assert sidecar(archive["cuba"])["topics"] == ["both", "dprk", "latam"]


def test_retag_upgrades_sidecars_of_the_old_shape(tmp_path: Path, store: Store) -> None:
    filed = file_item(tmp_path, store, DAY1, "DPRK", "The DPRK spoke.", matcher(OLD_RULES))
    old = sidecar(filed)
    old["evidence"] = {"dprk": ["DPRK"]}  # a list of terms, before evidence had counts and sentences
    del old["scores"]
    filed.sidecar_path.write_text(json.dumps(old, indent=2), "utf-8")

    assert retag(store, tmp_path, matcher(OLD_RULES), {}, None) == 1
    new = sidecar(filed)
    assert new["evidence"]["dprk"][0] == {"term": "DPRK", "count": 2, "sentence": "DPRK", "where": "title"}
    keys = list(new)
    assert keys.index("scores") == keys.index("evidence") + 1


def test_retag_of_an_item_missing_from_the_index(
    tmp_path: Path, store: Store, archive: dict[str, Filed]
) -> None:
    other = Store(tmp_path / "other.sqlite3")  # an index that lacks every item: the sidecars still change
    try:
        assert retag(other, tmp_path, matcher(NEW_RULES), {}, None) == 3
    finally:
        other.close()
    assert sidecar(archive["nk"])["topics"] == ["dprk"]


def test_retag_of_an_empty_archive(tmp_path: Path, store: Store) -> None:
    assert retag(store, tmp_path, matcher(NEW_RULES), {}, None) == 0


def test_read_item_and_source_of(archive: dict[str, Filed]) -> None:
    assert read_item(archive["nk"].text_path) == ("North Korea news", "North Korea said so in Pyongyang.")
    assert source_of(archive["nk"].text_path) == "kcna"
    assert source_of(archive["nk"].text_path.with_name("999_0000000000000000.txt")) is None


# --- explain ------------------------------------------------------------------------------------------------

EXPLAIN_RULES = {
    "dprk": {"any": ["DPRK", "North Korea"], "min_count": 3},
    "latam": {"any": ["Cuba"], "none": ["baseball"]},
    "embargo": {"any": ["Cuba"], "all": ["embargo"]},
    "near": {"near": ["Kim", "missile*"], "within": 2},
    "both": {"all_topics": ["dprk", "latam"]},
    "pyongyang": {"any": ["Pyongyang"]},
}


def test_explain_names_the_failing_conditions(tmp_path: Path, store: Store) -> None:
    rules = matcher(EXPLAIN_RULES)
    body = (
        "The DPRK played Cuba at baseball in Pyongyang. Kim watched from far, far away as a missile flew. "
        "North Korea won."
    )
    filed = file_item(tmp_path, store, DAY1, "Sports day", body, matcher(OLD_RULES), source_topics=("kcna",))
    report = explain(filed.text_path, rules, ["sanctions"])

    assert "dprk: not flagged" in report
    assert "why not: min_count not reached (2 of 3" in report
    assert "latam: not flagged" in report
    assert "why not: `none` term present: 'baseball' (1x)" in report
    assert "why not: `all` term missing: 'embargo'" in report
    assert (
        "why not: proximity not satisfied: near ['Kim', 'missile*'] within 2: closest 7 words apart" in report
    )
    assert "why not: composite part missing: dprk is not flagged" in report
    assert "pyongyang: FLAGGED, score 1" in report
    assert (
        "matched: 'Pyongyang' 1x, first in the text: \"The DPRK played Cuba at baseball in Pyongyang.\""
        in report
    )
    assert "matched: 'DPRK' 1x" in report  # terms found count even when the topic is not flagged
    # The source's own topic, and what the sidecar says against what the rules say now.
    assert "sanctions: FLAGGED, score 3" in report
    assert "set by the source (no rule for it in topics.yaml)" in report
    assert "source: kcna (its topics: sanctions)" in report
    assert "topics in the sidecar: dprk, kcna  <- differs: `crawler retag` would update it" in report
    assert "topics now: pyongyang, sanctions" in report


def test_explain_a_flagged_composite_and_a_source_topic_whose_rule_fails(
    tmp_path: Path, store: Store
) -> None:
    rules = matcher(EXPLAIN_RULES)
    body = "North Korea and the DPRK greet Cuba. The DPRK again."
    filed = file_item(tmp_path, store, DAY1, "Friends", body, rules)
    report = explain(filed.text_path, rules, ["pyongyang"])
    assert "both: FLAGGED" in report
    assert (
        'matched: part dprk (3 match(es)), first in the text: "North Korea and the DPRK greet Cuba."'
        in report
    )
    assert "pyongyang: FLAGGED, score 3\n  set by the source; its rule alone would not set it\n" in report
    assert "  - no `any` term found" in report
    # Filed under these rules, but without the source topic given here.
    assert "topics in the sidecar: both, dprk, latam  <- differs" in report


def test_explain_shows_ignored_phrases(tmp_path: Path) -> None:
    rules = matcher({"mexico": {"any": ["Mexico"], "ignore": ["New Mexico"]}})
    path = tmp_path / "001_0123456789abcdef.txt"
    path.write_text("Fires\n\nWildfires in New Mexico spread.\n", "utf-8")  # no sidecar: still explained
    report = explain(path, rules)
    assert "mexico: not flagged" in report
    assert "why not: no `any` term found" in report
    assert (
        "ignored: 'New Mexico' 1x (terms inside it don't count): \"Wildfires in New Mexico spread.\""
        in report
    )
    assert "topics in the sidecar" not in report
