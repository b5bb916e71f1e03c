"""The offline demo site: a small news site generated from the documents in seeds/.

The seeds are raw scrapes: besides the article they carry the page furniture their scraper swallowed (an icon
font's glyph names, datelines, "- Advertisement -", newsletter prompts, a "More From" sidebar...). To give the
crawler something realistic to chew on, `read_seed` separates the article from that furniture, and
`build_site` puts the furniture back where a real site shows it (header, sidebar, footer, ad slots, figure
captions, a comments box) around a clean <article>. A round trip through trafilatura must then give back
exactly the article paragraphs: that is what the demo and its tests check.

`serve_demo_site` serves the pages from a real HTTP server on 127.0.0.1, on a free port.
"""

from __future__ import annotations

import html
import json
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urlsplit

SITE_NAME = "Meridian Monitor"
# Feed items need a pubDate; seeds without a date line get this one, fixed so the output is deterministic.
UNDATED = datetime(2026, 1, 20, 9, 0, tzinfo=UTC)

Pages = dict[str, tuple[str, bytes]]
HTML_TYPE = "text/html; charset=utf-8"


# --- reading a seed -------------------------------------------------------------------------------

# Date lines the seeds carry, with the strptime format that reads each one.
DATE_LINES: tuple[tuple[re.Pattern[str], str], ...] = (
    # "September 17, 2022": 002, and the dates in 000's sidebar
    (re.compile(r"^[A-Z][a-z]+ \d{1,2}, \d{4}$"), "%B %d, %Y"),
    # "29 Sep, 2023 18:28": RT's dateline (004)
    (re.compile(r"^\d{1,2} [A-Z][a-z]{2}, \d{4} \d{1,2}:\d{2}$"), "%d %b, %Y %H:%M"),
)

# Lines that are page furniture wherever they occur, by kind: the kind decides where build_site puts the line
# back on the page. Each pattern matches a whole line's shape, not a word in it, so that article text that
# merely mentions "comments" or "advertisement" stays article text. Case-insensitive; the first match wins.
FURNITURE_PATTERNS: tuple[tuple[str, str], ...] = (
    # An SVG icon sprite's <title>s run together ("icon bookmark-bicon bookmarkicon camera..."): RT (004).
    ("icons", r"^icon\b(?:.*?icon){5,}"),
    # The ad slot label of WordPress news themes (001).
    ("ad", r"^-?\s*advertisement\s*-?$"),
    # The newsletter sign-up box under the article, its heading and its pitch (001).
    ("newsletter", r"^subscribe to our newsletter$"),
    ("newsletter", r"^sign up here to get the latest news\b"),
    # The comments box heading and its help line (003, Breitbart).
    ("comments", r"^comments$"),
    ("comments", r"^please let us know if you're having issues with commenting\b"),
    # Footer copyright ("2023 © All rights reserved.", 002).
    ("copyright", r"^(?:\d{4}\s*)?(?:©|copyright\b)"),
    ("copyright", r"\ball rights reserved\.?$"),
    # Photo credit under the lead image ("AP Photo/Ariana Cubillos, ...", 003).
    ("credit", r"^(?:AP|AFP|EPA|Reuters) Photo/"),
    ("credit", r"^(?:Photo|Image|Credit): "),
)
FURNITURE_LINES = tuple((kind, re.compile(p, re.IGNORECASE)) for kind, p in FURNITURE_PATTERNS)

# A line that starts a block of furniture running to the end of the page: the related-headlines sidebar of the
# DPRK foreign ministry's site (000), a list of other headlines and their dates, then "More Articles".
SIDEBAR_START = re.compile(r"^More (?:From|Articles)\b")


@dataclass(frozen=True, slots=True)
class Placed:
    """One furniture line with its kind and its position: the number of article paragraphs before it."""

    kind: str
    text: str
    after: int


