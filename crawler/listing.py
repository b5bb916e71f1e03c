"""The listing stage: an HTML index page without a feed -> the article links it shows, in page order.

A source's `links:` rule says which links are articles:

- `css:` or `xpath:` selects elements. Each selected element counts as follows: a link (`<a href>`, `<area
  href>`) is taken itself; any other element is a container whose `<a href>` descendants are all taken (so
  `ul.news li` and `ul.news li a` give the same links); an element with no link inside that sits inside one
  (`<a href><h3>Headline</h3></a>`, selected as `h3`) takes that enclosing link, titled by the element's text.
  Attribute values selected by XPath (`//ul[@class="news"]//a/@href`) are the addresses alone, untitled;
  selected text nodes are ignored.
- Without a selector every link of the page is a candidate.
- `allow:` regexes (any must match, when given) and `deny:` (none may match) are searched in the absolute URL.

With no rule at all (`auto` sources whose site has no feed), or a rule with neither selector nor `allow:`, the
default rule applies: links outside menus and the page footer that look like articles (`_looks_like_article`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote, urldefrag, urljoin, urlsplit

from lxml import etree
from parsel import Selector, css2xpath

from crawler.charset import decode_html
from crawler.config import LinkRule
from crawler.extract import clean_line
from crawler.models import FeedItem

# Menus and page footers repeat on every page and link to sections, not stories: the default rule skips them.
# A <footer> inside an <article> is a teaser's own footer ("Read more"), which is kept.
_DEFAULT_LINKS = (
    "//a[@href][not(ancestor::nav or ancestor::*[@role='navigation']"
    " or ancestor::footer[not(ancestor::article)])]"
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Path segments of pages that list, explain or sell rather than report (mostly English and Spanish, the
# languages of the first users' sites). A link with any of them is not an article for the default rule.
_NOT_ARTICLE_SEGMENTS = _words(
    """
    tag tags topic topics category categories author authors user users profile search login logout signin
    sign-in signup sign-up register account subscribe subscription newsletter newsletters about about-us
    contact contact-us contacts privacy privacy-policy terms terms-of-use terms-of-service tos cookies
    cookie-policy legal imprint impressum feed feeds rss atom sitemap page wp-admin wp-login.php wp-content
    cart checkout shop store donate advertise advertising careers jobs help faq share print comments
    etiqueta etiquetas categoria autor autores buscar busqueda contacto quienes-somos privacidad aviso-legal
    tema temas thema themen
    """
)
_FILE_EXTENSIONS = _words(
    """
    jpg jpeg png gif webp svg ico bmp tif tiff avif pdf doc docx xls xlsx ppt pptx odt ods zip rar gz 7z tar
    mp3 mp4 m4a wav ogg webm avi mov mkv css js json xml rss atom txt csv woff woff2 ttf eot exe dmg apk
    """
)
# Query parameters of search results, pagination and comment/share actions.
_NOT_ARTICLE_QUERY = _words("s q search query page paged replytocom share print action")
_INDEX_PAGES = _words("index default home main")
# A leading /en/ or /es-mx/ is a language, not depth: /en/news is a section like /news.
_LANGUAGE = re.compile(r"^[a-z]{2}(?:[-_][a-z]{2})?$")
# /2024/03/05/, /2024-03-05-slug, 20240305: article URLs often carry their date.
_DATE = re.compile(
    r"(?:^|[/_-])(?:19|20)\d{2}[/_-]?(?:0[1-9]|1[0-2])(?:[/_-]?(?:0[1-9]|[12]\d|3[01]))?(?:$|[/_.-])"
)
# kim-meets-maduro-in-caracas, news_12345.html, /12345: a slug of several words or a long number.
_SLUG = re.compile(r"\w+[-_]\w+[-_]\w+|\d{4,}")


class ListingError(Exception):
    """The source's link rule cannot be applied to the page; the message says why."""


