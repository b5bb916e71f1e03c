"""Scrapy settings derived from crawler.yaml's `fetch:` section."""

from __future__ import annotations

from typing import Any

from crawler.config import FetchSettings


def scrapy_settings(fetch: FetchSettings) -> dict[str, Any]:
    return {
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        "USER_AGENT": fetch.user_agent,
        "DOWNLOAD_TIMEOUT": fetch.timeout,  # Scrapy's own default, 180 s, would stall a poll for minutes
        "DNS_TIMEOUT": min(fetch.timeout, 20),
        "DOWNLOAD_MAXSIZE": fetch.max_bytes,  # Scrapy's default is 1 GiB
        "DOWNLOAD_WARNSIZE": 0,
        # Politeness is per host and shared by every source, since one spider serves them all.
        "CONCURRENT_REQUESTS": 32,
        "CONCURRENT_REQUESTS_PER_DOMAIN": fetch.per_host,
        "DOWNLOAD_DELAY": fetch.delay,
        "DOWNLOAD_DELAY_JITTER": 0.5 if fetch.delay > 0 else 0,  # spread requests like a person would
        "ROBOTSTXT_OBEY": True,  # article pages obey robots.txt; feeds are exempt per request
        "REDIRECT_MAX_TIMES": 10,
        "RETRY_TIMES": 1,  # the next poll is the real retry
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
        "COMPRESSION_MAX_SIZE": fetch.max_bytes,  # a gzip bomb is stopped at the same size as a body
    }
