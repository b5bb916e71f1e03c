"""Download failures as short reasons a user can act on ("connection refused", "timed out after 20 s")."""

from __future__ import annotations

from scrapy import exceptions as sx
from scrapy.settings import BaseSettings
from twisted.internet import defer, error
from twisted.python.failure import Failure


def describe_failure(failure: Failure, settings: BaseSettings) -> str:
    exc = failure.value
    if isinstance(exc, sx.CannotResolveHostError | error.DNSLookupError):
        return "DNS lookup failed"
    if isinstance(exc, sx.DownloadConnectionRefusedError | error.ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, sx.DownloadTimeoutError | error.TimeoutError | defer.TimeoutError):
        return f"timed out after {settings.getfloat('DOWNLOAD_TIMEOUT'):g} s"
    if isinstance(exc, sx.ResponseDataLossError):
        return "connection closed before the whole response arrived"
    if isinstance(exc, sx.DownloadCancelledError | defer.CancelledError):
        # Scrapy cancels a download that grows past DOWNLOAD_MAXSIZE (and every download at shutdown).
        return f"cancelled (body over {settings.getint('DOWNLOAD_MAXSIZE')} bytes, or shutting down)"
    if isinstance(exc, sx.UnsupportedURLSchemeError):
        return f"unsupported URL scheme: {exc}"
    if isinstance(exc, sx.IgnoreRequest):
        text = str(exc) or "request ignored"
        return "forbidden by robots.txt" if "robots" in text.lower() else text
    if isinstance(exc, sx.DownloadFailedError):
        return f"download failed: {exc}"[:300]
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:300]
