"""Scrapy at the edge: one long-lived spider downloads every URL the rest of the crawler asks for."""

from crawler.fetch.fetcher import Fetcher

__all__ = ["Fetcher"]