def parse_listing(
    body: bytes, url: str, rule: LinkRule | None, content_type: str | None = None
) -> list[FeedItem]:
    """Article links of an index page: absolute http(s) URLs without fragment, once each, in page order."""
    text = decode_html(body, content_type)
    root = Selector(text=text or "<html></html>", type="html").root
    base_hrefs = root.xpath("//base/@href")
    base = urljoin(url, str(base_hrefs[0]).strip()) if base_hrefs else url
    use_default = rule is None or not (rule.css or rule.xpath or rule.allow)
    if rule is not None and (rule.css or rule.xpath):
        # Evaluated by lxml itself (parsel only translates the CSS): its results tell an attribute value
        # (a/@href) from a text node, which parsel's plain strings do not.
        expression = rule.xpath or css2xpath(rule.css or "")
        try:
            selected = root.xpath(expression)
        except etree.XPathEvalError as exc:
            # Compiles, so the config accepted it, but cannot run: an undefined prefix, function or variable.
            raise ListingError(f"links: the selector {expression!r} cannot be evaluated: {exc}") from None
    else:
        selected = root.xpath(_DEFAULT_LINKS if use_default else "//a[@href]")
    allow = [re.compile(p) for p in rule.allow] if rule else []
    deny = [re.compile(p) for p in rule.deny] if rule else []
    titles: dict[str, str | None] = {}  # insertion order is page order
    for href, title in _links(selected if isinstance(selected, list) else []):
        link = _absolute(base, href)
        if link is None:
            continue
        if allow and not any(p.search(link) for p in allow):
            continue
        if any(p.search(link) for p in deny):
            continue
        if use_default and not _looks_like_article(link, url):
            continue
        # A story is often linked twice (its picture, then its headline): first place, first real title.
        if titles.get(link) is None:
            titles[link] = title
    return [FeedItem(url=link, title=title) for link, title in titles.items()]


def _links(selected: list[Any]) -> Iterator[tuple[str, str | None]]:
    """(href, title) of each selected node: a link, a container of links, or an element inside a link."""
    for node in selected:
        if isinstance(node, etree._ElementUnicodeResult):
            if node.is_attribute:
                yield str(node), None  # an address selected as such (…/a/@href)
            continue  # a text node is a headline, not an address
        if not isinstance(node, etree._Element) or not isinstance(node.tag, str):
            continue  # a comment, or an XPath number or boolean
        if node.tag.lower() in ("a", "area"):
            href = node.get("href")
            if href is not None:
                yield href, _title(node)
            continue
        inner = node.xpath(".//a[@href]")
        if inner:
            yield from ((str(a.get("href")), _title(a)) for a in inner)
            continue
        outer = node.xpath("ancestor::a[@href][1]")
        if outer:
            yield str(outer[0].get("href")), _title(node) or _title(outer[0])


def _title(node: etree._Element) -> str | None:
    # The link's text without scripts and styles: some sites put JSON-LD inside their teaser links.
    text = clean_line("".join(node.xpath(".//text()[not(ancestor::script or ancestor::style)]")))
    if not text:
        # An image link: its title attribute or the picture's alt text may still name the story.
        alts = node.xpath(".//img/@alt")
        text = clean_line(node.get("title") or (str(alts[0]) if alts else ""))
    return text or None


def _absolute(base: str, href: str) -> str | None:
    href = href.strip()
    if not href or href.startswith("#"):
        return None  # a place on this page
    try:
        link, _fragment = urldefrag(urljoin(base, href))
        parts = urlsplit(link)
    except ValueError:
        return None  # e.g. an invalid IPv6 literal
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None  # mailto:, javascript:, tel:, data:
    return link


def _looks_like_article(link: str, page_url: str) -> bool:
    """The default rule: a link on the page's own site whose address looks like one story, not a section."""
    parts, page = urlsplit(link), urlsplit(page_url)
    if not _same_site(parts.hostname or "", page.hostname or ""):
        return False
    this_page = (page.netloc, page.path.rstrip("/"), page.query)
    if (parts.netloc, parts.path.rstrip("/"), parts.query) == this_page:
        return False  # the page itself
    segments = [unquote(s).lower() for s in parts.path.split("/") if s]
    if any(s in _NOT_ARTICLE_SEGMENTS for s in segments):
        return False
    last = segments[-1] if segments else ""
    stem, dot, extension = last.rpartition(".")
    if dot and extension in _FILE_EXTENSIONS:
        return False
    query = parse_qsl(parts.query)
    if any(key.lower() in _NOT_ARTICLE_QUERY for key, _value in query):
        return False
    if not query and (stem if dot else last) in _INDEX_PAGES:
        return False  # /news/index.html is the section's front page (index.php?p=123 is a story)
    if segments and _LANGUAGE.match(segments[0]):
        segments = segments[1:]
    # CMSs that address stories by number in the query (?p=123, ?articleId=4567) have shallow paths.
    numbered = any(value.isdigit() and len(value) >= 3 for _key, value in query)
    return len(segments) >= 2 or numbered or bool(_DATE.search(parts.path) or _SLUG.search(last))


def _same_site(host: str, page_host: str) -> bool:
    # Without the public suffix list, "the same site" is the same host up to www., or a subdomain of it
    # either way (news.example.org and example.org).
    a, b = host.lower().removeprefix("www."), page_host.lower().removeprefix("www.")
    return a == b or a.endswith("." + b) or b.endswith("." + a)
