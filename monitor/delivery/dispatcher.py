"""Deliveries from the outbox: claim what is due, send, record, schedule the next attempt.

Only a 2xx answer is success. A 3xx is a failure (never followed: a receiver that moved must be
reconfigured, not guessed). Everything else — other statuses, timeouts, refused connections — is
retried on the webhook's `retry` schedule, never sooner than a `Retry-After` (or Discord's
`retry_after`) asks; after the last wait the delivery is kept as `failed`. A 429 (rate limited)
is not a failure of the alert: it is retried when Retry-After says (else after the wait the
next attempt would have) without spending the retry budget, for up to RATE_LIMITED_FREE of
429s in a row; after that each 429 counts, so an endless 429 still ends. A 410 Gone disables
the webhook (kept in `webhook_states`, logged as an error, shown by `monitor webhooks`): its
deliveries stay pending, untouched, until `monitor webhooks enable NAME` or a new URL in the
config.

Isolation: every webhook has its own lane (monitor.delivery.limits) with its own concurrency,
rate limit and pause; the dispatcher claims for a lane only what it can start, and keeps
claiming for the other lanes while a slow one is in flight.

Crash safety: claims carry the claiming process (monitor.store.owners); a dispatcher first
releases the claims of dead processes on its own machine, so a `run --once` after a crash
delivers at once; claims of processes elsewhere end with their lease.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import random
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx

from monitor import __version__
from monitor.delivery import noise
from monitor.delivery.base import Alert, RateHint, Target
from monitor.delivery.limits import Lane
from monitor.delivery.settings import WebhookConfig, redact_url
from monitor.delivery.targets import target_for
from monitor.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from monitor.http.headers import retry_after as parse_retry_after
from monitor.http.transport import pooled_transport
from monitor.store import (
    DELIVERED,
    FAILED,
    PENDING,
    AttemptRecord,
    DueDelivery,
    Outbox,
    owners,
    routing,
)

log = logging.getLogger(__name__)
MIN_LEASE = timedelta(minutes=2)  # a claim outlives any attempt; then another worker may retry
MAX_CONCURRENT = 16
JITTER = 0.1  # each wait is stretched by up to 10 %, so retries of many alerts spread out
CLAIM_POLL = 1.0  # seconds: while a slow target is in flight, look for new work this often
GONE = "gone"
DEFERRED = "deferred"  # claimed, not attempted: its lane was paused
SUPERSEDED = "superseded"  # attempted, but the claim had ended before its outcome was recorded
NO_HINT = RateHint()
RATE_LIMITED_FREE = timedelta(days=1)  # 429s in a row cost no retry for this long, then count
RATE_LIMITED_BACKOFF_MAX = timedelta(hours=1)  # longest wait after a 429 without Retry-After
ORPHAN_GRACE = timedelta(minutes=10)  # orphaned this recently by another config: revived
OTHERS_CHECK = timedelta(minutes=1)  # how often a plain webhook is checked for other routers
OTHERS_RECENT = timedelta(minutes=10)  # a group opened or a row held this recently: routed


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What one attempt came to; `error` is None on success."""

    status_code: int | None
    error: DeliveryError | None
    retry_after: timedelta | None
    duration: float
    hint: RateHint = NO_HINT
    remote_id: str | None = None  # the target's id of the message created (Discord's)

    @property
    def delivered(self) -> bool:
        return self.error is None

    @property
    def gone(self) -> bool:
        return self.status_code == 410


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
    elif status == 410:
        error = PermanentDeliveryError(f"{reason}: the receiver is gone; webhook disabled")
    else:
        error = PermanentDeliveryError(reason)
    return error, retry_after


class _HideWebhookUrls(logging.Filter):
    """httpx logs every request's URL at INFO; for webhooks the URL may be a token: hide it."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def hide(self, url: str) -> None:
        if len(self.urls) > 10_000:  # bounded: webhooks are few, but configs are reloaded
            self.urls.clear()
        self.urls.update((url, str(httpx.URL(url))))

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(str(a) in self.urls for a in args):
            record.args = tuple(redact_url(str(a)) if str(a) in self.urls else a for a in args)
        return True


_hide_urls = _HideWebhookUrls()
logging.getLogger("httpx").addFilter(_hide_urls)


def _scrub(text: str, url: str) -> str:
    """`text` without any part of `url` that may be a token (path segments, query values)."""
    parts = urlsplit(url)
    secrets = [p for p in parts.path.split("/") if len(p) >= 6]
    secrets += [v for _k, v in parse_qsl(parts.query) if len(v) >= 6]
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _answer_snippet(response: httpx.Response, url: str) -> str:
    """A short, single-line excerpt of a refusal's body (Slack says `invalid_blocks`, …)."""
    if response.status_code < 400 or response.status_code >= 500 or not response.content:
        return ""
    text = " ".join(response.content[:300].decode("utf-8", "replace").split())[:200]
    return f": {_scrub(text, url)}" if text else ""


