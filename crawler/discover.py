"""Feed discovery for `auto` sources: the home page Scrapy fetched -> the feed it advertises, if any.

trafilatura's `determine_feed` does the reading: <link rel="alternate"> elements of a feed type first, and
only when there are none, <a> links whose address looks like a feed. It parses the string it is given and
downloads nothing (unlike `find_feed_urls`, which must not be used: it fetches pages itself, outside Scrapy's
politeness and safety limits).
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from courlan import clean_url
from parsel import Selector
from trafilatura.feeds import FeedParameters, determine_feed
from trafilatura.utils import safe_relative_url

from crawler.charset import decode_html
from crawler.dedup import normalise_url

# Not feeds, though they pass trafilatura's tests: WordPress advertises its REST API as rel="alternate"
# type="application/json" on every page, oEmbed endpoints come as alternates too, and a link to sitemap.xml
# looks like a feed (.xml) to the link fallback.
_NOT_FEEDS = re.compile(r"/wp-json/|oembed|/sitemap[^/]*$|sitemap[^/]*\.xml", re.IGNORECASE)

_WEB_PAGE = re.compile(r"\.s?html?$", re.IGNORECASE)

# The page is itself a feed (an `auto` source given its feed's address): RSS, Atom, RDF or JSON Feed.
_FEED_DOCUMENT = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*\?>\s*)?(?:(?:<!--.*?-->|<\?xml-stylesheet[^>]*\?>)\s*)*"
    rb"<(?:rss|feed|rdf:RDF)\b",
    re.DOTALL,
)


def discover_feed(body: bytes, url: str, content_type: str | None = None) -> str | None:
    """The absolute URL of the page's feed: the first advertised alternate, else a feed-looking link on the
    same site; the page's own URL when the page is a feed; None when it names no feed."""
    head = body[:4096]
    if _FEED_DOCUMENT.match(head) or (head.lstrip().startswith(b"{") and b"jsonfeed.org/version" in head):
        return url
    text = decode_html(body, content_type)
    if not text.strip():
        return None
    page = Selector(text=text, type="html")
    base_href = page.xpath("//base/@href").get()
    base = urljoin(url, base_href.strip()) if base_href else url
    host = urlsplit(url).hostname or ""
    here = normalise_url(url)
    candidates = [
        link
        for link in determine_feed(text, FeedParameters(base, host, url))
        # An empty href names the page itself, which is not a feed (that was checked above).
        if not _NOT_FEEDS.search(link) and normalise_url(link) != here
    ]
    if not candidates:
        return None
    # determine_feed returns alternates, or <a> links when the page has no feed alternate. Links are weaker
    # evidence: only one on the page's own site is taken (a footer link to some partner's RSS is not ours).
    alternates = {
        clean_url(safe_relative_url(base, href.strip()))
        for href in page.xpath("//link[@rel='alternate']/@href").getall()
    }
    if alternates.intersection(candidates):
        return candidates[0]
    for link in candidates:
        parts = urlsplit(link)
        # "/service/rss.html" is a page about the site's feeds, not a feed.
        if _same_site(parts.hostname or "", host) and not _WEB_PAGE.search(parts.path):
            return link
    return None


def _same_site(host: str, page_host: str) -> bool:
    a, b = host.lower().removeprefix("www."), page_host.lower().removeprefix("www.")
    return a == b or a.endswith("." + b) or b.endswith("." + a)