@dataclass(frozen=True, slots=True)
class SeedStory:
    """A seed document split into the article a reader recognises and the furniture around it."""

    slug: str  # the file name without .txt, e.g. "000_85f3c6427496f1b0"
    title: str
    published: datetime | None  # timezone-aware (UTC), from a date line; None when the seed has none
    paragraphs: tuple[str, ...]  # the article text, verbatim, in order
    furniture: tuple[str, ...]  # every line that is not article text, in order
    placed: tuple[Placed, ...] = ()  # the same lines with kind and position, for build_site

    @property
    def path(self) -> str:
        return f"/news/{self.slug}.html"


def parse_date_line(line: str) -> datetime | None:
    """The date of a line that is nothing but a date, else None."""
    for pattern, fmt in DATE_LINES:
        if pattern.match(line):
            return datetime.strptime(line, fmt).replace(tzinfo=UTC)
    return None


def line_kind(line: str, title: str | None) -> str | None:
    """The furniture kind of a line outside the sidebar, or None for article text (or the title itself)."""
    if parse_date_line(line):
        return "dateline"
    if title is not None and line == title:
        return "title"  # the headline printed a second time (004: once in the header, once over the text)
    for kind, pattern in FURNITURE_LINES:
        if pattern.search(line):
            return kind
    return None


def read_seed(path: str | Path) -> SeedStory:
    """Split one seed file into title, date, paragraphs and furniture.

    Blank lines carry no meaning (some seeds separate paragraphs with them, 000 does not), so every non-blank
    line is either the title, a paragraph or a furniture line.
    """
    path = Path(path)
    lines = [s for s in (raw.strip() for raw in path.read_text("utf-8").split("\n")) if s]
    body, sidebar = _split_sidebar(lines)
    title: str | None = None
    kinds: list[str | None] = []
    for line in body:
        kind = line_kind(line, title)
        if kind is None and title is None:
            title, kind = line, "headline"  # the first line that is not furniture is the headline
        kinds.append(kind)
    if title is None:
        raise ValueError(f"{path}: no title line")
    _mark_captions(kinds)
    return _assemble(path.stem, title, body, kinds, sidebar)


def _split_sidebar(lines: list[str]) -> tuple[list[str], list[str]]:
    """Cut the lines at the start of a related-headlines sidebar: all of it is furniture."""
    for i, line in enumerate(lines):
        if SIDEBAR_START.match(line):
            return lines[:i], lines[i:]
    return lines, []


def _mark_captions(kinds: list[str | None]) -> None:
    """A photo caption is the text line printed right above a photo credit; it is not article text.

    Captions have no pattern of their own (003's is a sentence cut short): only their place tells them apart.
    """
    for i in range(1, len(kinds)):
        if kinds[i] == "credit" and kinds[i - 1] is None:
            kinds[i - 1] = "caption"


def _assemble(
    slug: str, title: str, body: list[str], kinds: list[str | None], sidebar: list[str]
) -> SeedStory:
    paragraphs: list[str] = []
    placed: list[Placed] = []
    for line, kind in zip(body, kinds, strict=True):
        if kind is None:
            paragraphs.append(line)
        elif kind != "headline":
            placed.append(Placed(kind, line, len(paragraphs)))
    placed.extend(Placed("sidebar", line, len(paragraphs)) for line in sidebar)
    dates = [parse_date_line(p.text) for p in placed if p.kind == "dateline"]
    return SeedStory(
        slug=slug,
        title=title,
        published=dates[0] if dates else None,
        paragraphs=tuple(paragraphs),
        furniture=tuple(p.text for p in placed),
        placed=tuple(placed),
    )


def read_seeds(seeds_dir: str | Path) -> tuple[SeedStory, ...]:
    """Every seed of a folder, in file-name order (the order of the seeds' numbers)."""
    return tuple(read_seed(p) for p in sorted(Path(seeds_dir).glob("*.txt")))


