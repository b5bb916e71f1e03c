"""Scrapy settings derived from crawler.yaml's `fetch:` section."""

from __future__ import annotations

from typing import Any

from crawler.config import FetchSettings
from crawler.fetch import guard

_SCRAPY = "scrapy.downloadermiddlewares"
_SPIDER = "scrapy.spidermiddlewares"

# Scrapy components the crawler has no use for, switched off: each runs for every request or response, or
# every chunk of every body, and together they cost about a third of the downloader's CPU. The spider follows
# no links (so no offsite, depth or URL-length checks on what it yields), sends no credentials, keeps
# no statistics, and a download's outcome goes back to its caller (so no HttpError filtering: every status
# is wanted). What stays: robots.txt, timeouts, default headers, User-Agent, retry, compression (with its
# size cap), redirects, proxies when allowed, and the crawler's own guard, politeness and limits.
_UNUSED_DOWNLOADER = ("offsite.OffsiteMiddleware", "httpauth.HttpAuthMiddleware", "stats.DownloaderStats")
_UNUSED_SPIDER = (
    "httperror.HttpErrorMiddleware",
    "urllength.UrlLengthMiddleware",
    "depth.DepthMiddleware",
    "metacopy.MetaCopyDetectionMiddleware",
)
_UNUSED_EXTENSIONS = (
    "corestats.CoreStats",
    "logcount.LogCount",
    "memdebug.MemoryDebugger",
    "closespider.CloseSpider",
    "feedexport.FeedExporter",
    "spiderstate.SpiderState",
    "throttle.AutoThrottle",
    "remote_control.RemoteControl",
    "logstats.LogStats",
    "memusage.MemoryUsage",
    "telnet.TelnetConsole",
)


def scrapy_settings(fetch: FetchSettings) -> dict[str, Any]:
    return {
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        "USER_AGENT": fetch.full_user_agent,  # names the crawler and where site owners can reach its user
        "DOWNLOAD_TIMEOUT": fetch.timeout,  # Scrapy's own default, 180 s, would stall a poll for minutes
        # Also the cap on a decompressed body (HttpCompressionMiddleware): a gzip bomb stops at the same size.
        "DOWNLOAD_MAXSIZE": fetch.max_bytes,  # Scrapy's default is 1 GiB
        "DOWNLOAD_WARNSIZE": 0,
        # Only http and https: a redirect to file:///etc/passwd must not read a local file (limits.HttpOnly
        # gives the reason; without a handler the scheme could not be fetched anyway).
        "DOWNLOAD_HANDLERS": {"file": None, "data": None, "s3": None, "ftp": None},
        # Politeness is per host and shared by every source, since one spider serves them all. Scrapy's
        # "domain" here is the download slot, whose key is the URL's host name (port ignored).
        "CONCURRENT_REQUESTS": 32,
        # The spider yields no items, but Scrapy starts this many tasks to consume each response's output
        # (the default, 100, was a tenth of the downloader's CPU).
        "CONCURRENT_ITEMS": 1,
        "CONCURRENT_REQUESTS_PER_DOMAIN": fetch.per_host,
        "DOWNLOAD_DELAY": fetch.delay,
        "DOWNLOAD_DELAY_JITTER": 0.5 if fetch.delay > 0 else 0,  # spread requests like a person would
        "ROBOTSTXT_OBEY": True,  # article pages obey robots.txt; feeds are exempt per request
        "REDIRECT_MAX_TIMES": 10,
        "RETRY_TIMES": 1,  # the next poll is the real retry
        # A failed download is an outcome the poll records with its reason, not an error of the crawler.
        "RETRY_GIVE_UP_LOG_LEVEL": "DEBUG",
        # Scrapy's list without 429: "too many requests" is not answered by asking again at once. A 503 with
        # Retry-After is not retried either (politeness.HostPause).
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408],
        "DOWNLOADER_MIDDLEWARES": {
            f"{_SCRAPY}.robotstxt.RobotsTxtMiddleware": None,
            "crawler.fetch.politeness.ExpiringRobotsTxt": 100,  # where Scrapy's sits
            "crawler.fetch.guard.PrivateNetworkGuard": 560,  # process_exception before RetryMiddleware (550)
            "crawler.fetch.politeness.HostPause": 580,  # process_response before RetryMiddleware
            "crawler.fetch.limits.HttpOnly": 610,  # process_response before RedirectMiddleware (600)
            **{f"{_SCRAPY}.{name}": None for name in _UNUSED_DOWNLOADER},
        },
        "SPIDER_MIDDLEWARES": {f"{_SPIDER}.{name}": None for name in _UNUSED_SPIDER},
        "EXTENSIONS": {
            "crawler.fetch.limits.BodyLimit": 0,
            **{f"scrapy.extensions.{name}": None for name in _UNUSED_EXTENSIONS},
        },
        # Nothing reads Scrapy's counters; the dummy collector makes every stats call a no-op.
        "STATS_CLASS": "scrapy.statscollectors.DummyStatsCollector",
        guard.SETTING: fetch.allow_private_networks,
        # With the guard on, environment proxies (http_proxy...) are ignored: through a proxy the crawler
        # never sees the address finally connected to, so the guard could not hold.
        "HTTPPROXY_ENABLED": fetch.allow_private_networks,
        "HTTPERROR_ALLOW_ALL": True,  # every status reaches us; the poll decides what it means
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "METAREFRESH_ENABLED": False,
        # Our own index decides what is new. Scrapy's dupefilter would grow forever in a long-lived spider
        # and would drop every re-poll of a feed.
        "DUPEFILTER_CLASS": "scrapy.dupefilters.BaseDupeFilter",
        "LOGSTATS_INTERVAL": 0,
        "STATS_DUMP": False,
        "MEMUSAGE_ENABLED": False,
        "LOG_LEVEL": "WARNING",
    }
