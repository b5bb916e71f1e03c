"""Page bytes -> text: the charset of an HTML page, declared or not.

Every stage that reads HTML (extraction, the not-an-article checks, listings, feed discovery) decodes through
here, so a page reads the same wherever it is looked at.
"""

from __future__ import annotations

import codecs

import charset_normalizer
from w3lib.encoding import (
    html_body_declared_encoding,
    html_to_unicode,
    http_content_type_encoding,
    read_bom,
    resolve_encoding,
    to_unicode,
)

# A page is UTF-8 with a few broken bytes when its valid non-ASCII characters outnumber the breaks this much.
_UTF8_MAJORITY = 20


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """Decode a page: BOM, then valid UTF-8, then the HTTP charset or <meta charset>, then a detector.

    Browsers trust a declaration over the bytes; valid UTF-8 comes first here because a legacy charset
    declared on UTF-8 bytes is common (a page re-saved or transcoded by a CMS or proxy keeps its old meta; a
    server's default "charset=iso-8859-1") while legacy-encoded text that happens to be valid UTF-8 is
    vanishingly rare beyond pure ASCII. A page that declares nothing and is not UTF-8 (a windows-1251 or
    Shift_JIS site without a charset anywhere) goes to charset_normalizer: read as UTF-8 it would be U+FFFD.
    """
    encoding, _bom = read_bom(body)
    if encoding:
        return html_to_unicode(content_type, body)[1]  # w3lib strips the BOM and decodes by it
    declared = _declared_encoding(body, content_type)
    if body.isascii():
        # ASCII is the same in every ASCII-based charset; a 7-bit one (ISO-2022-JP) needs its declaration.
        return to_unicode(body, declared or "utf-8")
    if _mostly_utf8(body):
        return body.decode("utf-8", errors="replace")
    return to_unicode(body, declared or _detect(body))


def _declared_encoding(body: bytes, content_type: str | None) -> str | None:
    """The charset of the HTTP header, else of a <meta> near the top; None when neither names one."""
    declared = http_content_type_encoding(content_type) if content_type else None
    declared = declared or html_body_declared_encoding(body)
    if declared and declared.replace("_", "-").startswith(("utf-16", "utf-32")):
        return None  # without a BOM (handled before) a UTF-16 label on an HTML page is wrong (WHATWG)
    return declared


def _mostly_utf8(body: bytes) -> bool:
    """UTF-8, allowing a few broken sequences (a truncated prefix, a stray byte pasted into a UTF-8 page)."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(body, final=False)  # a sequence cut at the end is fine
        return True
    except UnicodeDecodeError:
        pass
    text = body.decode("utf-8", errors="replace")
    broken = text.count("\ufffd") - body.count(b"\xef\xbf\xbd")
    multibyte = len(text) - len(text.encode("ascii", errors="ignore")) - broken
    # Legacy text read as UTF-8 breaks at most of its non-ASCII letters; UTF-8 with a stray byte, rarely.
    return multibyte >= _UTF8_MAJORITY * broken


def _detect(body: bytes) -> str:
    best = charset_normalizer.from_bytes(body).best()
    encoding = resolve_encoding(best.encoding) if best is not None else None
    return encoding or "cp1252"  # what browsers fall back to for an undeclared Western page
