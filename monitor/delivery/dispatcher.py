"""Deliveries from the outbox: claim what is due, send, record, schedule the next attempt.

Only a 2xx answer is success. A 3xx is a failure (never followed: a receiver that moved must be
reconfigured, not guessed). Everything else — other statuses, timeouts, refused connections — is
retried on the webhook's `retry` schedule, never sooner than a `Retry-After` asks; after the last
wait the delivery is kept as `failed`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from monitor import __version__
from monitor.delivery import standard
from monitor.delivery.settings import WebhookConfig
from monitor.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from monitor.feeds.caching import retry_after as parse_retry_after
from monitor.store import DELIVERED, FAILED, PENDING, AttemptRecord, DueDelivery, Outbox

log = logging.getLogger(__name__)
MIN_LEASE = timedelta(minutes=2)  # a claim outlives any attempt; then another worker may retry
MAX_CONCURRENT = 16
JITTER = 0.1  # each wait is stretched by up to 10 %, so retries of many alerts spread out


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What one attempt came to; `error` is None on success."""

    status_code: int | None
    error: DeliveryError | None
    retry_after: timedelta | None
    duration: float

    @property
    def delivered(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class DispatchSummary:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def next_attempt(
    retry: list[timedelta],
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
    else:
        error = PermanentDeliveryError(reason)
    return error, retry_after


async def attempt(
    client: httpx.AsyncClient, hook: WebhookConfig, delivery: DueDelivery
) -> DeliveryOutcome:
    """Send one delivery once; network failures come back as a transient outcome."""
    now = datetime.now(UTC)
    request = standard.build_request(hook, delivery, int(now.timestamp()))
    started = time.monotonic()
    try:
        response = await client.post(
            request.url,
            content=request.body,
            headers=request.headers,
            timeout=hook.timeout.total_seconds(),
        )
    except httpx.TimeoutException:
        timeout = TransientDeliveryError(f"timed out after {hook.timeout.total_seconds():g}s")
        return DeliveryOutcome(None, timeout, None, time.monotonic() - started)
    except httpx.HTTPError as exc:
        # the message names the kind of failure, never the URL (which may carry a token)
        failed = TransientDeliveryError(f"{type(exc).__name__}: connection failed")
        return DeliveryOutcome(None, failed, None, time.monotonic() - started)
    error, retry_after = classify(response, now)
    return DeliveryOutcome(response.status_code, error, retry_after, time.monotonic() - started)


def make_delivery_client() -> httpx.AsyncClient:
    """The client for webhooks: no redirects followed, modest pool, our User-Agent."""
    return httpx.AsyncClient(
        follow_redirects=False,
        headers={"user-agent": f"monitor/{__version__}"},
        limits=httpx.Limits(max_connections=MAX_CONCURRENT, max_keepalive_connections=8),
        timeout=httpx.Timeout(15.0),
    )


class Dispatcher:
    """Delivers due outbox rows for the configured webhooks."""

    def __init__(
        self, outbox: Outbox, client: httpx.AsyncClient, webhooks: Mapping[str, WebhookConfig]
    ) -> None:
        self.outbox = outbox
        self.client = client
        self.webhooks = dict(webhooks)
        longest = max((hook.timeout for hook in self.webhooks.values()), default=MIN_LEASE)
        self.lease = max(MIN_LEASE, longest * 2)

    async def deliver_due(self) -> DispatchSummary:
        """Claim every due delivery, send them (several at once), record each outcome."""
        totals = DispatchSummary()
        semaphore = asyncio.Semaphore(MAX_CONCURRENT)
        while True:
            now = datetime.now(UTC)
            due = await asyncio.to_thread(
                self.outbox.claim_deliveries, now, self.lease, self.webhooks
            )
            if not due:
                return totals

            async def one(delivery: DueDelivery) -> str:
                async with semaphore:
                    return await self._deliver(delivery)

            states = await asyncio.gather(*(one(d) for d in due))
            totals = DispatchSummary(
                totals.delivered + states.count(DELIVERED),
                totals.retrying + states.count(PENDING),
                totals.failed + states.count(FAILED),
            )

    async def next_due(self) -> datetime | None:
        return await asyncio.to_thread(self.outbox.next_delivery_at, self.webhooks)

    async def _deliver(self, delivery: DueDelivery) -> str:
        hook = self.webhooks[delivery.webhook]
        outcome = await attempt(self.client, hook, delivery)
        now = datetime.now(UTC)
        attempts_made = delivery.attempts + 1
        if outcome.delivered:
            state, next_at = DELIVERED, None
        else:
            next_at = next_attempt(hook.retry, attempts_made, now, outcome.retry_after)
            state = PENDING if next_at is not None else FAILED
        record = AttemptRecord(
            outcome="delivered" if outcome.error is None else _kind(outcome.error),
            status_code=outcome.status_code,
            error=None if outcome.error is None else str(outcome.error),
            duration_ms=round(outcome.duration * 1000),
        )
        await asyncio.to_thread(
            self.outbox.record_attempt,
            delivery.id,
            now,
            record,
            state=state,
            next_attempt_at=next_at,
        )
        _log_attempt(delivery, attempts_made, state, outcome, next_at)
        return state


def _kind(error: DeliveryError) -> str:
    return "permanent" if isinstance(error, PermanentDeliveryError) else "transient"


def _log_attempt(
    delivery: DueDelivery,
    attempts: int,
    state: str,
    outcome: DeliveryOutcome,
    next_at: datetime | None,
) -> None:
    extra = {"alert_id": delivery.alert_id, "webhook": delivery.webhook, "attempt": attempts}
    if state == DELIVERED:
        log.info(
            "delivered %s to %s (HTTP %s)",
            delivery.alert_id,
            delivery.webhook,
            outcome.status_code,
            extra=extra,
        )
    elif state == PENDING and next_at is not None:
        log.warning(
            "delivery of %s to %s failed (%s); attempt %d, next at %s",
            delivery.alert_id,
            delivery.webhook,
            outcome.error,
            attempts,
            next_at.strftime("%H:%M:%S"),
            extra=extra,
        )
    else:
        log.error(
            "delivery of %s to %s failed for good after %d attempts (%s); kept as failed",
            delivery.alert_id,
            delivery.webhook,
            attempts,
            outcome.error,
            extra=extra,
        )
