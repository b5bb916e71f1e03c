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

from crawler.charset import decode_html
from crawler.models import Article

MAX_TITLE = 300

# Characters that are not text: C0/C1 controls (tab and newline are handled as white space), zero-width marks
# and the BOM. They turn up in pasted CMS content and would make otherwise equal texts hash differently.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff]")
_WORD = re.compile(r"\w+")
# Link blocks: at most this long (a related-story teaser; a paragraph of prose is longer), made of link texts
# of at least _MIN_LINK_TEXT characters, with at most this share of their words outside them.
_MAX_LINK_BLOCK = 300
_MIN_LINK_TEXT = 4
_LINK_REST = 0.2
# Furniture, in the languages of the sources (en, de, fr, es, pt, it, ru, nl, nordic, ko, ja): a block that is
# only a label; a block that starts as a pointer to other stories; a block with a prompt or a credit in it.
_MAX_FURNITURE = 300
_FURNITURE_LINE = re.compile(
    r"(?:advertisement|advertising|anzeige|werbung|publicité|publicidad|pubblicità|publicidade|reklame"
    r"|annonse|annons|advertentie|реклама|sponsored|passer la publicité|story continues below"
    r"|advertisement\s*\d*\s*story continues below.*|article content"
    r"|comments?|kommentare|commentaires|comentarios|comentários|commenti|комментарии"
    r"|share( this)?( article| story| post)?|teilen|partager|compartir|partilhar|condividi|поделиться"
    r"|print( article)?|order reprints|sorry|thank you|thanks for signing up|don'?t miss|explore further"
    r"|more|auch interessant|mehr zum thema|das könnte sie auch interessieren|you may also like"
    r"|(most|more) (read|popular)( in [\w ]+)?|related( stories| articles| posts)?|read more|mehr lesen"
    r"|lire (aussi|plus)|à lire aussi|leer más|lee también|leia (também|mais)|leggi anche|читайте также)"
    r"[\s:.!…|]*",
    re.IGNORECASE,
)
_FURNITURE_START = re.compile(
    r"(?:read more|see more|read also|also read|related( post| story| article)?|also|more|watch"
    r"|lesen sie (auch|mehr|hier)|mehr (zum thema|dazu)|siehe auch|à lire aussi|lire aussi|voir aussi"
    r"|lee también|leer más|ver también|leia também|veja também|leggi anche|leggi anche su|читайте также"
    r"|les også|læs også|läs också|lees ook)\s*:",
    re.IGNORECASE,
)
_FURNITURE_IN = re.compile(
    r"(?:\b(sign up|subscribe|register)\b.{0,60}\bnewsletters?\b"
    r"|\bnewsletters?\b.{0,40}\b(abonnieren|anmelden)|(inscrivez-vous|abonnez-vous).{0,60}newsletter"
    r"|(suscríbete|suscribete|regístrate).{0,60}(boletín|newsletter)"
    r"|\b(in|to) your inbox\b|thanks for signing up|error processing your subscription"
    r"|^click here\b|\bclick here to (subscribe|get|download|sign up|read)|^klicken sie hier"
    r"|^follow (us|[@\w]+( [\w]+)?) on (twitter|facebook|instagram|x|linkedin|youtube)"
    r"|for your personal,? non-commercial use only|^fehler gefunden|an error has occurred"
    r"|^copyright\b|^©|\ball rights reserved|alle rechte vorbehalten|tous droits réservés"
    r"|todos los derechos reservados|무단전재|無断転載"
    r"|^(photo|foto|bild|image|picture|credit|photograph|fotó|zdjęcie)s?\s*:"
    r"|\b(photo|foto|bild|credit|fotó)s?\s*:\s*[^.:]{1,60}$|\(credit:|getty images\)?$|^(photos?|fotos?) ©)",
    re.IGNORECASE,
)
# Literals one of which every _FURNITURE_IN branch needs (compared casefolded): a line without any is not
# searched, which spares the regex on nearly every line of an article (it tries each branch at each position).
_FURNITURE_HINTS = tuple(
    hint.casefold()
    for hint in (
        "newsletter", "boletín", "your inbox", "thanks for signing up", "error processing your subscription",
        "click here", "klicken sie hier", "follow", "non-commercial use only", "fehler gefunden",
        "error has occurred", "copyright", "©", "rights reserved", "rechte vorbehalten", "droits réservés",
        "derechos reservados", "무단전재", "無断転載", "photo", "foto", "bild", "image", "picture", "credit",
        "zdjęcie", "getty images",
    )
)  # fmt: skip
# C0 controls make lxml refuse a page. A page whose bytes hold none (UTF-8 and the legacy charsets hold them
# only for the controls themselves) needs no search of its decoded text for them.
_C0_BYTES = bytes(c for c in range(32) if chr(c) not in "\t\n\r")
# The fast pass is retried with the full cascade below this many characters, and the full result is taken
# when it is this many times longer.
_SHORT_FAST = 2000
_FULL_OVER_FAST = 5
_TINY = 300
_URLISH = re.compile(r"(?:https?://|www\.)\S+$", re.IGNORECASE)


def clean_line(text: str) -> str:
    """One paragraph or title as a single NFC line without invisible characters or runs of spaces."""
    # str.split() splits on exactly what \s matches, at half the cost of a regex substitution.
    return " ".join(_INVISIBLE.sub("", unicodedata.normalize("NFC", text)).split())


