"""Extraction quality of crawler.extract on the test corpora, scored as the corpora's README describes.

Usage: python bench/extract_quality.py   (reads ../shared/corpora; prints precision, recall and F1)
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

from crawler.extract import extract_article

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
WORD = re.compile(r"\w+")


def shingles(text: str) -> Counter[tuple[str, ...]]:
    tokens = WORD.findall(text)
    return Counter(tuple(tokens[i : i + 4]) for i in range(max(0, len(tokens) - 3)))


def score(extracted: str, truth: str) -> tuple[float, float]:
    got, want = shingles(extracted), shingles(truth)
    shared = sum((got & want).values())
    precision = shared / sum(got.values()) if got else 0.0
    recall = shared / sum(want.values()) if want else 0.0
    return precision, recall


def main() -> int:
    if not CORPORA.is_dir():
        print(f"no corpora at {CORPORA}", file=sys.stderr)
        return 1
    for corpus in ("article-extraction-benchmark", "fundus"):
        truth = json.loads((CORPORA / corpus / "ground-truth.json").read_text("utf-8"))
        precisions, recalls, seconds = [], [], 0.0
        for doc_id, expected in sorted(truth.items()):
            page = gzip.decompress((CORPORA / corpus / "html" / f"{doc_id}.html.gz").read_bytes())
            start = time.perf_counter()
            article = extract_article(page, expected.get("url") or "http://example.org/")
            seconds += time.perf_counter() - start
            # The archive text starts with the title line; the ground truth has no headline.
            p, r = score(article.body if article else "", expected["articleBody"])
            precisions.append(p)
            recalls.append(r)
        p, r = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        print(
            f"{corpus}: {len(precisions)} pages  precision {p:.3f}  recall {r:.3f}  F1 {f1:.3f}"
            f"  ({1000 * seconds / len(precisions):.0f} ms/page)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