# --- building the site ----------------------------------------------------------------------------


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def build_site(stories: Sequence[SeedStory], base_url: str) -> Pages:
    """Every page of the site by URL path: (Content-Type header value, body)."""
    base_url = base_url.rstrip("/")
    pages: Pages = {
        "/": (HTML_TYPE, home_page(stories, base_url).encode("utf-8")),
        "/feed.xml": ("application/rss+xml; charset=utf-8", rss_feed(stories, base_url)),
        "/robots.txt": ("text/plain; charset=utf-8", b"User-agent: *\nAllow: /\n"),
    }
    for story in stories:
        pages[story.path] = (HTML_TYPE, article_page(story, stories, base_url).encode("utf-8"))
        if _pieces(story, "caption", "credit"):
            pages[_image_path(story)] = ("image/svg+xml; charset=utf-8", _placeholder_image(story))
    return pages


def _pieces(story: SeedStory, *kinds: str) -> list[Placed]:
    return [p for p in story.placed if p.kind in kinds]


def _image_path(story: SeedStory) -> str:
    return f"/images/{story.slug}.svg"


def _placeholder_image(story: SeedStory) -> bytes:
    # A grey box, so the lead image of a story with a photo credit does not 404.
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="675" viewBox="0 0 1200 675">'
        f'<rect width="1200" height="675" fill="#ccc"/><title>{esc(story.title)}</title></svg>'
    ).encode()


def _time(story: SeedStory) -> str:
    """The story's <time> element, or nothing when its date is unknown."""
    if story.published is None:
        return ""
    return f'<time datetime="{story.published.isoformat()}">{esc(_display_date(story))}</time>'


def _display_date(story: SeedStory) -> str:
    """The date as the story's site printed it (its dateline), else in our house style."""
    datelines = _pieces(story, "dateline")
    if datelines:
        return datelines[0].text
    assert story.published is not None
    return story.published.strftime("%B %d, %Y")


# The parts every page shares. Real sites place these outside <main>/<article>; so do we.
COOKIE_BANNER = """\
<div class="cookie-banner" role="dialog" aria-live="polite" aria-label="Cookie consent">
  <p>We use cookies and similar technologies to personalise content and ads and to analyse our traffic.
  <a href="/privacy">Read our privacy policy</a>.</p>
  <button type="button" class="cookie-accept">Accept all</button>
  <button type="button" class="cookie-settings">Manage choices</button>
</div>"""

NAV_SECTIONS = ("World", "Latin America", "Asia-Pacific", "Russia", "Economy", "Opinion")

STYLE = """\
body{font-family:Georgia,serif;margin:0;color:#222}
.site-header,.site-footer{background:#1d3557;color:#fff;padding:1em}
.site-header a,.site-footer a{color:#fff}
.main-nav ul,.share,.site-footer ul{list-style:none;display:flex;gap:1em;padding:0}
.layout{display:grid;grid-template-columns:3fr 1fr;gap:2em;max-width:1100px;margin:auto}
.cookie-banner{position:fixed;bottom:0;left:0;right:0;background:#f1faee;padding:1em}
.ad-slot{background:#eee;text-align:center;font-size:.8em;padding:2em}"""


def _head(title: str, canonical: str, extra: str = "") -> str:
    return f"""\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} | {SITE_NAME}</title>
<link rel="canonical" href="{esc(canonical)}">
<link rel="alternate" type="application/rss+xml" title="{SITE_NAME}" href="/feed.xml">
<style>
{STYLE}
</style>
{extra}</head>"""


def _site_header(icon_sprite: str = "") -> str:
    items = "".join(f'<li><a href="/section/{_slugify(s)}">{esc(s)}</a></li>' for s in NAV_SECTIONS)
    return f"""\
{icon_sprite}{COOKIE_BANNER}
<header class="site-header">
  <a class="logo" href="/" rel="home">{SITE_NAME}</a>
  <nav class="main-nav" aria-label="Sections"><ul><li><a href="/">Home</a></li>{items}</ul></nav>
  <form class="search" action="/search" role="search"><input type="search" name="q" placeholder="Search">
  <button type="submit">Search</button></form>
</header>"""


