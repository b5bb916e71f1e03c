"""Identity of items: normalised URLs, feed GUIDs and content hashes, as index keys.

An item is known when any of its keys is in the index. The keys are checked twice: from the feed entry alone
(URL, GUID) before the article is fetched, which is the cheap check that keeps re-polls free; and after
extraction (the URL after redirects, the canonical URL, the text's hash), which catches the same article
reached by another address.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

from courlan import normalize_url

from crawler.models import Article, FeedItem

_WORDS = re.compile(r"\w+")


def normalise_url(url: str) -> str:
    """Lower-case scheme and host, default port and fragment dropped, tracking parameters removed."""
    try:
        normal = normalize_url(url.strip(), strict=False)
    except (ValueError, TypeError):
        normal = url.strip()
    parts = urlsplit(normal)
    # The fragment names a place in a page, not another page.
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))


def url_digest(url: str) -> str:
    """The 16 hex digits that name an archive file: SHA-256 of the normalised URL."""
    return hashlib.sha256(normalise_url(url).encode("utf-8")).hexdigest()[:16]


def content_hash(article: Article) -> str:
    """SHA-256 of the article's words, case-folded: equal for the same text in other markup or spacing."""
    text = unicodedata.normalize("NFKC", article.body).casefold()
    return hashlib.sha256(" ".join(_WORDS.findall(text)).encode("utf-8")).hexdigest()


def url_key(url: str) -> str:
    return "url:" + normalise_url(url)


def guid_key(source: str, guid: str) -> str:
    # A GUID is unique only within its feed: two feeds may both number their entries 1, 2, 3.
    return f"guid:{source}:{guid}"


def feed_keys(source: str, item: FeedItem) -> list[str]:
    keys = [url_key(item.url)]
    if item.guid:
        keys.append(guid_key(source, item.guid))
    return keys


def article_keys(final_url: str, article: Article) -> list[str]:
    keys = [url_key(final_url)]
    if article.canonical_url:
        keys.append(url_key(article.canonical_url))
    return keys
