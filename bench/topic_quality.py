"""Precision and recall of the shipped topics (config/topics.yaml) on our topic labels of the dev corpora.

    python bench/topic_quality.py [--errors]

Reads ../shared/corpora (beside the repo): topic-labels.json and the ground-truth article bodies of
article-extraction-benchmark/ and fundus/. Scoring follows the labels' README: per topic, an item whose topic
is in `borderline` (a weak positive or a weak negative) is left out of that topic's score. The title is the
fundus headline where there is one (the labels were judged with it); the benchmark pages have none.
--errors lists the false positives and negatives with the terms that matched (ids only, no article text).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
sys.path.insert(0, str(ROOT))

from crawler.topics import TopicDef, TopicMatcher, compile_topics, flag_topics  # noqa: E402


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


def load_matcher(path: Path = ROOT / "config" / "topics.yaml") -> TopicMatcher:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return compile_topics({name: TopicDef.model_validate(d) for name, d in data["topics"].items()})


def score(matcher: TopicMatcher, corpora: Path = CORPORA) -> tuple[dict[str, Score], dict[str, dict]]:
    """Per labelled topic its Score, and per item id the evidence the matcher gave."""
    labels = json.loads((corpora / "topic-labels.json").read_text(encoding="utf-8"))
    truth = {
        name: json.loads((corpora / name / "ground-truth.json").read_text(encoding="utf-8"))
        for name in {item["corpus"] for item in labels["items"]}
    }
    scores = {topic: Score() for topic in labels["definitions"]}
    evidence = {}
    for item in labels["items"]:
        page = truth[item["corpus"]][item["id"]]
        flags = flag_topics(page.get("title") or "", page["articleBody"], matcher)
        evidence[item["id"]] = flags.evidence
        for topic, s in scores.items():
            if topic in item["borderline"]:
                s.skipped += 1
            elif topic in item["labels"]:
                (s.tp if topic in flags.topics else s.fn).append(item["id"])
            elif topic in flags.topics:
                s.fp.append(item["id"])
    return scores, evidence


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--errors", action="store_true", help="list false positives and negatives")
    args = parser.parse_args()
    if not (CORPORA / "topic-labels.json").is_file():
        print(f"topic_quality: no corpora at {CORPORA} (expected ../shared/corpora beside the repo)")
        return 2
    scores, evidence = score(load_matcher())
    print(f"{'topic':<14}{'pos':>5}{'tp':>5}{'fp':>5}{'fn':>5}{'skip':>6}{'prec':>7}{'recall':>7}{'F1':>7}")
    for topic, s in scores.items():
        print(
            f"{topic:<14}{s.positives:>5}{len(s.tp):>5}{len(s.fp):>5}{len(s.fn):>5}{s.skipped:>6}"
            f"{s.precision:>7.3f}{s.recall:>7.3f}{s.f1:>7.3f}"
        )
    if args.errors:
        for topic, s in scores.items():
            for kind, ids in (("FP", s.fp), ("FN", s.fn)):
                for item_id in ids:
                    print(f"{kind} {topic:<13} {item_id[:40]:<40} {evidence[item_id].get(topic, [])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
