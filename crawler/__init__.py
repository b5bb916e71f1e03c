"""crawler: a scheduled feed-monitoring crawler.

Sources are polled on a schedule, new articles are extracted with trafilatura into plain-text files in the
format of the documents in seeds/, duplicates are dropped, topics are flagged and a daily digest is written.
"""

__version__ = "0.1.0"
