"""Cost of the near-duplicate check as the archive grows: candidates found by Simhash banding.

Usage: python bench/neardup_scale.py [N ...]   (default: 10000 100000 1000000 archived items)

Fills a fresh index with N items spread over a year (random fingerprints, 8 bands each) and times
Store.near_candidates for new fingerprints within the 30-day window the crawler uses.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import insert

from crawler.dedup import bands
from crawler.store import Store, items, simbands


def fill(store: Store, n: int, rng: random.Random) -> None:
    start = date(2026, 1, 1)
    batch_items, batch_bands = [], []
    for i in range(1, n + 1):
        fp = rng.getrandbits(64)
        day = (start + timedelta(days=i * 365 // n)).isoformat()
        batch_items.append(
            {
                "id": i, "path": f"archive/{day}/{i:06d}.txt", "url": f"https://e.org/{i}", "source": "s",
                "title": "t", "fetched_at": day, "filed_day": day, "content_sha256": f"{i:064x}",
                "topics": "[]", "snippet": "", "scores": "{}", "simhash": f"{fp:016x}",
            }
        )  # fmt: skip
        batch_bands += [{"item_id": i, "band": b, "value": v, "day": day} for b, v in bands(fp)]
        if len(batch_items) == 20000 or i == n:
            with store.engine.begin() as conn:
                conn.execute(insert(items), batch_items)
                conn.execute(insert(simbands), batch_bands)
            batch_items, batch_bands = [], []


def main(sizes: list[int]) -> int:
    rng = random.Random(1)
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "index.sqlite3")
            t0 = time.perf_counter()
            fill(store, n, rng)
            filled = time.perf_counter() - t0
            since = (date(2026, 12, 31) - timedelta(days=30)).isoformat()
            probes = [rng.getrandbits(64) for _ in range(200)]
            t0 = time.perf_counter()
            found = sum(len(store.near_candidates(fp, since)) for fp in probes)
            per_check = (time.perf_counter() - t0) / len(probes)
            store.close()
        print(
            f"{n:>9} items: near-duplicate check {per_check * 1000:.2f} ms"
            f" ({found / len(probes):.1f} candidates per check; index filled in {filled:.0f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main([int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000]))
