"""Extraction quality of crawler.extract on the test corpora, scored as the corpora's README describes.

Usage: python bench/extract_quality.py [--worst N] [--corpus NAME]
    reads ../shared/corpora; prints precision, recall, F1 and milliseconds per page for each corpus, and with
    --worst the N pages with the lowest F1 (where to look first).

This calls extract_article directly on each page. tests/test_extraction_gate.py measures the same thing end
to end (pages served over HTTP, `crawler poll`, the archived files) with the same metric (bench/scoring.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoring import CORPORA, CORPUS_NAMES, PageScore, aggregate, ground_truth, page, score, table

from crawler.extract import extract_article


def run(corpus: str, worst: int) -> None:
    scores, seconds = [], 0.0
    for doc_id, expected in sorted(ground_truth(corpus).items()):
        html = page(corpus, doc_id)
        start = time.perf_counter()
        article = extract_article(html, expected.get("url") or "http://example.org/")
        seconds += time.perf_counter() - start
        # Article.body is the archive text without its title line; the ground truths hold no headline.
        scores.append(PageScore(doc_id, *score(article.body if article else "", expected["articleBody"])))
    total = aggregate(scores)
    print(
        f"{corpus}: {total.pages} pages  precision {total.precision:.3f}  recall {total.recall:.3f}"
        f"  F1 {total.f1:.3f}  ({1000 * seconds / total.pages:.0f} ms/page)"
    )
    if worst:
        print(table(scores, worst))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worst", type=int, default=0, help="list the N pages with the lowest F1")
    parser.add_argument("--corpus", choices=CORPUS_NAMES, action="append", help="only this corpus")
    args = parser.parse_args()
    if not CORPORA.is_dir():
        print(f"no corpora at {CORPORA}", file=sys.stderr)
        return 1
    for corpus in args.corpus or CORPUS_NAMES:
        run(corpus, args.worst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