def extract_article(
    body: bytes, url: str, content_type: str | None = None, fallback_title: str | None = None
) -> Article | None:
    """Extract the main text of a page; None when the page holds no article text."""
    return extract_decoded(body, decode_html(body, content_type), url, fallback_title)


def extract_decoded(body: bytes, html: str, url: str, fallback_title: str | None = None) -> Article | None:
    """extract_article on a page already decoded (`html` is decode_html of `body`), for callers that read
    the decoded page too (the not-an-article check), so it is decoded once."""
    # Control characters make lxml (and so trafilatura) give up on the whole page; they are never text. The
    # invisible characters that lxml accepts are dropped from each extracted line by clean_line.
    if len(body.translate(None, _C0_BYTES)) != len(body):
        html = _INVISIBLE.sub("", html)
    if not html.strip():
        return None
    try:
        tree = lxml_html.document_fromstring(html)
    except ValueError:
        # Controls the bytes did not show (a 7-bit charset's escapes, UTF-16 without a BOM read as such).
        html = _INVISIBLE.sub("", html)
        try:
            tree = lxml_html.document_fromstring(html)
        except (ValueError, lxml_html.etree.ParserError):
            return None
    except lxml_html.etree.ParserError:
        return None
    # Read what we need from the page before trafilatura, which prunes the tree it is given.
    language = _language(tree)
    canonical = _canonical(tree)
    links = _link_texts(tree)
    doc = _trafilatura(tree, url, fast=True)
    if doc is None or len(doc.text or "") < _SHORT_FAST:
        # The fast pass found little: either the page holds little, or it grabbed a fragment (a caption, a
        # teaser) beside the article. The full cascade (readability, jusText) settles it when it finds far
        # more; a merely longer text is more often the article plus what surrounds it.
        full = _trafilatura(lxml_html.document_fromstring(html), url, fast=False)
        if full is not None and _prefer_full(len(doc.text or "") if doc else 0, len(full.text or "")):
            doc = full
    if doc is None or not doc.text:
        return None
    title = clean_line(doc.title or fallback_title or "")
    paragraphs = _paragraphs(doc.text, title, links)
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


def _prefer_full(fast: int, full: int) -> bool:
    # Next to nothing (a block page's one line, a stub): the longer reading, which the not-an-article check
    # also needs to see what the page says about itself. Otherwise only far more text.
    return full > fast if fast < _TINY else full > _FULL_OVER_FAST * fast


def _trafilatura(tree: lxml_html.HtmlElement, url: str, fast: bool) -> Document | None:
    doc = trafilatura.bare_extraction(
        tree,
        url=url,
        include_comments=False,  # reader comments are not the article
        include_tables=True,
        with_metadata=True,
        # fast: no comparison with readability and jusText, whose longer picks on the extraction corpora were
        # mostly the article plus its surroundings (F1 0.964 -> 0.968 on the benchmark, fundus unchanged).
        fast=fast,
        # deduplicate stays off: it keeps a process-wide cache that changes later extractions.
    )
    return doc if isinstance(doc, Document) else None


def _paragraphs(text: str, title: str, links: frozenset[str] = frozenset()) -> list[str]:
    # trafilatura's txt output puts each block (paragraph, heading, list item) on its own line.
    out: list[str] = []
    for raw in text.split("\n"):
        line = clean_line(raw)
        if not line or (out and out[-1] == line):
            continue
        if not out and line == title:
            continue  # many pages repeat the headline as the first block
        if _is_link_block(line, links) or _is_boilerplate(line):
            continue
        out.append(line)
    return out


def _is_boilerplate(line: str) -> bool:
    """Page furniture that trafilatura lets through: ad markers, newsletter and share prompts, "Read more"
    pointers, photo credits, copyright lines. Only short blocks: a paragraph of prose is never furniture."""
    if len(line) > _MAX_FURNITURE:
        return False
    if _FURNITURE_LINE.fullmatch(line) or _FURNITURE_START.match(line):
        return True
    folded = line.casefold()
    return any(hint in folded for hint in _FURNITURE_HINTS) and bool(_FURNITURE_IN.search(line))


def _link_texts(tree: lxml_html.HtmlElement) -> frozenset[str]:
    """The texts of the page's links, as clean lines, longest first for _is_link_block."""
    texts = set()
    for a in tree.iter("a"):
        href = (a.get("href") or "").strip()
        if href.startswith("#"):
            continue  # a table of contents: its links repeat the article's own subheadings
        text = clean_line(a.text_content())
        if len(text) >= _MIN_LINK_TEXT and not _URLISH.match(text):
            texts.add(text)  # a link showing its URL is a reference the article gives, not navigation
    return frozenset(texts)


def _is_link_block(line: str, links: frozenset[str]) -> bool:
    """A block made of link texts only: a related story ("Kicker Headline"), a teaser list item, a menu.

    Prose carries links too, but inline: its words are mostly outside them. A block whose words are nearly
    all inside the page's links is navigation to other pages, whatever its language.
    """
    if len(line) > _MAX_LINK_BLOCK or not links:
        return False
    words = len(_WORD.findall(line))
    if not words:
        return False
    rest = line
    for anchor in sorted((a for a in links if a in line), key=len, reverse=True):
        rest = rest.replace(anchor, " ")
    return len(_WORD.findall(rest)) <= _LINK_REST * words


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
