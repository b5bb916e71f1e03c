"""The extraction stage: an article page -> an Article in the archive's text format (trafilatura).

Runs in worker processes (see crawler.workers), never on the event loop: trafilatura costs tens of
milliseconds of CPU per page. Inputs and outputs are plain data so they cross the process boundary cheaply.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

import trafilatura
from lxml import html as lxml_html
from trafilatura.settings import Document
from w3lib.encoding import html_to_unicode

from crawler.models import Article

MAX_TITLE = 300

# Characters that are not text: C0/C1 controls (tab and newline are handled as white space), zero-width marks
# and the BOM. They turn up in pasted CMS content and would make otherwise equal texts hash differently.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff]")
_SPACES = re.compile(r"\s+")


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """Decode a page the way browsers do: BOM, then the HTTP charset, then <meta charset>, then a guess."""
    _encoding, text = html_to_unicode(content_type, body)
    return text


def clean_line(text: str) -> str:
    """One paragraph or title as a single NFC line without invisible characters or runs of spaces."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFC", text))
    return _SPACES.sub(" ", text).strip()


def extract_article(
    body: bytes, url: str, content_type: str | None = None, fallback_title: str | None = None
) -> Article | None:
    """Extract the main text of a page; None when the page holds no article text."""
    # Control characters make lxml (and so trafilatura) give up on the whole page; they are never text.
    html = _INVISIBLE.sub("", decode_html(body, content_type))
    if not html.strip():
        return None
    try:
        tree = lxml_html.document_fromstring(html)
    except (ValueError, lxml_html.etree.ParserError):
        return None
    # Read what we need from the page before trafilatura, which prunes the tree it is given.
    language = _language(tree)
    canonical = _canonical(tree)
    doc = trafilatura.bare_extraction(
        tree,
        url=url,
        include_comments=False,  # reader comments are not the article
        include_tables=True,
        with_metadata=True,
        # deduplicate stays off: it keeps a process-wide cache that changes later extractions.
    )
    if not isinstance(doc, Document) or not doc.text:
        return None
    title = clean_line(doc.title or fallback_title or "")
    paragraphs = _paragraphs(doc.text, title)
    if not paragraphs:
        return None
    if not title:
        title = paragraphs[0]
    return Article(
        title=_shorten(title),
        paragraphs=tuple(paragraphs),
        published=_page_date(doc.date),
        language=language or (doc.language or None),
        canonical_url=canonical,
    )


def _paragraphs(text: str, title: str) -> list[str]:
    # trafilatura's txt output puts each block (paragraph, heading, list item) on its own line.
    out: list[str] = []
    for raw in text.split("\n"):
        line = clean_line(raw)
        if not line or (out and out[-1] == line):
            continue
        if not out and line == title:
            continue  # many pages repeat the headline as the first block
        out.append(line)
    return out


def _shorten(title: str) -> str:
    if len(title) <= MAX_TITLE:
        return title
    cut = title[: MAX_TITLE - 1].rsplit(" ", 1)[0]
    return cut + "…"


def _page_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _language(tree: lxml_html.HtmlElement) -> str | None:
    lang = (tree.get("lang") or tree.get("{http://www.w3.org/XML/1998/namespace}lang") or "").strip()
    if not lang:
        metas = tree.xpath("//meta[@http-equiv='content-language' or @property='og:locale']/@content")
        lang = str(metas[0]).strip() if metas else ""
    return lang.replace("_", "-").split("-")[0].lower() or None if lang else None


def _canonical(tree: lxml_html.HtmlElement) -> str | None:
    for href in tree.xpath("//link[@rel='canonical']/@href | //meta[@property='og:url']/@content"):
        href = str(href).strip()
        if href.startswith(("http://", "https://")):
            return href
    return None
