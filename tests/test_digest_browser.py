"""The HTML digest in a real browser: headless Chromium (Debian's chromium package) renders D.html.

From a screenshot: the page is not blank and the bar chart is drawn. From the DOM: a title containing
"<script>alert(1)</script>" is shown as text and creates no script element. tests/install_chromium.sh installs
the browser where it can (root with apt-get); elsewhere these tests skip, saying why. Chromium only ever opens
file:// URLs of this test's own files, with networking features switched off.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import html as lxml_html
from test_digest import add

from crawler.digest import DigestOptions, write_digest
from crawler.store import PollRow, Store

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT = 60  # seconds for one browser run (it takes about one)
EVIL = "Kim meets <script>alert(1)</script> Maduro"
DAY = "2024-03-05"
ACCENT = (0x2F, 0x66, 0x90)  # the chart's bar colour in the packaged template

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run Chromium once on a fresh profile under `tmp`, bounded in time."""
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    env = {**os.environ, "HOME": str(tmp)}  # nothing written to the real home folder
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        cwd=tmp,
    )


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch folder for Chromium, once it is known to start; skips the module when it cannot."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is absent: run tests/install_chromium.sh (Debian's chromium package, as root)"
        )
    tmp = tmp_path_factory.mktemp("chromium")
    probe = tmp / "probe.html"
    probe.write_text("<!DOCTYPE html><title>probe</title><p id=ok>ok</p>", encoding="utf-8")
    try:
        result = chromium(tmp, "--dump-dom", probe.as_uri())
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"{CHROMIUM} failed to start: {exc}")
    if result.returncode != 0 or 'id="ok"' not in result.stdout:
        pytest.skip(f"{CHROMIUM} failed to start (exit {result.returncode}): {result.stderr.strip()[-500:]}")
    return tmp


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """D.html of a day with a hostile title, a near-duplicate reported by others and a failing source."""
    tmp = tmp_path_factory.mktemp("digest")
    store = Store(tmp / "index.sqlite3")
    try:
        add(store, "2024-03-04", "Yesterday's story", ["dprk"], scores={"dprk": 2})
        add(
            store,
            DAY,
            EVIL,
            ["dprk", "latin_america"],
            scores={"dprk": 6, "latin_america": 3},
            body="<script>alert(2)</script> " + "Officials met in Caracas to sign a treaty. " * 10,
            also=[("telesur", "https://telesur.example/a"), ("rt", "javascript:alert(3)")],
        )
        add(store, DAY, "Lavrov in Havana", ["russia"], source="tass", scores={"russia": 2})
        add(store, DAY, "Weather report", [])
        store.record_poll(DAY, PollRow("kcna", 3, 0, 0, None, []))
        store.record_poll(DAY, PollRow("rt", 0, 0, 0, "HTTP 500", []))
        md = write_digest(
            store,
            tmp / "data",
            DAY,
            ["dprk", "latin_america", "russia"],
            options=DigestOptions(),
        )
    finally:
        store.close()
    yield md.with_suffix(".html")


def test_screenshot_is_not_blank_and_shows_the_chart(browser: Path, page: Path) -> None:
    image_module = pytest.importorskip("PIL.Image", reason="Pillow is needed to read the screenshot")
    shot = browser / "shot.png"
    result = chromium(browser, "--window-size=1000,1200", f"--screenshot={shot}", page.as_uri())
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    with image_module.open(shot) as img:
        rgb = img.convert("RGB")
        assert rgb.size == (1000, 1200)
        data = rgb.tobytes()
    pixels = list(zip(data[0::3], data[1::3], data[2::3], strict=True))
    inked = sum(1 for r, g, b in pixels if min(r, g, b) < 200)
    assert inked / len(pixels) > 0.01, f"only {inked} dark pixels: the page looks blank"
    # The SVG bars are drawn in the accent colour: a few thousand pixels of it.
    bars = sum(1 for p in pixels if all(abs(a - b) <= 8 for a, b in zip(p, ACCENT, strict=True)))
    assert bars > 1000, f"{bars} pixels in the bars' colour: the chart is missing"


def test_script_in_a_title_is_shown_as_text(browser: Path, page: Path) -> None:
    result = chromium(browser, "--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # serialised as text...
    doc = lxml_html.fromstring(dom)
    assert doc.xpath("//script") == []  # ...and no script element was created, from it or anything else
    headings = [h.text_content().strip() for h in doc.xpath("//article/h3")]
    assert any(h.startswith(EVIL) for h in headings), headings
    quotes = [q.text_content() for q in doc.xpath("//blockquote")]
    assert any(q.startswith("<script>alert(2)</script> Officials met") for q in quotes)
    # The near-duplicate's other sources are listed; a javascript: address is not made a link.
    also = doc.xpath("//p[@class='also']")[0]
    assert also.text_content().strip() == "Also reported by: telesur, rt"
    assert [a.get("href") for a in also.xpath(".//a")] == ["https://telesur.example/a"]
    hrefs = [a.get("href") for a in doc.xpath("//a")]
    assert not [h for h in hrefs if h.lower().startswith(("javascript:", "data:"))]
    assert doc.xpath("//svg//rect") or doc.xpath("//*[local-name()='svg']//*[local-name()='rect']")
