"""What one delivery attempt means and what comes next: the retry policy, as pure functions.

Only a 2xx answer is success. A 3xx is a failure (never followed: a receiver that moved must be
reconfigured, not guessed). Everything else — other statuses, timeouts, refused connections — is
retried on the webhook's `retry` schedule, never sooner than a `Retry-After` (or Discord's
`retry_after`) asks; after the last wait the delivery is kept as `failed`. A 429 (rate limited)
is not a failure of the alert: it is retried when Retry-After says (else after the wait the
next attempt would have) without spending the retry budget, for up to RATE_LIMITED_FREE of
429s in a row; after that each 429 counts, so an endless 429 still ends. A 410 Gone disables
the webhook: its deliveries stay pending, untouched, until it is enabled again. A target that
says a retry cannot help (RejectedDeliveryError: an SMTP 5xx reply) fails the delivery at once.

`decide` turns an attempt's outcome into the next state; it reads no clock, store or network
(the caller passes `now`, and for a 429 when the run of 429s began), so every rule above is a
row of a table in tests/delivery/test_policy.py.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from monitor.delivery.base import RateHint
from monitor.errors import (
    DeliveryError,
    PermanentDeliveryError,
    RejectedDeliveryError,
    TransientDeliveryError,
)
from monitor.http.headers import retry_after as parse_retry_after
from monitor.store import DELIVERED, FAILED, PENDING

JITTER = 0.1  # each wait is stretched by up to 10 %, so retries of many alerts spread out
RATE_LIMITED_FREE = timedelta(days=1)  # 429s in a row cost no retry for this long, then count
RATE_LIMITED_BACKOFF_MAX = timedelta(hours=1)  # longest wait after a 429 without Retry-After
NO_HINT = RateHint()
GONE = "gone"


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What one attempt came to; `error` is None on success."""

    status_code: int | None
    error: DeliveryError | None
    retry_after: timedelta | None
    duration: float
    hint: RateHint = NO_HINT
    remote_id: str | None = None  # the target's id of the message created (Discord's)
    reply: str | None = None  # what a target not spoken to over HTTP answered (`SMTP 250 …`)

    @property
    def delivered(self) -> bool:
        return self.error is None

    @property
    def gone(self) -> bool:
        return self.status_code == 410

    @property
    def rate_limited(self) -> bool:
        return self.status_code == 429

    @property
    def answer(self) -> str:
        """The answer as a log line names it: `HTTP 200`, `SMTP 250 …`, `sent`."""
        if self.status_code is not None:
            return f"HTTP {self.status_code}"
        return self.reply or "sent"

    @property
    def name(self) -> str:
        """How the store labels the attempt: delivered, gone, permanent or transient."""
        if self.error is None:
            return "delivered"
        if self.gone:
            return GONE
        return "permanent" if isinstance(self.error, PermanentDeliveryError) else "transient"


class Next(enum.Enum):
    """What becomes of a delivery after an attempt."""

    DELIVERED = "delivered"
    RETRY = "retry"  # pending until `next_attempt_at`, one retry spent
    RATE_LIMITED = "rate limited"  # pending until `next_attempt_at`, no retry spent
    FAILED = "failed"  # the schedule is spent: kept, listed, replayable
    DISABLE = "disable"  # 410: the webhook is disabled; the delivery waits, untouched


@dataclass(frozen=True, slots=True)
class Decision:
    """The next state of one delivery."""

    next: Next
    next_attempt_at: datetime | None
    attempts: int  # the retry budget spent once this attempt is recorded

    @property
    def state(self) -> str:
        """The delivery's row state: delivered, failed, else pending."""
        if self.next is Next.DELIVERED:
            return DELIVERED
        return FAILED if self.next is Next.FAILED else PENDING

    @property
    def counted(self) -> bool:
        """Whether the attempt spends one retry of the budget."""
        return self.next is not Next.RATE_LIMITED