def _site_footer(copyright_lines: Iterable[str]) -> str:
    lines = list(copyright_lines) or [f"© 2026 {SITE_NAME}. All rights reserved."]
    notices = "".join(f'<p class="copyright">{esc(line)}</p>' for line in lines)
    return f"""\
<footer class="site-footer">
  <ul><li><a href="/about">About us</a></li><li><a href="/contact">Contact</a></li>
  <li><a href="/privacy">Privacy policy</a></li><li><a href="/terms">Terms of use</a></li>
  <li><a href="/feed.xml">RSS</a></li></ul>
  {notices}
</footer>
</body>
</html>
"""


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def home_page(stories: Sequence[SeedStory], base_url: str) -> str:
    """The front page: the headlines, each linking to its story."""
    items = "\n".join(
        f'<li><h2><a href="{esc(s.path)}">{esc(s.title)}</a></h2>{_time(s)}</li>' for s in stories
    )
    return f"""\
{_head("Latest news", base_url + "/")}
<body>
{_site_header()}
<main>
<h1>Latest news</h1>
<ul class="headlines">
{items}
</ul>
</main>
{_site_footer([])}"""


def article_page(story: SeedStory, stories: Sequence[SeedStory], base_url: str) -> str:
    """One story's page: the clean <article> inside the furniture a real news site wraps around it."""
    url = base_url + story.path
    # RT ships an SVG sprite of its icons at the top of <body>; scrapers that keep <title>s read it as text.
    icons = "".join(
        f'<svg class="icon-sprite" aria-hidden="true" style="display:none"><title>{esc(p.text)}</title>'
        "</svg>\n"
        for p in _pieces(story, "icons")
    )
    return f"""\
{_head(story.title, url, _article_meta(story, url))}
<body class="single-article">
{_site_header(icons)}
<nav class="breadcrumb" aria-label="Breadcrumb"><ol><li><a href="/">Home</a></li>
<li><a href="/section/world">World</a></li>
<li aria-current="page">{esc(_breadcrumb_title(story))}</li></ol></nav>
<div class="layout">
<main id="content">
{_article(story, url)}
{_newsletter_box(story)}
{_comments_box(story)}
</main>
{_sidebar(story, stories)}
</div>
{_site_footer(p.text for p in _pieces(story, "copyright"))}"""


def _breadcrumb_title(story: SeedStory) -> str:
    # Where a seed repeats its headline (004), the repeat is the breadcrumb's last crumb.
    repeats = _pieces(story, "title")
    return repeats[0].text if repeats else story.title


def _article_meta(story: SeedStory, url: str) -> str:
    """Open Graph tags and a schema.org NewsArticle block, as news sites ship them for search engines."""
    data: dict[str, object] = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": story.title,
        "mainEntityOfPage": url,
        "publisher": {"@type": "Organization", "name": SITE_NAME},
    }
    tags = [
        '<meta property="og:type" content="article">',
        f'<meta property="og:title" content="{esc(story.title)}">',
        f'<meta property="og:url" content="{esc(url)}">',
        f'<meta property="og:site_name" content="{SITE_NAME}">',
        f'<meta name="description" content="{esc(_teaser(story))}">',
    ]
    if story.published:
        data["datePublished"] = story.published.isoformat()
        tags.append(f'<meta property="article:published_time" content="{story.published.isoformat()}">')
    # Markup characters inside <script> can end it early ("</script>") or confuse the HTML parser ("<!--");
    # JSON's \u escapes say the same thing without them.
    ld = json.dumps(data, ensure_ascii=False, indent=1)
    ld = ld.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return "\n".join(tags) + f'\n<script type="application/ld+json">\n{ld}\n</script>\n'


def _teaser(story: SeedStory, limit: int = 200) -> str:
    first = story.paragraphs[0] if story.paragraphs else ""
    return first if len(first) <= limit else first[: limit - 1].rsplit(" ", 1)[0] + "…"


