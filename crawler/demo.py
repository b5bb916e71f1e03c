"""`crawler demo`: the whole product, offline, against a local news site generated from seeds/.

It serves the site on 127.0.0.1, writes a demo config next to its output, polls the site once exactly as the
service would, writes today's digest and prints where everything is.
"""

from __future__ import annotations

import shutil
import sys
from datetime import datetime
from pathlib import Path

import yaml

from crawler import report, runtime
from crawler.config import TOPICS_FILE, ConfigError, default_config_dir, load_config
from crawler.demo_site import serve_demo_site
from crawler.digest import write_digest_for
from crawler.resources import open_store
from crawler.service import poll_once

_CHECKOUT = Path(__file__).resolve().parents[1]
MARKER = ".crawler-demo"


def _first_existing(*candidates: Path | None) -> Path | None:
    return next((c for c in candidates if c is not None and c.exists()), None)


def run_demo(out: Path, seeds: Path | None, config_dir: Path | None) -> int:
    seeds_dir = _first_existing(seeds, Path("seeds"), _CHECKOUT / "seeds")
    if seeds_dir is None or not any(seeds_dir.glob("*.txt")):
        print(
            f"demo: no seed documents found (looked in {seeds or './seeds'}); pass --seeds DIR",
            file=sys.stderr,
        )
        return 1
    topics = _first_existing(
        (config_dir or default_config_dir()) / TOPICS_FILE, _CHECKOUT / "config" / TOPICS_FILE
    )
    out = out.resolve()
    _fresh_output(out)
    with serve_demo_site(seeds_dir) as site:
        print(f"demo site: {site.base_url}/ (feed {site.feed_url})", file=sys.stderr)
        config_path = _write_config(out, site.feed_url, topics)
        try:
            config = load_config(config_path)
        except ConfigError as exc:
            print("\n".join(exc.problems), file=sys.stderr)
            return 1
        with report.progress(len(config.sources)) as on_done:
            reports = runtime.run(lambda: poll_once(config, [], on_done))
    report.summary(reports)
    store = open_store(config)
    try:
        digest = write_digest_for(store, config, datetime.now(config.tz).date().isoformat())
    finally:
        store.close()
    print(f"archive: {config.data_dir / 'archive'}")
    print(f"digest:  {digest}")
    return 0


# What a demo run writes into its output folder; only these are ever removed by the next run.
DEMO_ENTRIES = ("archive", "digests", "config", "index.sqlite3", "schedule.sqlite3", "crawler.lock")


def _fresh_output(out: Path) -> None:
    """Start each demo from nothing, but never delete crawler data the demo did not write.

    Other files in the folder (a log, say) are left alone.
    """
    ours = [out / name for name in DEMO_ENTRIES if (out / name).exists()]
    ours += list(out.glob("index.sqlite3-*")) if out.exists() else []
    if ours and not (out / MARKER).exists():
        raise SystemExit(f"demo: {out} holds crawler data the demo did not write; choose another --out")
    for path in ours:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("created by `crawler demo`; its files are rewritten by the next demo run\n")


def _write_config(out: Path, feed_url: str, topics: Path | None) -> Path:
    folder = out / "config"
    folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "data_dir": "..",
        "timezone": "UTC",
        # Our own site on 127.0.0.1: no need to wait between requests, and loopback must be allowed.
        "fetch": {"delay": 0, "timeout": 10, "allow_private_networks": True},
    }
    # The seed stories are years old: the demo files them anyway (a real new source would not).
    sources = {"sources": [{"name": "demo", "url": feed_url, "kind": "feed", "backfill": True}]}
    (folder / "crawler.yaml").write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    (folder / "sources.yaml").write_text(yaml.safe_dump(sources, sort_keys=False), encoding="utf-8")
    if topics is not None:
        shutil.copyfile(topics, folder / TOPICS_FILE)
    return folder
