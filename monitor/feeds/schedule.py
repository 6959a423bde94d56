"""When to poll a feed next: our interval, or later when the publisher asks, never sooner.

    wait = max(interval, Cache-Control max-age / Expires, RSS <ttl>), capped at a day
    then moved past the publisher's RSS <skipHours> (GMT hours) and <skipDays>
    failures: the interval doubled per failure in a row, capped at a day, never under Retry-After
Every wait is stretched by up to 10 % of itself (jitter). After a feed's first poll, the next
one comes anywhere within one more interval (spread): feeds added together, as at a first
start or an OPML import, are all due at once, and would otherwise keep coming in bursts.
"""

from __future__ import annotations

import random
from collections.abc import Set
from datetime import datetime, timedelta

MAX_WAIT = timedelta(hours=24)
JITTER = 0.1
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def jittered(now: datetime, wait: timedelta, rng: random.Random | None = None) -> datetime:
    return now + wait * (1 + JITTER * (rng or random).random())


def spread(
    now: datetime, wait: timedelta, interval: timedelta, rng: random.Random | None = None
) -> datetime:
    """After a first poll: `wait`, then anywhere within one interval, so the feeds added with
    this one are polled evenly from their second poll on."""
    return now + wait + interval * (rng or random).random()


def polite_wait(interval: timedelta, *asked: timedelta | None) -> timedelta:
    """The interval, or what the publisher asked for when that is longer (capped at a day)."""
    longest = max((wait for wait in asked if wait is not None), default=timedelta(0))
    return max(interval, min(longest, MAX_WAIT))


def past_skips(moment: datetime, skip_hours: Set[int], skip_days: Set[str]) -> datetime:
    """The first moment at or after `moment` outside the skipped GMT hours and days."""
    if not skip_hours and not skip_days:
        return moment
    candidate = moment
    for _ in range(8 * 24):  # a week and a day of hours: enough unless everything is skipped
        skipped = candidate.hour in skip_hours or _DAYS[candidate.weekday()] in skip_days
        if not skipped:
            return candidate
        candidate = candidate.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return moment  # every hour skipped: the publisher's hint cannot be honored; poll anyway


def backoff(interval: timedelta, errors: int, retry_after: timedelta | None) -> timedelta:
    """Wait after the `errors`-th failure in a row: doubling from the interval, capped at a day."""
    doubling: int = 2 ** min(max(errors, 1) - 1, 16)
    wait = max(min(interval * doubling, MAX_WAIT), interval)
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_WAIT))
    return wait
