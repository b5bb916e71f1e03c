"""The extraction quality gate: the real pipeline, end to end, over the two extraction corpora.

Every page of ../shared/corpora/article-extraction-benchmark and ../shared/corpora/fundus is served from a
local HTTP server (gunzipped, `Content-Type: text/html` without a charset, as many servers send it), listed in
one RSS feed per corpus, and polled with the real `crawler poll`: Scrapy downloads each page, the worker
processes extract it and check it is an article, dedup and filing write the archive. The archived text files
are then read back (each mapped to its corpus id through its sidecar's url), their title line stripped as the
archive format defines it, and scored against the ground truth with the benchmark's metric (bench/scoring.py,
the same code `make bench` runs). A page the pipeline did not file scores 0.

The floors sit a little below what was measured, so a change that loses extraction quality anywhere on the
way (decoding, extraction, cleaning, the not-an-article check, dedup) fails here, as trafilatura's own
evaluation does for its releases. One poll of 271 pages: about 33 s of CPU, 20-45 s of wall time on two
shared cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from conftest import CHECK_ARCHIVE, CORPORA, Site, crawler_cmd, load_bench, write_config
from lxml import html as lxml_html

scoring = load_bench("scoring")

SHORT = {"article-extraction-benchmark": "aeb", "fundus": "fundus"}
# Measured end to end (see the module docstring); floors 0.005 below. Per corpus: (F1 floor, measured).
# History: 0.958 / 0.947 before link blocks, furniture and the fast pass (crawler/extract.py).
FLOORS = {
    "article-extraction-benchmark": (0.963, 0.968),
    # 0.953 when the 2023 taz capture is filed, 0.952 when the 2024 one is (SAME_STORY): floor below both.
    "fundus": (0.947, 0.953),
}
# Corpus pages that are the same story, so the pipeline rightly files only one of them (whichever is extracted
# first: pages of a poll are processed concurrently) and records the other as a copy. The other scores 0: the
# figures move by about 0.001 with the order, well inside the margin of the floors.
SAME_STORY = [
    # taz's "Ein bisschen Fortschritt", captured twice (2023 and 2024; the later capture adds a fundraising
    # box); same canonical article id (!5928990), texts near-duplicates.
    ("fundus", "de__Taz_2023_04_28", "de__Taz_2024_10_23"),
]


@dataclass
class GateRun:
    bodies: dict[tuple[str, str], str]  # (corpus, id) -> archived body (text without the title line)
    missing: dict[tuple[str, str], str]  # (corpus, id) -> why it was not filed
    archive: Path
    output: str


def _headline(page: bytes) -> str:
    """What a feed would give as the entry's title: the page's og:title, else its <title>."""
    tree = lxml_html.document_fromstring(page)
    for value in tree.xpath("//meta[@property='og:title']/@content | //title/text()"):
        if str(value).strip():
            return " ".join(str(value).split())
    return "Untitled"


def _feed(site: Site, corpus: str, ids: list[str], titles: dict[str, str]) -> str:
    items = "".join(
        f"<item><title>{escape(titles[i])}</title><link>{site.url(_path(corpus, i))}</link>"
        f"<guid isPermaLink='true'>{site.url(_path(corpus, i))}</guid></item>"
        for i in ids
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>{corpus}</title><link>{site.base}/</link><description>gate</description>{items}"
        "</channel></rss>"
    )


def _path(corpus: str, doc_id: str) -> str:
    return f"/{SHORT[corpus]}/{doc_id}.html"


def _serve(site: Site) -> list[dict[str, object]]:
    sources: list[dict[str, object]] = []
    for corpus in scoring.CORPUS_NAMES:
        ids = sorted(scoring.ground_truth(corpus))
        titles = {}
        for doc_id in ids:
            page = scoring.page(corpus, doc_id)
            titles[doc_id] = _headline(page)
            site.set(_path(corpus, doc_id), page, content_type="text/html")
        feed = f"/{SHORT[corpus]}/feed.xml"
        site.set(feed, _feed(site, corpus, ids, titles), content_type="application/rss+xml")
        # backfill: the corpora's pages are years old, and max_age would skip them as a back catalogue.
        sources.append({"name": SHORT[corpus], "url": site.url(feed), "backfill": True})
    return sources


def _read_archive(site: Site, data: Path) -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    """The filed bodies by (corpus, id), and the URL each copy was deduplicated against."""
    by_path = {_path(c, i): (c, i) for c in scoring.CORPUS_NAMES for i in scoring.ground_truth(c)}
    bodies, copies = {}, {}
    for sidecar in sorted((data / "archive").rglob("*.json")):
        meta = json.loads(sidecar.read_text("utf-8"))
        key = by_path[meta["url"].removeprefix(site.base)]
        bodies[key] = scoring.archive_body(sidecar.with_suffix(".txt").read_text("utf-8"))
        for copy in meta.get("also_reported_by") or []:
            copies[copy["url"]] = meta["url"]
    return bodies, copies


def _why_missing(site: Site, key: tuple[str, str], output: str, copies: dict[str, str]) -> str:
    url = site.url(_path(*key))
    if url in copies:
        return f"a duplicate of {copies[url]}"
    for line in output.splitlines():
        if line.strip().startswith(f"failed: {url}:"):
            return line.strip().removeprefix(f"failed: {url}:").strip()
    return "not filed, no reason in the poll output"


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    if not all((CORPORA / c / "ground-truth.json").is_file() for c in scoring.CORPUS_NAMES):
        pytest.skip(f"extraction corpora absent at {CORPORA} (../shared/corpora beside the checkout)")
    site = Site()
    try:
        sources = _serve(site)
        folder = tmp_path_factory.mktemp("gate")
        settings = {"fetch": {"delay": 0, "timeout": 20, "allow_private_networks": True, "per_host": 8}}
        config = write_config(folder / "config", sources, settings)
        done = crawler_cmd("poll", "--config", str(config), timeout=300)
        assert done.returncode == 0, done.stderr
        output = done.stdout + done.stderr
        data = folder / "config" / "data"
        bodies, copies = _read_archive(site, data)
        missing = {
            key: _why_missing(site, key, output, copies)
            for key in ((c, i) for c in scoring.CORPUS_NAMES for i in scoring.ground_truth(c))
            if key not in bodies
        }
    finally:
        site.close()
    return GateRun(bodies, missing, data / "archive", output)


def test_every_corpus_page_is_filed_once(gate: GateRun) -> None:
    missing = dict(gate.missing)
    for corpus, first, second in SAME_STORY:
        filed = [i for i in (first, second) if (corpus, i) in gate.bodies]
        assert len(filed) == 1, f"{corpus}: {first} and {second} are one story, filed {len(filed)} times"
        other = second if filed == [first] else first
        assert missing.pop((corpus, other), "").startswith("a duplicate of"), gate.missing
    assert not missing, f"pages not filed: {missing}"


def test_filed_pages_follow_the_archive_format(gate: GateRun) -> None:
    if not CHECK_ARCHIVE.exists():
        pytest.skip(f"{CHECK_ARCHIVE} is absent (../shared is not beside the checkout)")
    done = subprocess.run(
        [sys.executable, str(CHECK_ARCHIVE), str(gate.archive)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout[-3000:]


@pytest.mark.parametrize("corpus", sorted(FLOORS))
def test_extraction_f1_floor(gate: GateRun, corpus: str) -> None:
    pages = [
        scoring.PageScore(doc_id, *scoring.score(gate.bodies.get((corpus, doc_id), ""), truth["articleBody"]))
        for doc_id, truth in sorted(scoring.ground_truth(corpus).items())
    ]
    total = scoring.aggregate(pages)
    floor, measured = FLOORS[corpus]
    summary = (
        f"{corpus}: {total.pages} pages, precision {total.precision:.3f} recall {total.recall:.3f} "
        f"F1 {total.f1:.4f} (floor {floor}, measured {measured})\nworst pages:\n{scoring.table(pages, 10)}"
    )
    print(summary)
    assert total.pages == len(scoring.ground_truth(corpus))
    assert total.f1 >= floor, summary