def _article(story: SeedStory, url: str) -> str:
    """The <article>: headline, byline and date, lead image, the paragraphs with any ad slots between them."""
    body: list[str] = []
    ads = _pieces(story, "ad")
    for i, paragraph in enumerate(story.paragraphs):
        body.extend(_ad_slot(ad.text) for ad in ads if ad.after == i)
        body.append(f"<p>{esc(paragraph)}</p>")
    body.extend(_ad_slot(ad.text) for ad in ads if ad.after >= len(story.paragraphs))
    paragraphs = "\n".join(body)
    return f"""\
<article class="story">
<header class="story-header">
<h1>{esc(story.title)}</h1>
<div class="byline">By {SITE_NAME} staff {_time(story)}</div>
{_share_buttons(story, url)}
</header>
{_lead_figure(story)}
<div class="article-body" itemprop="articleBody">
{paragraphs}
</div>
</article>"""


def _ad_slot(label: str) -> str:
    return f'<div class="ad-slot" aria-hidden="true"><span class="ad-label">{esc(label)}</span></div>'


def _share_buttons(story: SeedStory, url: str) -> str:
    u, t = quote(url, safe=""), quote(story.title, safe="")
    targets = (
        ("Facebook", f"https://www.facebook.com/sharer/sharer.php?u={u}"),
        ("X", f"https://twitter.com/intent/tweet?url={u}&text={t}"),
        ("Telegram", f"https://t.me/share/url?url={u}&text={t}"),
        ("Email", f"mailto:?subject={t}&body={u}"),
    )
    links = "".join(f'<li><a href="{esc(href)}" rel="nofollow noopener">{n}</a></li>' for n, href in targets)
    return f'<ul class="share" aria-label="Share this story">{links}</ul>'


def _lead_figure(story: SeedStory) -> str:
    """The lead photo, with the seed's caption and credit in its <figcaption>."""
    parts = _pieces(story, "caption", "credit")
    if not parts:
        return ""
    caption = " ".join(f'<span class="{p.kind}">{esc(p.text)}</span>' for p in parts)
    alt = next((p.text for p in parts if p.kind == "caption"), story.title)
    return f"""\
<figure class="lead-image">
<img src="{_image_path(story)}" alt="{esc(alt)}" width="1200" height="675">
<figcaption>{caption}</figcaption>
</figure>"""


def _newsletter_box(story: SeedStory) -> str:
    lines = _pieces(story, "newsletter")
    if not lines:
        return ""
    heading, *rest = (p.text for p in lines)
    text = "".join(f"<p>{esc(t)}</p>" for t in rest)
    return f"""\
<div class="newsletter-signup">
<h3>{esc(heading)}</h3>{text}
<form action="/newsletter" method="post"><input type="email" name="email" placeholder="Your email address">
<button type="submit">Subscribe</button></form>
</div>"""


def _comments_box(story: SeedStory) -> str:
    lines = _pieces(story, "comments")
    if not lines:
        return ""
    heading, *rest = (p.text for p in lines)
    text = "".join(f"<p>{esc(t)}</p>" for t in rest)
    return f"""\
<section id="comments" class="comments">
<h2>{esc(heading)}</h2>{text}
<div id="disqus_thread"></div>
</section>"""


def _sidebar(story: SeedStory, stories: Sequence[SeedStory]) -> str:
    """The other stories' headlines, then the seed's own related-headlines block (000's "More From")."""
    others = "".join(
        f'<li><a href="{esc(s.path)}">{esc(s.title)}</a></li>' for s in stories if s.slug != story.slug
    )
    return f"""\
<aside class="sidebar">
<section class="latest"><h2>Latest news</h2><ul>{others}</ul></section>
{_related_block([p.text for p in _pieces(story, "sidebar")])}
</aside>"""