async def attempt(
    client: httpx.AsyncClient,
    hook: WebhookConfig,
    delivery: DueDelivery,
    target: Target | None = None,
) -> DeliveryOutcome:
    """Send one delivery once; network failures come back as a transient outcome."""
    target = target or target_for(hook)
    now = datetime.now(UTC)
    started = time.monotonic()
    alert = Alert.parse(delivery.message_id, delivery.payload)
    if delivery.reply_to is not None:
        alert = dataclasses.replace(alert, reply_to=delivery.reply_to)
    try:
        request = target.build(hook, alert, int(now.timestamp()))
    except DeliveryError as exc:
        return DeliveryOutcome(None, exc, None, time.monotonic() - started)
    _hide_urls.hide(request.url)
    try:
        response = await client.request(
            request.method,
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
    if request.method == "PATCH" and response.status_code == 404 and alert.reply_to:
        # the message to edit is gone (deleted in the channel): post the update as a new one
        retry = dataclasses.replace(delivery, reply_to=None)
        return await attempt(client, hook, retry, target)
    error, retry_after = classify(response, now)
    if error is not None:
        error = type(error)(str(error) + _answer_snippet(response, hook.url))
    return DeliveryOutcome(
        response.status_code,
        error,
        retry_after,
        time.monotonic() - started,
        target.hint(response),
        target.message_ref(response) if error is None else None,
    )


def make_delivery_client() -> httpx.AsyncClient:
    """The client for webhooks: no redirects followed, modest pool, our User-Agent."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
    return httpx.AsyncClient(
        follow_redirects=False,
        headers={"user-agent": f"monitor/{__version__}"},
        limits=limits,
        timeout=httpx.Timeout(15.0),
        transport=pooled_transport(limits),  # its TLS context made when first needed
    )


class Dispatcher:
    """Delivers due outbox rows for the configured webhooks, each webhook in its own lane."""

    def __init__(
        self,
        outbox: Outbox,
        client: httpx.AsyncClient,
        webhooks: Mapping[str, WebhookConfig],
        *,
        owner: str | None = None,
        claim_poll: float = CLAIM_POLL,
    ) -> None:
        self.outbox = outbox
        self.client = client
        self.webhooks = dict(webhooks)
        self.targets = {name: target_for(hook) for name, hook in self.webhooks.items()}
        self.lanes = {
            name: Lane.for_hook(hook, self.targets[name]) for name, hook in self.webhooks.items()
        }
        self.owner = owner or str(owners.current())
        self.claim_poll = claim_poll
        longest = max((hook.timeout for hook in self.webhooks.values()), default=MIN_LEASE)
        self.lease = max(MIN_LEASE, longest * 2)
        self._gone: set[str] = set()
        # webhooks whose deliveries are routed first: story groups, digests, quiet hours
        self.routed = {name for name, hook in self.webhooks.items() if hook.noisy}
        # plain here, but another process (a replica on another config) routes them: leave
        # their new deliveries to it (see _check_routed_elsewhere)
        self.deferred: set[str] = set()
        self._started = datetime.now(UTC)
        self._deferred_checked = -OTHERS_CHECK.total_seconds()
        self._orphaned = False  # deliveries of webhooks not in this config marked (once)
        self._revived_at = -OTHERS_CHECK.total_seconds()

    async def deliver_due(self) -> DispatchSummary:
        """Claim due deliveries lane by lane, send them, record each outcome; return when
        nothing is due that a lane can take and nothing is in flight. Webhooks with groups,
        digests or quiet hours have their new deliveries routed first (monitor.delivery.noise),
        and again at most every `claim_poll` seconds while deliveries are in flight."""
        await self._release_dead_claims()
        await self._orphans()
        enabled = await self._enabled()
        tasks: dict[asyncio.Task[str], DueDelivery] = {}
        states: Counter[str] = Counter()
        routed_at = -self.claim_poll
        try:
            while True:
                if time.monotonic() - routed_at >= self.claim_poll:
                    await self._route(enabled)
                    routed_at = time.monotonic()
                now = datetime.now(UTC)
                wanted = {
                    name: self.lanes[name].free_slots(now)
                    for name in enabled
                    if name not in self._gone
                }
                due = []
                if any(wanted.values()):
                    due = await asyncio.to_thread(
                        functools.partial(
                            self.outbox.claim_deliveries,
                            now,
                            self.lease,
                            wanted,
                            owner=self.owner,
                            routed_only=self.routed | self.deferred,
                        )
                    )
                for delivery in due:
                    self.lanes[delivery.webhook].take()
                    tasks[asyncio.create_task(self._deliver(delivery))] = delivery
                if not tasks:
                    break
                done, _ = await asyncio.wait(
                    tasks, timeout=self.claim_poll, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    del tasks[task]
                    states[task.result()] += 1
        except asyncio.CancelledError:
            await self._abandon(tasks)
            raise
        return DispatchSummary(
            states[DELIVERED], states[PENDING] + states[GONE] + states[DEFERRED], states[FAILED]
        )

    async def next_due(self) -> datetime | None:
        """When a lane can next take a delivery: due, lease ended, lane not paused."""
        enabled = [name for name in await self._enabled() if name not in self._gone]
        times = await asyncio.to_thread(self.outbox.next_delivery_times, enabled)
        candidates = []
        soon = datetime.now(UTC) + timedelta(seconds=self.claim_poll)
        for name, due in times.items():
            # a deferred webhook's new deliveries wait for the other process to route them
            when = max(due, soon) if name in self.deferred else due
            paused = self.lanes[name].paused_until
            candidates.append(max(when, paused) if paused is not None else when)
        return min(candidates, default=None)

    async def _route(self, enabled: list[str]) -> None:
        """Route the new deliveries of each enabled webhook that has groups, digests or quiet
        hours; a webhook whose routing fails keeps its deliveries for the next pass."""
        live = [name for name in enabled if name not in self._gone]
        # a webhook whose digest or quiet hours were removed still sends what it held
        plain = [name for name in live if name not in self.routed]
        await self._check_routed_elsewhere(plain)
        draining = (
            await asyncio.to_thread(
                routing.with_due_held, self.outbox.engine, plain, datetime.now(UTC)
            )
            if plain
            else set()
        )
        for name in live:
            if name not in self.routed and name not in draining:
                continue
            try:
                summary = await asyncio.to_thread(
                    noise.route_webhook, self.outbox.engine, self.webhooks[name], datetime.now(UTC)
                )
            except Exception:
                log.exception(
                    "cannot route the new deliveries of %s; retrying on the next pass",
                    name,
                    extra={"webhook": name},
                )
                continue
            for digest_id in summary.digests:
                log.info("digest %s of %s queued", digest_id, name, extra={"webhook": name})
            if summary.routed:
                log.debug(
                    "%s: routed %d deliveries (%d story updates, %d held)",
                    name,
                    summary.routed,
                    summary.updates,
                    summary.held,
                    extra={"webhook": name},
                )

    async def _check_routed_elsewhere(self, plain: list[str]) -> None:
        """Replicas must share webhook settings. A webhook plain here that another process
        routes (it opened a story group or held a delivery lately, since this config was put
        in force) is left to it: this process claims only its routed deliveries, so a story is
        not told twice, once grouped and once not. Checked once a minute."""
        if time.monotonic() - self._deferred_checked < OTHERS_CHECK.total_seconds():
            return
        self._deferred_checked = time.monotonic()
        since = max(self._started, datetime.now(UTC) - OTHERS_RECENT)
        try:
            others = await asyncio.to_thread(
                routing.routed_by_others, self.outbox.engine, plain, since
            )
        except Exception:
            log.exception("cannot check whether other processes route these webhooks")
            return
        for name in sorted(others - self.deferred):
            log.warning(
                "webhook %s has no group, digest or quiet hours here, but another process "
                "routes it with them: replicas must share webhook settings. Its new alerts are "
                "left to that process while it does",
                name,
                extra={"webhook": name},
            )
        for name in sorted(self.deferred - others):
            log.info(
                "webhook %s: no other process routes it any more; sending its alerts here",
                name,
                extra={"webhook": name},
            )
        self.deferred = others

    async def _orphans(self) -> None:
        """Once per config (this dispatcher): the pending and held deliveries of webhooks no
        longer in the config become `orphaned`, kept and listed, not left pending forever. Then
        once a minute: deliveries of a webhook this config has, orphaned in the last
        ORPHAN_GRACE (by a replica on an older config), are made due again."""
        now = datetime.now(UTC)
        try:
            if not self._orphaned:
                counts = await asyncio.to_thread(self.outbox.orphan, list(self.webhooks), now)
                self._orphaned = True
                for name, count in sorted(counts.items()):
                    log.warning(
                        "webhook %s is not in the config: its %d undelivered deliveries are "
                        "kept as orphaned (`monitor alerts --state orphaned`; put it back, then "
                        "`monitor replay ID… --webhook %s`)",
                        name,
                        count,
                        name,
                        extra={"webhook": name},
                    )
            if time.monotonic() - self._revived_at < OTHERS_CHECK.total_seconds():
                return
            self._revived_at = time.monotonic()
            revived = await asyncio.to_thread(
                self.outbox.revive_orphans, list(self.webhooks), now - ORPHAN_GRACE, now
            )
        except Exception:
            log.exception("cannot check the deliveries of webhooks removed from the config")
            return
        for name, count in sorted(revived.items()):
            log.warning(
                "webhook %s: %d deliveries orphaned in the last %d minutes by a process "
                "whose config lacks it are due again here (replicas must share the config)",
                name,
                count,
                ORPHAN_GRACE.total_seconds() // 60,
                extra={"webhook": name},
            )

    async def _enabled(self) -> list[str]:
        """Configured webhooks not disabled; a disabled one whose URL changed is re-enabled."""
        disabled = await asyncio.to_thread(self.outbox.disabled_webhooks)
        enabled = []
        for name, hook in self.webhooks.items():
            if name not in disabled:
                enabled.append(name)
                continue
            reason, digest = disabled[name]
            if digest is not None and digest != hook.url_digest():
                await asyncio.to_thread(self.outbox.enable_webhook, name, datetime.now(UTC))
                log.warning(
                    "webhook %s was disabled (%s); its URL changed, so it is enabled again",
                    name,
                    reason,
                    extra={"webhook": name},
                )
                self._gone.discard(name)
                enabled.append(name)
        return enabled

    async def _release_dead_claims(self) -> None:
        now = datetime.now(UTC)
        held = await asyncio.to_thread(self.outbox.leases_held, now, list(self.webhooks))
        for claimed_by, count in held.items():
            if claimed_by != self.owner and owners.is_dead(claimed_by):
                released = await asyncio.to_thread(self.outbox.release, claimed_by)
                dead = owners.Owner.parse(claimed_by)
                log.warning(
                    "released %d of %d deliveries claimed by process %s, which died; "
                    "delivering them now",
                    released,
                    count,
                    dead.pid if dead else "?",
                )

    async def _abandon(self, tasks: Mapping[asyncio.Task[str], DueDelivery]) -> None:
        """Cancelled (shutdown): stop what is in flight and hand its claims back at once."""
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        ids = [delivery.id for delivery in tasks.values()]
        if ids:
            await asyncio.shield(asyncio.to_thread(self.outbox.release, self.owner, ids))

    async def _deliver(self, delivery: DueDelivery) -> str:
        hook = self.webhooks[delivery.webhook]
        lane = self.lanes[delivery.webhook]
        # the lane's slot is held until the outcome is recorded: the next delivery of this
        # webhook may depend on it (a story update edits the message its first alert created)
        try:
            if not await lane.turn():  # paused by a Retry-After meanwhile: hand it back
                await asyncio.to_thread(self.outbox.release, self.owner, [delivery.id])
                return DEFERRED
            outcome = await attempt(self.client, hook, delivery, self.targets[delivery.webhook])
            try:
                return await self._record(hook, lane, delivery, outcome)
            except Exception:
                log.exception(
                    "cannot record the delivery of %s to %s; it is retried when its lease ends",
                    delivery.message_id,
                    delivery.webhook,
                    extra={"alert_id": delivery.message_id, "webhook": delivery.webhook},
                )
                return PENDING
        finally:
            lane.release()

    async def _record(
        self, hook: WebhookConfig, lane: Lane, delivery: DueDelivery, outcome: DeliveryOutcome
    ) -> str:
        now = datetime.now(UTC)
        attempts_made = delivery.attempts + 1
        wait = outcome.retry_after
        if outcome.hint.pause is not None:
            lane.pause(outcome.hint.pause, now)
            wait = max(wait or timedelta(0), outcome.hint.pause)
        elif wait is not None and outcome.status_code in (429, 503):
            lane.pause(wait, now)
        limited_for = await self._rate_limited_for(delivery, now, outcome)
        free = limited_for is not None and limited_for < RATE_LIMITED_FREE
        state: str
        if outcome.delivered:
            state, next_at = DELIVERED, None
        elif outcome.gone:
            state, next_at = PENDING, now  # held, untouched, until the webhook is enabled
        elif free and limited_for is not None:
            # the wait the next counted attempt would have, or what Retry-After asks, and at
            # least as long as the 429s have lasted (up to an hour): it backs off by doubling
            attempts_made = delivery.attempts
            scheduled = next_attempt(hook.retry, min(attempts_made + 1, len(hook.retry)), now, wait)
            backoff = now + min(limited_for, RATE_LIMITED_BACKOFF_MAX)
            next_at = max(scheduled or backoff, backoff)
            state = PENDING
        else:
            next_at = next_attempt(hook.retry, attempts_made, now, wait)
            state = PENDING if next_at is not None else FAILED
        record = AttemptRecord(
            outcome=_outcome_name(outcome),
            status_code=outcome.status_code,
            error=None if outcome.error is None else str(outcome.error),
            duration_ms=round(outcome.duration * 1000),
        )
        recorded = await asyncio.to_thread(
            functools.partial(
                self.outbox.record_attempt,
                delivery.id,
                now,
                record,
                state=state,
                next_attempt_at=next_at,
                remote_id=outcome.remote_id,
                owner=self.owner,
                counted=not free,
            )
        )
        if outcome.gone:  # whoever holds the row now, the receiver is gone
            await self._disable(hook, now, str(outcome.error))
        if not recorded:
            log.warning(
                "the outcome of %s to %s (%s) came after its claim ended (its lease ran out and "
                "another process took it, or it was routed or replayed meanwhile): kept in its "
                "attempts, its state left to whoever holds it now",
                delivery.message_id,
                delivery.webhook,
                _outcome_name(outcome),
                extra={"alert_id": delivery.message_id, "webhook": delivery.webhook},
            )
            return SUPERSEDED
        if outcome.gone:
            return GONE
        _log_attempt(delivery, attempts_made, state, outcome, next_at, free=free)
        return state

    async def _rate_limited_for(
        self, delivery: DueDelivery, now: datetime, outcome: DeliveryOutcome
    ) -> timedelta | None:
        """For a 429, how long the delivery has been answered 429 without a break (zero for a
        first one); None for any other outcome. A rate limit is not a failure of the alert: it
        leaves the retry budget alone until this reaches RATE_LIMITED_FREE (then each 429
        counts, so an endless 429 ends as `failed` like any failure)."""
        if outcome.status_code != 429:
            return None
        since = await asyncio.to_thread(self.outbox.rate_limited_since, delivery.id)
        return timedelta(0) if since is None else max(now - since, timedelta(0))

    async def _disable(self, hook: WebhookConfig, now: datetime, reason: str) -> None:
        first = hook.name not in self._gone
        self._gone.add(hook.name)
        await asyncio.to_thread(
            self.outbox.disable_webhook, hook.name, now, reason, hook.url_digest()
        )
        if first:
            log.error(
                "webhook %s answered 410 Gone: disabled; its alerts stay queued. Fix its URL in "
                "the config, or run `monitor webhooks enable %s`",
                hook.name,
                hook.name,
                extra={"webhook": hook.name},
            )


def _outcome_name(outcome: DeliveryOutcome) -> str:
    if outcome.error is None:
        return "delivered"
    if outcome.gone:
        return GONE
    return "permanent" if isinstance(outcome.error, PermanentDeliveryError) else "transient"


def _log_attempt(
    delivery: DueDelivery,
    attempts: int,
    state: str,
    outcome: DeliveryOutcome,
    next_at: datetime | None,
    *,
    free: bool = False,
) -> None:
    extra = {"alert_id": delivery.message_id, "webhook": delivery.webhook, "attempt": attempts}
    if free and next_at is not None:
        log.warning(
            "delivery of %s to %s rate limited (%s); next at %s, not counted as a failed attempt",
            delivery.message_id,
            delivery.webhook,
            outcome.error,
            next_at.strftime("%H:%M:%S"),
            extra=extra,
        )
    elif state == DELIVERED:
        log.info(
            "delivered %s to %s (HTTP %s)",
            delivery.message_id,
            delivery.webhook,
            outcome.status_code,
            extra=extra,
        )
    elif state == PENDING and next_at is not None:
        log.warning(
            "delivery of %s to %s failed (%s); attempt %d, next at %s",
            delivery.message_id,
            delivery.webhook,
            outcome.error,
            attempts,
            next_at.strftime("%H:%M:%S"),
            extra=extra,
        )
    else:
        log.error(
            "delivery of %s to %s failed for good after %d attempts (%s); kept as failed",
            delivery.message_id,
            delivery.webhook,
            attempts,
            outcome.error,
            extra=extra,
        )