def classify(
    response: httpx.Response, now: datetime
) -> tuple[DeliveryError | None, timedelta | None]:
    """The error an answer means (None for 2xx) and the `Retry-After` it asks for."""
    status = response.status_code
    if 200 <= status < 300:
        return None, None
    reason = f"HTTP {status} {response.reason_phrase}".strip()
    retry_after = parse_retry_after(response.headers, now)
    error: DeliveryError
    if 300 <= status < 400:
        error = TransientDeliveryError(f"{reason}: redirects are not followed; fix the webhook URL")
    elif status in (408, 425, 429) or status >= 500:
        error = TransientDeliveryError(reason)
    elif status == 410:
        error = PermanentDeliveryError(f"{reason}: the receiver is gone; webhook disabled")
    else:
        error = PermanentDeliveryError(reason)
    return error, retry_after


def next_attempt(
    retry: Sequence[timedelta],
    attempts_made: int,
    now: datetime,
    retry_after: timedelta | None,
    rng: random.Random | None = None,
) -> datetime | None:
    """When to try again after `attempts_made` attempts, or None when the schedule is spent."""
    if attempts_made > len(retry):
        return None
    wait = retry[attempts_made - 1] * (1 + JITTER * (rng or random).random())
    if retry_after is not None and retry_after > wait:
        wait = retry_after
    return now + wait


def decide(
    outcome: DeliveryOutcome,
    *,
    attempts: int,
    retry: Sequence[timedelta],
    now: datetime,
    rate_limited_since: datetime | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """The next state after `outcome`, the delivery having spent `attempts` retries before it.

    `rate_limited_since`, for a 429, is when the delivery's run of 429 answers began (None: this
    is the first); it is ignored for any other answer."""
    wait = _least_wait(outcome)
    if outcome.delivered:
        return Decision(Next.DELIVERED, None, attempts + 1)
    if outcome.gone:
        return Decision(Next.DISABLE, now, attempts + 1)
    if isinstance(outcome.error, RejectedDeliveryError):  # the target said a retry cannot help
        return Decision(Next.FAILED, None, attempts + 1)
    if outcome.rate_limited:
        limited_for = max(now - (rate_limited_since or now), timedelta(0))
        if limited_for < RATE_LIMITED_FREE:
            free = _rate_limited_retry(
                retry, attempts, now, wait=wait, limited_for=limited_for, rng=rng
            )
            return Decision(Next.RATE_LIMITED, free, attempts)
    when = next_attempt(retry, attempts + 1, now, wait, rng)
    return Decision(Next.FAILED if when is None else Next.RETRY, when, attempts + 1)


def lane_pause(outcome: DeliveryOutcome) -> timedelta | None:
    """How long the webhook's whole lane pauses after `outcome` (None: not at all). A target's
    own rate hint (Discord's empty bucket) pauses it even after a success; a Retry-After pauses
    it on a 429 or a 503. The caller pauses the lane before anything else awaits, so no other
    delivery of the webhook starts in between."""
    if outcome.hint.pause is not None:
        return outcome.hint.pause
    if outcome.retry_after is not None and outcome.status_code in (429, 503):
        return outcome.retry_after
    return None


def _least_wait(outcome: DeliveryOutcome) -> timedelta | None:
    """The least wait before the delivery's next attempt: what Retry-After and the target's
    rate hint ask, the longer of the two."""
    if outcome.hint.pause is None:
        return outcome.retry_after
    return max(outcome.retry_after or timedelta(0), outcome.hint.pause)


def _rate_limited_retry(
    retry: Sequence[timedelta],
    attempts: int,
    now: datetime,
    *,
    wait: timedelta | None,
    limited_for: timedelta,
    rng: random.Random | None,
) -> datetime:
    """A 429 that costs no retry: the wait the next counted attempt would have, or what
    Retry-After asks, and at least as long as the 429s have lasted (up to an hour), so that it
    backs off by doubling."""
    backoff = now + min(limited_for, RATE_LIMITED_BACKOFF_MAX)
    if retry:
        scheduled = next_attempt(retry, min(attempts + 1, len(retry)), now, wait, rng)
    else:  # no schedule (`retry: []`): only Retry-After and the backoff
        scheduled = None if wait is None else now + wait
    return max(scheduled or backoff, backoff)
