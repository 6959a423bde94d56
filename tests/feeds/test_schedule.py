"""When a feed is polled next: table-driven over what publishers ask for."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from monitor.feeds.schedule import MAX_WAIT, backoff, jittered, past_skips, polite_wait, spread

M, H = timedelta(minutes=1), timedelta(hours=1)


@pytest.mark.parametrize(
    ("interval", "asked", "expected"),
    [
        (10 * M, [], 10 * M),
        (10 * M, [None, None], 10 * M),
        (10 * M, [5 * M], 10 * M),  # asking for less never polls sooner than our interval
        (10 * M, [30 * M], 30 * M),  # Cache-Control max-age / ttl longer: honored
        (10 * M, [30 * M, 2 * H], 2 * H),
        (10 * M, [30 * 24 * H], MAX_WAIT),  # capped at a day
        (2 * MAX_WAIT, [H], 2 * MAX_WAIT),  # our own long interval stays
    ],
)
def test_polite_wait(
    interval: timedelta, asked: list[timedelta | None], expected: timedelta
) -> None:
    assert polite_wait(interval, *asked) == expected


@pytest.mark.parametrize(
    ("errors", "retry_after", "expected"),
    [
        (1, None, 10 * M),
        (2, None, 20 * M),
        (4, None, 80 * M),
        (20, None, MAX_WAIT),  # keeps trying, once a day at worst
        (1, 2 * H, 2 * H),  # Retry-After is never undercut
        (1, 30 * 24 * H, MAX_WAIT),
    ],
)
def test_backoff(errors: int, retry_after: timedelta | None, expected: timedelta) -> None:
    assert backoff(10 * M, errors, retry_after) == expected


def test_jitter_stretches_by_at_most_ten_percent() -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    for seed in range(50):
        delay = jittered(now, 10 * M, random.Random(seed)) - now
        assert 10 * M <= delay <= 11 * M


def test_a_first_poll_spreads_the_next_over_one_interval() -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    delays = [spread(now, 2 * H, 10 * M, random.Random(seed)) - now for seed in range(50)]
    assert all(2 * H <= delay < 2 * H + 10 * M for delay in delays)  # never sooner than asked
    assert max(delays) - min(delays) > 8 * M  # across the interval, not a tenth of it


@pytest.mark.parametrize(
    ("moment", "hours", "days", "expected"),
    [
        ("2026-03-02T12:30", set(), set(), "2026-03-02T12:30"),
        ("2026-03-02T12:30", {12}, set(), "2026-03-02T13:00"),
        ("2026-03-02T22:15", {22, 23, 0, 1}, set(), "2026-03-03T02:00"),
        ("2026-03-07T09:00", set(), {"Saturday", "Sunday"}, "2026-03-09T00:00"),  # a Saturday
        ("2026-03-02T05:00", set(range(24)), set(), "2026-03-02T05:00"),  # all skipped: ignored
    ],
)
def test_skip_hours_and_days_are_gmt(
    moment: str, hours: set[int], days: set[str], expected: str
) -> None:
    start = datetime.fromisoformat(moment).replace(tzinfo=UTC)
    assert past_skips(start, hours, days) == datetime.fromisoformat(expected).replace(tzinfo=UTC)
