"""The retry policy, table-driven and without a network: what an answer means (classify), when
the next attempt is (next_attempt), and the next state after an attempt (decide, lane_pause)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from monitor.delivery.base import RateHint
from monitor.delivery.policy import (
    RATE_LIMITED_FREE,
    Decision,
    DeliveryOutcome,
    Next,
    classify,
    decide,
    lane_pause,
    next_attempt,
)
from monitor.errors import PermanentDeliveryError, TransientDeliveryError
from monitor.http.headers import retry_after as parse_retry_after

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S, M, H = timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1)
SCHEDULE = (5 * S, 5 * M, 30 * M)


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [(1, timedelta(seconds=5)), (2, timedelta(minutes=5)), (3, timedelta(minutes=30)), (4, None)],
)
def test_next_attempt_follows_the_schedule_with_bounded_jitter(
    attempts: int, expected: timedelta | None
) -> None:
    schedule = [timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30)]
    for seed in range(20):
        when = next_attempt(schedule, attempts, NOW, None, random.Random(seed))
        if expected is None:
            assert when is None
        else:
            assert when is not None
            assert expected <= when - NOW <= expected * 1.1


def test_retry_after_is_never_undercut() -> None:
    when = next_attempt([timedelta(seconds=5)], 1, NOW, timedelta(minutes=2), random.Random(1))
    assert when == NOW + timedelta(minutes=2)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", timedelta(seconds=120)),
        ("Sun, 01 Mar 2026 12:01:00 GMT", timedelta(minutes=1)),
        ("Sun, 01 Mar 2026 11:00:00 GMT", timedelta(0)),
        ("soon", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: timedelta | None) -> None:
    headers = {} if header is None else {"retry-after": header}
    assert parse_retry_after(headers, NOW) == expected


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, None),
        (204, None),
        (301, TransientDeliveryError),
        (404, PermanentDeliveryError),
        (410, PermanentDeliveryError),
        (408, TransientDeliveryError),
        (429, TransientDeliveryError),
        (500, TransientDeliveryError),
        (503, TransientDeliveryError),
    ],
)
def test_only_2xx_is_success(status: int, kind: type[Exception] | None) -> None:
    error, _retry_after = classify(httpx.Response(status), NOW)
    if kind is None:
        assert error is None
    else:
        assert isinstance(error, kind)


class NoJitter(random.Random):
    """Waits exactly as scheduled, so a table can say when."""

    def random(self) -> float:
        return 0.0


def answer(
    status: int | None, retry_after: str | None = None, pause: timedelta | None = None
) -> DeliveryOutcome:
    """The outcome of an attempt answered `status` (None: it timed out), as the sender makes it."""
    if status is None:
        return DeliveryOutcome(None, TransientDeliveryError("timed out after 15s"), None, 0.1)
    headers = {} if retry_after is None else {"retry-after": retry_after}
    error, wait = classify(httpx.Response(status, headers=headers), NOW)
    return DeliveryOutcome(status, error, wait, 0.1, RateHint(pause))


@dataclass(frozen=True)
class Attempt:
    """One row's attempt: its answer, the budget spent before it, since when 429s have come."""

    status: int | None  # None: timed out
    retry_after: str | None = None
    pause: timedelta | None = None  # the target's own hint (Discord's `retry_after`, bucket)
    attempts: int = 0
    limited_for: timedelta | None = None  # 429s in a row for this long before this one
    schedule: tuple[timedelta, ...] = SCHEDULE


