"""Precision and recall of the shipped topics (config/topics.yaml) on two labelled sets, and their speed.

    python bench/topic_quality.py [--errors] [--repeat N]

1. Our topic labels of the dev corpora: ../shared/corpora (beside the repo), topic-labels.json and the
   ground-truth article bodies of article-extraction-benchmark/ and fundus/. Scoring follows the labels'
   README: per topic, an item whose topic is in `borderline` (a weak positive or a weak negative) is left out
   of that topic's score. The title is the fundus headline where there is one (the labels were judged with
   it); the benchmark pages have none.
2. Test articles written for this project, tests/data/topics/articles.yaml: the DPRK and Latin America
   themes in several languages, with tricky negatives. Every article is labelled for every topic.

A topic's figures mean something from 8 positives up; the requirement there is precision and recall >= 0.9.
--errors lists the false positives and negatives with the terms that matched (for the corpora ids only, no
article text). Speed: milliseconds per article for flag_topics over both sets (bodies of a few KB).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
ARTICLES = ROOT / "tests" / "data" / "topics" / "articles.yaml"
sys.path.insert(0, str(ROOT))

from crawler.topics import TopicDef, TopicMatcher, compile_topics, flag_topics  # noqa: E402

MEANINGFUL = 8  # positives from which a topic's precision and recall must reach REQUIRED
REQUIRED = 0.9


@dataclass
class Score:
    tp: list[str] = field(default_factory=list)  # item ids
    fp: list[str] = field(default_factory=list)
    fn: list[str] = field(default_factory=list)
    skipped: int = 0  # borderline items, out of this topic's score

    @property
    def positives(self) -> int:
        return len(self.tp) + len(self.fn)

    @property
    def precision(self) -> float:
        flagged = len(self.tp) + len(self.fp)
        return len(self.tp) / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        return len(self.tp) / self.positives if self.positives else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


Evidence = dict[str, list[dict[str, Any]]]


def load_matcher(path: Path = ROOT / "config" / "topics.yaml") -> TopicMatcher:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return compile_topics({name: TopicDef.model_validate(d) for name, d in data["topics"].items()})


def corpus_items(corpora: Path = CORPORA) -> list[dict[str, Any]]:
    """The labelled dev pages: id, title, text, labels, borderline."""
    labels = json.loads((corpora / "topic-labels.json").read_text(encoding="utf-8"))
    truth = {
        name: json.loads((corpora / name / "ground-truth.json").read_text(encoding="utf-8"))
        for name in {item["corpus"] for item in labels["items"]}
    }
    items = []
    for item in labels["items"]:
        page = truth[item["corpus"]][item["id"]]
        items.append(
            {
                "id": item["id"],
                "title": page.get("title") or "",
                "text": page["articleBody"],
                "labels": item["labels"],
                "borderline": item["borderline"],
            }
        )
    return items


def article_items(path: Path = ARTICLES) -> list[dict[str, Any]]:
    """Our own test articles, in the same shape (nothing borderline: each was written to be clear)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [{**a, "borderline": []} for a in data["articles"]]


def score_items(
    matcher: TopicMatcher, items: Iterable[dict[str, Any]], topics: Iterable[str]
) -> tuple[dict[str, Score], dict[str, Evidence]]:
    scores = {topic: Score() for topic in topics}
    evidence: dict[str, Evidence] = {}
    for item in items:
        flags = flag_topics(item["title"], item["text"], matcher)
        evidence[item["id"]] = flags.evidence
        for topic, s in scores.items():
            if topic in item["borderline"]:
                s.skipped += 1
            elif topic in item["labels"]:
                (s.tp if topic in flags.topics else s.fn).append(item["id"])
            elif topic in flags.topics:
                s.fp.append(item["id"])
    return scores, evidence


def score(matcher: TopicMatcher, corpora: Path = CORPORA) -> tuple[dict[str, Score], dict[str, Evidence]]:
    """Per labelled topic of the dev corpora its Score, and per item id the evidence the matcher gave."""
    definitions = json.loads((corpora / "topic-labels.json").read_text(encoding="utf-8"))["definitions"]
    return score_items(matcher, corpus_items(corpora), definitions)


def score_articles(
    matcher: TopicMatcher, path: Path = ARTICLES
) -> tuple[dict[str, Score], dict[str, Evidence]]:
    """Per topic of the matcher (composites too) its Score on our test articles."""
    return score_items(matcher, article_items(path), matcher.names)


def speed(matcher: TopicMatcher, items: list[dict[str, Any]], repeat: int = 3) -> tuple[float, float]:
    """(milliseconds per article, mean characters per article), best of `repeat` passes."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for item in items:
            flag_topics(item["title"], item["text"], matcher)
        best = min(best, time.perf_counter() - start)
    chars = sum(len(i["title"]) + len(i["text"]) for i in items) / max(len(items), 1)
    return best * 1000 / max(len(items), 1), chars


def report(
    title: str, scores: dict[str, Score], evidence: dict[str, Evidence], errors: bool, quote: bool
) -> bool:
    """Print the table; True when every topic with enough positives meets the requirement."""
    print(f"\n{title}")
    print(f"{'topic':<14}{'pos':>5}{'tp':>5}{'fp':>5}{'fn':>5}{'skip':>6}{'prec':>7}{'recall':>7}{'F1':>7}")
    ok = True
    for topic, s in scores.items():
        required = s.positives >= MEANINGFUL
        fails = required and min(s.precision, s.recall) < REQUIRED
        ok &= not fails
        mark = "  FAILS the 0.9 requirement" if fails else ("  (>= 8 positives)" if required else "")
        print(
            f"{topic:<14}{s.positives:>5}{len(s.tp):>5}{len(s.fp):>5}{len(s.fn):>5}{s.skipped:>6}"
            f"{s.precision:>7.3f}{s.recall:>7.3f}{s.f1:>7.3f}{mark}"
        )
    if errors:
        for topic, s in scores.items():
            for kind, ids in (("FP", s.fp), ("FN", s.fn)):
                for item_id in ids:
                    found = evidence[item_id].get(topic, [])
                    terms = ", ".join(f"{e['term']} x{e['count']}" for e in found)
                    print(f"{kind} {topic:<13} {item_id[:40]:<40} [{terms}]")
                    if quote:
                        for e in found:
                            print(f"     {e['term']}: {e['sentence'][:160]}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--errors", action="store_true", help="list false positives and negatives")
    parser.add_argument("--repeat", type=int, default=3, help="timing passes (the best is shown)")
    args = parser.parse_args()
    matcher = load_matcher()
    ok = True
    timed = article_items()
    if (CORPORA / "topic-labels.json").is_file():
        scores, evidence = score(matcher)
        ok &= report(
            "Dev corpora (../shared/corpora/topic-labels.json)", scores, evidence, args.errors, False
        )
        timed += corpus_items()
    else:
        print(f"topic_quality: no corpora at {CORPORA} (expected ../shared/corpora beside the repo): skipped")
    scores, evidence = score_articles(matcher)
    ok &= report(f"Test articles ({ARTICLES.relative_to(ROOT)})", scores, evidence, args.errors, True)
    ms, chars = speed(matcher, timed, args.repeat)
    print(f"\nspeed: {ms:.2f} ms per article ({len(timed)} articles, {chars:.0f} characters on average)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
