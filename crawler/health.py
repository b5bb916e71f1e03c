"""When a source is polled next: its interval, what the server asks for, how it publishes, how it fails.

Pure functions on plain values, so every scheduling rule can be tested without a clock or a scheduler.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

# No hint or backoff pushes a poll further than this: a source is looked at at least once a day.
MAX_WAIT = timedelta(hours=24)
JITTER = 0.1  # up to 10% of the interval, so sources with equal intervals do not fire together

# Failures that say "try later" (the server is there but busy or slow) weigh half of those that say the
# source may be gone (DNS, refused connection, not a feed).
SOFT, HARD = 0.5, 1.0


def failure_weight(status: int, error: str | None) -> float:
    if status == 429 or 500 <= status < 600:
        return SOFT
    if error and error.startswith(("timed out", "connection closed")):
        return SOFT
    return HARD


def server_hint(headers: Mapping[str, str], feed_ttl: timedelta | None, now: datetime) -> timedelta | None:
    """The longest wait the server asks for (RSS ttl, Cache-Control max-age, Expires, Retry-After), or None.

    A hint of 0 (or in the past) asks for nothing and is ignored.
    """
    hints = [feed_ttl] if feed_ttl else []
    cache = headers.get("cache-control", "")
    if match := re.search(r"max-age\s*=\s*(\d+)", cache):
        hints.append(timedelta(seconds=int(match.group(1))))
    if expires := _http_date(headers.get("expires")):
        hints.append(expires - now)
    if retry := retry_after(headers.get("retry-after"), now):
        hints.append(retry)
    positive = [h for h in hints if h > timedelta(0)]
    return min(max(positive), MAX_WAIT) if positive else None


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    when = _http_date(value)
    return when - now if when else None


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else None


def adaptive_interval(new_last_week: int, low: timedelta, high: timedelta) -> timedelta:
    """`every: auto`: poll about as often as the source publishes (a week over its items of the last week)."""
    if new_last_week <= 0:
        return high
    return min(max(timedelta(days=7) / new_last_week, low), high)


def next_poll(
    now: datetime,
    interval: timedelta,
    hint: timedelta | None = None,
    failure_weights: float = 0.0,
    rng: random.Random | None = None,
) -> datetime:
    """The next poll time.

    Server hints lengthen the interval (never shorten it), up to a day. A failing source waits its interval
    times (1 + the weighted count of its consecutive failures), up to a day; a success resets the count.
    """
    wait = interval
    if hint is not None and hint > wait:
        wait = max(interval, min(hint, MAX_WAIT))
    if failure_weights > 0:
        wait = max(wait, min(interval * (1 + failure_weights), MAX_WAIT))
    jitter = wait * JITTER * (rng or random).random()
    return now + wait + jitter


_TTL = re.compile(rb"<ttl>\s*(\d+)\s*</ttl>", re.IGNORECASE)


def feed_ttl(body: bytes) -> timedelta | None:
    """RSS <ttl> (minutes the feed may be cached). It is a channel element, so it sits before the items."""
    match = _TTL.search(body, 0, 65536)
    return timedelta(minutes=int(match.group(1))) if match else None
