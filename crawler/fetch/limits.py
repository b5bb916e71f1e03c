"""Safety limits Scrapy enforces but does not explain: only http and https, redirects, body size.

- HttpOnly (downloader middleware): a URL or redirect target that is not http(s) is refused with a reason.
  Scrapy's own RedirectMiddleware silently hands back the 3xx response for a `Location: file:///etc/passwd`;
  the file, ftp, s3 and data download handlers are switched off as well (settings.py), so no local file can
  ever be read, whatever the path. A redirect loop ends at once, named, instead of after ten requests.
- BodyLimit (extension): notes in request.meta that a response outgrew DOWNLOAD_MAXSIZE, so the cancelled
  download that Scrapy reports can be described as "response over N bytes" rather than "cancelled".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag, urljoin

from scrapy import signals
from scrapy.utils.httpobj import urlparse_cached
from w3lib.url import safe_url_string

from crawler.fetch.errors import OVER_LIMIT, Refused

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

SCHEMES = ("http", "https")
REDIRECTS = (301, 302, 303, 307, 308)  # the statuses Scrapy's RedirectMiddleware follows


class HttpOnly:
    """Downloader middleware just outside RedirectMiddleware (600): it sees each 3xx before it is followed."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HttpOnly:
        return cls()

    def process_request(self, request: Request) -> None:
        if urlparse_cached(request).scheme not in SCHEMES:
            raise Refused(f"refused: {request.url} is not an http or https URL")

    def process_response(self, request: Request, response: Response) -> Response:
        location = response.headers.get(b"Location")
        if response.status not in REDIRECTS or not location or request.meta.get("dont_redirect"):
            return response
        # Resolved the way RedirectMiddleware does it, so both see the same target.
        target = urljoin(request.url, safe_url_string(location))
        if location.startswith(b"//"):
            target = f"{urlparse_cached(request).scheme}:{safe_url_string(location)}"
        scheme = target.split(":", 1)[0].lower()
        if scheme not in SCHEMES:
            raise Refused(f"refused redirect to {target[:200]}: only http and https URLs are fetched")
        seen = [*request.meta.get("redirect_urls", ()), request.url]
        if urldefrag(target)[0] in {urldefrag(url)[0] for url in seen}:
            raise Refused(f"redirect loop: {request.url} redirects back to {target}")
        return response


class BodyLimit:
    """Extension: marks a request whose response is over DOWNLOAD_MAXSIZE (announced, or as it streams)."""

    RECEIVED = "crawler_bytes_received"

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BodyLimit:
        ext = cls(crawler.settings.getint("DOWNLOAD_MAXSIZE"))
        # Bound methods are held weakly by Scrapy's signal manager; the crawler keeps the extension alive.
        crawler.signals.connect(ext.headers_received, signal=signals.headers_received)
        crawler.signals.connect(ext.bytes_received, signal=signals.bytes_received)
        return ext

    def headers_received(self, headers: Any, body_length: Any, request: Request, **kwargs: Any) -> None:
        request.meta[self.RECEIVED] = 0  # meta is copied to a redirect's request: count each response afresh
        # Without a Content-Length, Twisted gives its UNKNOWN_LENGTH marker (a string), not a number: such a
        # body is measured as it streams, in bytes_received.
        if self.max_bytes and isinstance(body_length, int) and body_length > self.max_bytes:
            request.meta[OVER_LIMIT] = body_length

    def bytes_received(self, data: bytes, request: Request, **kwargs: Any) -> None:
        size = request.meta.get(self.RECEIVED, 0) + len(data)
        request.meta[self.RECEIVED] = size
        if self.max_bytes and size > self.max_bytes:
            request.meta.setdefault(OVER_LIMIT, 0)