def _related_block(lines: list[str]) -> str:
    """000's "More From ..." block: a heading, then headline / date / teaser triples, then "More Articles"."""
    if not lines:
        return ""
    heading, *rest = lines
    more = ""
    if rest and SIDEBAR_START.match(rest[-1]):
        more = f'<a class="more" href="/">{esc(rest.pop())}</a>'
    items: list[list[str]] = []
    for line in rest:
        if parse_date_line(line) and items:
            items[-1].append(f"<time>{esc(line)}</time>")
        elif items and len(items[-1]) == 2:
            items[-1].append(f'<p class="teaser">{esc(line)}</p>')  # the headline again, as a teaser
        else:
            items.append([f'<a href="/">{esc(line)}</a>'])
    lis = "\n".join(f"<li>{''.join(item)}</li>" for item in items)
    return f'<section class="more-from"><h2>{esc(heading)}</h2>\n<ul>\n{lis}\n</ul>\n{more}</section>'


# --- the feed -------------------------------------------------------------------------------------

ATOM_NS = "http://www.w3.org/2005/Atom"


def rss_feed(stories: Sequence[SeedStory], base_url: str) -> bytes:
    """RSS 2.0 with one <item> per story, in seed order."""
    ET.register_namespace("atom", ATOM_NS)
    rss = ET.Element("rss", version="2.0")
    channel = ET.SubElement(rss, "channel")
    _text(channel, "title", SITE_NAME)
    _text(channel, "link", base_url + "/")
    _text(channel, "description", "News from Latin America, the DPRK and their partners.")
    _text(channel, "language", "en")
    ET.SubElement(
        channel, f"{{{ATOM_NS}}}link", href=base_url + "/feed.xml", rel="self", type="application/rss+xml"
    )
    dates = [s.published or UNDATED for s in stories]
    if dates:
        _text(channel, "lastBuildDate", format_datetime(max(dates)))
    for story, date in zip(stories, dates, strict=True):
        item = ET.SubElement(channel, "item")
        _text(item, "title", story.title)
        _text(item, "link", base_url + story.path)
        _text(item, "guid", base_url + story.path).set("isPermaLink", "true")
        _text(item, "pubDate", format_datetime(date))
        _text(item, "description", story.paragraphs[0] if story.paragraphs else "")
    ET.indent(rss)
    return ET.tostring(rss, encoding="utf-8", xml_declaration=True)


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


# --- serving it -----------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Serves the prebuilt pages of the server it belongs to; 404 for anything else."""

    server: DemoServer
    # HTTP/1.0 (the default): one request per connection, so no idle keep-alive connection outlives close().

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, with_body: bool) -> None:
        page = self.server.pages.get(urlsplit(self.path).path)
        status, (ctype, body) = (200, page) if page else (404, ("text/plain; charset=utf-8", b"Not found\n"))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the demo prints its own summary; a line per request would drown it


class DemoServer(ThreadingHTTPServer):
    """The HTTP server, holding the pages its handlers answer with."""

    daemon_threads = True  # a stuck client must not keep the process alive
    pages: Pages  # set once the port is known, before serving starts


@dataclass
class DemoSite:
    """A running demo site: where it is and what it serves."""

    base_url: str
    stories: tuple[SeedStory, ...]
    pages: Pages
    _server: DemoServer
    _thread: threading.Thread

    @property
    def feed_url(self) -> str:
        return self.base_url + "/feed.xml"

    def url(self, story: SeedStory) -> str:
        return self.base_url + story.path

    def close(self) -> None:
        self._server.shutdown()  # stops serve_forever and waits for it
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def serve_demo_site(seeds_dir: str | Path) -> Iterator[DemoSite]:
    """Serve the site built from seeds_dir on 127.0.0.1, a free port, until the block ends."""
    stories = read_seeds(seeds_dir)
    server = DemoServer(("127.0.0.1", 0), _Handler)
    # The pages hold absolute URLs (canonical, feed links), so they can only be built once the port is known.
    host, port = server.server_address[:2]
    base_url = f"http://{host!s}:{port}"
    server.pages = build_site(stories, base_url)
    thread = threading.Thread(target=server.serve_forever, name="demo-site", daemon=True)
    thread.start()
    site = DemoSite(base_url, stories, server.pages, server, thread)
    try:
        yield site
    finally:
        site.close()
