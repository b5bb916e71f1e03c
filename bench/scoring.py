"""The extraction benchmark's metric and the corpora it runs on, shared by bench/extract_quality.py and
tests/test_extraction_gate.py (one copy of the metric, so the gate and the bench cannot drift apart).

The metric, as ../shared/corpora/README.md states it: split into word tokens (regex \\w+), take the 4-token
shingles of the extracted text and of the ground truth as multisets; per document, precision = shared /
extracted and recall = shared / truth; average precision and recall over documents; F1 is the harmonic mean
of the two averages. An empty extraction scores 0.

Nothing here imports the crawler: this module only reads the corpora and archive files and does arithmetic.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
CORPUS_NAMES = ("article-extraction-benchmark", "fundus")
WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class PageScore:
    doc_id: str
    precision: float
    recall: float


@dataclass(frozen=True, slots=True)
class CorpusScore:
    precision: float
    recall: float
    f1: float
    pages: int


def shingles(text: str) -> Counter[tuple[str, ...]]:
    tokens = WORD.findall(text)
    return Counter(tuple(tokens[i : i + 4]) for i in range(max(0, len(tokens) - 3)))


def score(extracted: str, truth: str) -> tuple[float, float]:
    """(precision, recall) of one extracted text against its ground truth."""
    got, want = shingles(extracted), shingles(truth)
    shared = sum((got & want).values())
    precision = shared / sum(got.values()) if got else 0.0
    recall = shared / sum(want.values()) if want else 0.0
    return precision, recall


def aggregate(pages: Iterable[PageScore]) -> CorpusScore:
    """Macro-averaged precision and recall, and F1 as the harmonic mean of the two averages."""
    items = list(pages)
    if not items:
        return CorpusScore(0.0, 0.0, 0.0, 0)
    p = sum(s.precision for s in items) / len(items)
    r = sum(s.recall for s in items) / len(items)
    return CorpusScore(p, r, 2 * p * r / (p + r) if p + r else 0.0, len(items))


def ground_truth(corpus: str, root: Path = CORPORA) -> dict[str, dict[str, str]]:
    """{id: {"articleBody": ..., "url": ...}} of one corpus."""
    data: dict[str, dict[str, str]] = json.loads((root / corpus / "ground-truth.json").read_text("utf-8"))
    return data


def page(corpus: str, doc_id: str, root: Path = CORPORA) -> bytes:
    """The page's HTML as served (gunzipped), bytes untouched."""
    return gzip.decompress((root / corpus / "html" / f"{doc_id}.html.gz").read_bytes())


def archive_body(text: str) -> str:
    """The body of an archive text file: what follows the title line and the blank line after it.

    The ground truths hold no headline, so the title line would count as extracted text that is not in them.
    """
    lines = text.split("\n", 2)
    return lines[2] if len(lines) == 3 and lines[1] == "" else ""


def table(pages: Iterable[PageScore], worst: int) -> str:
    """The `worst` pages by F1, one line each: where to look first."""

    def f1(s: PageScore) -> float:
        return 2 * s.precision * s.recall / (s.precision + s.recall) if s.precision + s.recall else 0.0

    rows = sorted(pages, key=f1)[:worst]
    return "\n".join(f"  {s.doc_id:<40} P {s.precision:.3f}  R {s.recall:.3f}  F1 {f1(s):.3f}" for s in rows)
