"""Download failures as short reasons a user can act on ("connection refused", "timed out after 20 s")."""

from __future__ import annotations

from scrapy import exceptions as sx
from scrapy.settings import BaseSettings
from twisted.internet import defer, error
from twisted.python.failure import Failure

# Set in request.meta by limits.BodyLimit when a response outgrows DOWNLOAD_MAXSIZE: Scrapy then cancels the
# download, and a cancelled download says nothing about why.
OVER_LIMIT = "crawler_over_limit"


class Refused(sx.IgnoreRequest):
    """A request the crawler will not make (private address, scheme, redirect loop); str() is the reason.

    An IgnoreRequest, so Scrapy neither retries nor logs it as an error, and robots.txt lookups that hit it
    fall back quietly to "allowed" (the page request itself is then refused the same way).
    """


def describe_failure(failure: Failure, settings: BaseSettings) -> str:
    exc = failure.value
    request = getattr(failure, "request", None)
    if isinstance(exc, Refused):
        return str(exc)
    max_bytes = settings.getint("DOWNLOAD_MAXSIZE")
    if isinstance(exc, sx.IgnoreRequest) and type(exc.__cause__).__name__ == "_DecompressionMaxSizeExceeded":
        # HttpCompressionMiddleware stops inflating at DOWNLOAD_MAXSIZE (a small gzip of gigabytes of zeros).
        return f"response over {max_bytes} bytes once decompressed (fetch.max_bytes), aborted"
    if isinstance(exc, sx.DownloadCancelledError | defer.CancelledError):
        announced = request.meta.get(OVER_LIMIT) if request is not None else None
        if announced is not None:
            detail = f" (Content-Length: {announced})" if announced > 0 else ""
            return f"response over {max_bytes} bytes (fetch.max_bytes), aborted{detail}"
        return "download cancelled (shutting down)"
    if isinstance(exc, sx.CannotResolveHostError | error.DNSLookupError):
        return "DNS lookup failed"
    if isinstance(exc, sx.DownloadConnectionRefusedError | error.ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, sx.DownloadTimeoutError | error.TimeoutError | defer.TimeoutError):
        return f"timed out after {settings.getfloat('DOWNLOAD_TIMEOUT'):g} s"
    if isinstance(exc, sx.ResponseDataLossError):
        return "connection closed before the whole response arrived"
    if isinstance(exc, sx.UnsupportedURLSchemeError):
        return f"unsupported URL scheme: {exc}"
    if isinstance(exc, sx.IgnoreRequest):
        text = str(exc) or "request ignored"
        if text == "max redirections reached":
            return f"too many redirects (more than {settings.getint('REDIRECT_MAX_TIMES')})"
        return "forbidden by robots.txt" if "robots" in text.lower() else text
    if isinstance(exc, sx.DownloadFailedError):
        return f"download failed: {exc}"[:300]
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:300]