# the attempt -> what next, when (after NOW; None: never), the retry budget spent after it
DECISIONS = [
    (Attempt(200), Next.DELIVERED, None, 1),
    (Attempt(204, attempts=2), Next.DELIVERED, None, 3),
    (Attempt(200, pause=0.5 * S), Next.DELIVERED, None, 1),
    (Attempt(503), Next.RETRY, 5 * S, 1),
    (Attempt(503, attempts=2), Next.RETRY, 30 * M, 3),
    (Attempt(503, attempts=3), Next.FAILED, None, 4),
    (Attempt(503, schedule=()), Next.FAILED, None, 1),
    (Attempt(None, attempts=1), Next.RETRY, 5 * M, 2),
    (Attempt(404), Next.RETRY, 5 * S, 1),  # a refusal is retried on the schedule too
    (Attempt(302), Next.RETRY, 5 * S, 1),  # not followed: a failure
    (Attempt(500, "120"), Next.RETRY, 2 * M, 1),  # never sooner than Retry-After asks
    (Attempt(500, "1"), Next.RETRY, 5 * S, 1),  # nor sooner than the schedule
    (Attempt(503, limited_for=2 * H), Next.RETRY, 5 * S, 1),  # 429s before count for 429s only
    (Attempt(410, attempts=1), Next.DISABLE, timedelta(0), 2),
    # a 429 costs no retry: the next counted attempt's wait, at least as long as the 429s have
    # lasted (up to an hour), at least what Retry-After asks; after a day of them each counts
    (Attempt(429), Next.RATE_LIMITED, 5 * S, 0),
    (Attempt(429, attempts=3), Next.RATE_LIMITED, 30 * M, 3),
    (Attempt(429, "600"), Next.RATE_LIMITED, 10 * M, 0),
    (Attempt(429, attempts=1, limited_for=20 * M), Next.RATE_LIMITED, 20 * M, 1),
    (Attempt(429, limited_for=2 * H), Next.RATE_LIMITED, H, 0),
    (Attempt(429, limited_for=RATE_LIMITED_FREE), Next.RETRY, 5 * S, 1),
    (Attempt(429, attempts=3, limited_for=RATE_LIMITED_FREE), Next.FAILED, None, 4),
    (Attempt(429, schedule=()), Next.RATE_LIMITED, timedelta(0), 0),
    (Attempt(429, "30", schedule=()), Next.RATE_LIMITED, 30 * S, 0),
    (Attempt(429, pause=0.6 * S, schedule=(0 * S,)), Next.RATE_LIMITED, 0.6 * S, 0),
    (Attempt(429, "1", pause=0.6 * S, schedule=(0 * S,)), Next.RATE_LIMITED, S, 0),
    (Attempt(500, "60", pause=2 * M), Next.RETRY, 2 * M, 1),
]


@pytest.mark.parametrize(("attempt", "next_", "delay", "spent"), DECISIONS)
def test_the_next_state_after_an_attempt(
    attempt: Attempt, next_: Next, delay: timedelta | None, spent: int
) -> None:
    since = None if attempt.limited_for is None else NOW - attempt.limited_for
    decision = decide(
        answer(attempt.status, attempt.retry_after, attempt.pause),
        attempts=attempt.attempts,
        retry=attempt.schedule,
        now=NOW,
        rate_limited_since=since,
        rng=NoJitter(),
    )
    assert decision == Decision(next_, None if delay is None else NOW + delay, spent)


@pytest.mark.parametrize(
    ("next_", "state", "counted"),
    [
        (Next.DELIVERED, "delivered", True),
        (Next.RETRY, "pending", True),
        (Next.RATE_LIMITED, "pending", False),
        (Next.FAILED, "failed", True),
        (Next.DISABLE, "pending", True),  # held, untouched, until the webhook is enabled
    ],
)
def test_what_the_store_keeps_of_a_decision(next_: Next, state: str, counted: bool) -> None:
    decision = Decision(next_, NOW, 1)
    assert (decision.state, decision.counted) == (state, counted)


# status, Retry-After, the target's pause hint -> how long the webhook's lane pauses
PAUSES = [
    pytest.param(200, None, None, None, id="2xx"),
    pytest.param(200, None, 0.5 * S, 0.5 * S, id="2xx-empty-bucket"),
    pytest.param(429, "3600", None, H, id="429-retry-after"),
    pytest.param(503, "60", None, M, id="503-retry-after"),
    pytest.param(500, "60", None, None, id="500-retry-after-waits-this-one-only"),
    pytest.param(429, None, None, None, id="429-without-retry-after"),
    pytest.param(429, "1", 0.6 * S, 0.6 * S, id="the-hint-first"),
]


@pytest.mark.parametrize(("status", "retry_after", "hint", "pause"), PAUSES)
def test_what_pauses_a_webhooks_lane(
    status: int, retry_after: str | None, hint: timedelta | None, pause: timedelta | None
) -> None:
    assert lane_pause(answer(status, retry_after, hint)) == pause


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (200, "delivered"),
        (410, "gone"),
        (404, "permanent"),
        (429, "transient"),
        (None, "transient"),
    ],
)
def test_how_an_attempt_is_labelled(status: int | None, name: str) -> None:
    assert answer(status).name == name
