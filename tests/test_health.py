"""Scheduling rules of crawler.health: server hints, backoff, adaptive intervals. Pure functions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from crawler.health import (
    HARD,
    MAX_WAIT,
    SOFT,
    adaptive_interval,
    failure_weight,
    feed_ttl,
    next_poll,
    retry_after,
    server_hint,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


class NoJitter(random.Random):
    def random(self) -> float:
        return 0.0


def test_next_poll_is_the_interval_plus_at_most_ten_percent_jitter() -> None:
    assert next_poll(NOW, HOUR, rng=NoJitter()) == NOW + HOUR
    rng = random.Random(7)
    later = [next_poll(NOW, HOUR, rng=rng) - NOW for _ in range(200)]
    assert all(HOUR <= d <= HOUR * 1.1 for d in later)
    assert len(set(later)) > 150  # spread, not one fixed offset


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (timedelta(hours=3), timedelta(hours=3)),  # asks for more: lengthened
        (timedelta(minutes=10), HOUR),  # asks for less: never shortened
        (timedelta(days=3), MAX_WAIT),  # capped at a day
        (None, HOUR),
    ],
)
def test_server_hints_lengthen_never_shorten(hint: timedelta | None, expected: timedelta) -> None:
    assert next_poll(NOW, HOUR, hint, rng=NoJitter()) == NOW + expected


def test_an_interval_over_a_day_is_kept() -> None:
    assert next_poll(NOW, timedelta(days=2), timedelta(hours=30), rng=NoJitter()) == NOW + timedelta(days=2)


def test_backoff_grows_with_weighted_failures_and_is_capped() -> None:
    waits = [next_poll(NOW, HOUR, None, w, rng=NoJitter()) - NOW for w in (0, 0.5, 1, 2, 3)]
    assert waits == [HOUR, HOUR * 1.5, HOUR * 2, HOUR * 3, HOUR * 4]
    assert next_poll(NOW, HOUR, None, 100, rng=NoJitter()) - NOW == MAX_WAIT


def test_soft_failures_weigh_less_than_hard_ones() -> None:
    assert failure_weight(503, None) == failure_weight(429, None) == failure_weight(500, None) == SOFT
    assert failure_weight(0, "timed out after 20 s") == SOFT
    assert failure_weight(0, "DNS lookup failed") == failure_weight(0, "connection refused") == HARD
    assert failure_weight(404, None) == HARD
    assert SOFT < HARD


def test_server_hint_reads_ttl_cache_control_expires_and_retry_after() -> None:
    assert server_hint({"cache-control": "public, max-age=7200"}, None, NOW) == timedelta(hours=2)
    assert server_hint({"expires": format_datetime(NOW + timedelta(hours=5), usegmt=True)}, None, NOW) == (
        timedelta(hours=5)
    )
    assert server_hint({"retry-after": "120"}, None, NOW) == timedelta(minutes=2)
    assert server_hint({}, timedelta(minutes=90), NOW) == timedelta(minutes=90)
    # The longest wins; zero, past and garbage hints are ignored.
    headers = {"cache-control": "max-age=60", "retry-after": "600", "expires": "0"}
    assert server_hint(headers, None, NOW) == timedelta(minutes=10)
    assert server_hint({"cache-control": "max-age=0"}, None, NOW) is None
    assert server_hint({"expires": format_datetime(NOW - HOUR, usegmt=True)}, None, NOW) is None
    assert server_hint({"retry-after": "soon"}, None, NOW) is None
    assert server_hint({"cache-control": "max-age=999999"}, None, NOW) == MAX_WAIT


def test_retry_after_as_seconds_or_http_date() -> None:
    assert retry_after("30", NOW) == timedelta(seconds=30)
    assert retry_after(format_datetime(NOW + timedelta(minutes=3), usegmt=True), NOW) == timedelta(minutes=3)
    assert retry_after(None, NOW) is None


def test_feed_ttl_from_the_channel() -> None:
    body = b"<rss><channel><title>x</title><ttl> 45 </ttl><item><title>a</title></item></channel></rss>"
    assert feed_ttl(body) == timedelta(minutes=45)
    assert feed_ttl(b"<rss><channel><title>x</title></channel></rss>") is None


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (0, timedelta(hours=24)),  # silent source: the upper bound
        (1, timedelta(hours=24)),  # a week per item, clamped
        (14, timedelta(hours=12)),
        (168, HOUR),
        (10_000, timedelta(minutes=15)),  # very busy: the lower bound
    ],
)
def test_adaptive_interval(items: int, expected: timedelta) -> None:
    assert adaptive_interval(items, timedelta(minutes=15), timedelta(hours=24)) == expected
