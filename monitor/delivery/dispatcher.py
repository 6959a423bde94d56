"""Deliveries from the outbox: claim what is due, send, record, schedule the next attempt.

The claim loop. What an answer means and what comes next (retries, 429s, 410) is the policy's
(monitor.delivery.policy); one attempt over HTTP is monitor.delivery.sending's; what must be
settled with other processes on the store first — claims of dead processes, orphans, webhooks
routed elsewhere or disabled — is monitor.delivery.coordination's.

Isolation: every webhook has its own lane (monitor.delivery.limits) with its own concurrency,
rate limit and pause; the dispatcher claims for a lane only what it can start, and keeps
claiming for the other lanes while a slow one is in flight.

Crash safety: claims carry the claiming process (monitor.store.owners) and a lease; a claim
outlives any attempt, then another worker may retry. Cancelled, the dispatcher hands back what
it holds at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from monitor.delivery import noise
from monitor.delivery.coordination import Coordinator
from monitor.delivery.limits import Lane
from monitor.delivery.policy import Decision, DeliveryOutcome, Next, decide, lane_pause
from monitor.delivery.sending import attempt, make_delivery_client
from monitor.delivery.settings import WebhookConfig
from monitor.delivery.targets import target_for
from monitor.durations import Budget
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

__all__ = ["CLAIM_POLL", "MIN_LEASE", "DispatchSummary", "Dispatcher", "make_delivery_client"]

log = logging.getLogger(__name__)
MIN_LEASE = timedelta(minutes=2)  # a claim outlives any attempt; then another worker may retry
CLAIM_POLL = 1.0  # seconds: while a slow target is in flight, look for new work this often
GONE = "gone"
DEFERRED = "deferred"  # claimed, not attempted: its lane was paused
SUPERSEDED = "superseded"  # attempted, but the claim had ended before its outcome was recorded


@dataclass(frozen=True, slots=True)
class DispatchSummary:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


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
        budgets: Mapping[str, Budget] | None = None,
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
        # webhooks whose deliveries are routed first: story groups, digests, quiet hours, and
        # the rules' alert budgets (`max_alerts`)
        self.budgets = dict(budgets or {})
        self.routed = {
            name
            for name, hook in self.webhooks.items()
            if hook.noisy or any(hook.wants_rule(rule) for rule in self.budgets)
        }
        self.coordinator = Coordinator(outbox, self.webhooks, self.owner)

    @property
    def deferred(self) -> set[str]:
        """Webhooks plain here that another process routes: their new deliveries are its."""
        return self.coordinator.deferred

    async def deliver_due(self, due_by: datetime | None = None) -> DispatchSummary:
        """Claim due deliveries lane by lane, send them, record each outcome; return when
        nothing is due that a lane can take and nothing is in flight. Webhooks with groups,
        digests or quiet hours have their new deliveries routed first (monitor.delivery.noise),
        and again at most every `claim_poll` seconds while deliveries are in flight.

        With `due_by`, only deliveries due by then are claimed: a retry that falls due later,
        while others are in flight, is left for a later pass (`run --once` passes its deadline,
        so that its passes end with it)."""
        await self.coordinator.release_dead_claims()
        await self.coordinator.orphans()
        enabled = await self.coordinator.enabled()
        tasks: dict[asyncio.Task[str], DueDelivery] = {}
        states: Counter[str] = Counter()
        routed_at = -self.claim_poll
        try:
            while True:
                if time.monotonic() - routed_at >= self.claim_poll:
                    await self._route(enabled)
                    routed_at = time.monotonic()
                for delivery in await self._claim(enabled, due_by):
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
        enabled = self.coordinator.live(await self.coordinator.enabled())
        times = await asyncio.to_thread(self.outbox.next_delivery_times, enabled)
        candidates = []
        soon = datetime.now(UTC) + timedelta(seconds=self.claim_poll)
        for name, due in times.items():
            # a deferred webhook's new deliveries wait for the other process to route them
            when = max(due, soon) if name in self.deferred else due
            paused = self.lanes[name].paused_until
            candidates.append(max(when, paused) if paused is not None else when)
        return min(candidates, default=None)

    async def _claim(self, enabled: list[str], due_by: datetime | None) -> list[DueDelivery]:
        """As many deliveries due (by `due_by`, if given) as each lane can start now."""
        now = datetime.now(UTC)
        wanted = {name: self.lanes[name].free_slots(now) for name in self.coordinator.live(enabled)}
        if not any(wanted.values()):
            return []
        return await asyncio.to_thread(
            functools.partial(
                self.outbox.claim_deliveries,
                now,
                self.lease,
                wanted,
                owner=self.owner,
                routed_only=self.routed | self.deferred,
                due_by=due_by,
            )
        )

    async def _route(self, enabled: list[str]) -> None:
        """Route the new deliveries of each enabled webhook that has groups, digests or quiet
        hours; a webhook whose routing fails keeps its deliveries for the next pass."""
        live = self.coordinator.live(enabled)
        # a webhook whose digest or quiet hours were removed still sends what it held
        plain = [name for name in live if name not in self.routed]
        await self.coordinator.check_routed_elsewhere(plain)
        draining = (
            await asyncio.to_thread(
                routing.with_due_held, self.outbox.engine, plain, datetime.now(UTC)
            )
            if plain
            else set()
        )
        for name in live:
            if name in self.routed or name in draining:
                await self._route_webhook(name)

    async def _route_webhook(self, name: str) -> None:
        try:
            summary = await asyncio.to_thread(
                noise.route_webhook,
                self.outbox.engine,
                self.webhooks[name],
                datetime.now(UTC),
                self.budgets,
            )
        except Exception:
            log.exception(
                "cannot route the new deliveries of %s; retrying on the next pass",
                name,
                extra={"webhook": name},
            )
            return
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
                recorded = await self._record(hook, lane, delivery, outcome)
            except Exception as exc:
                self.outbox.writes.failed(exc)
                log.exception(
                    "cannot record the delivery of %s to %s; it is retried when its lease ends",
                    delivery.message_id,
                    delivery.webhook,
                    extra=_keys(delivery),
                )
                return PENDING
            self.outbox.writes.succeeded()
            return recorded
        finally:
            lane.release()

    async def _record(
        self, hook: WebhookConfig, lane: Lane, delivery: DueDelivery, outcome: DeliveryOutcome
    ) -> str:
        now = datetime.now(UTC)
        pause = lane_pause(outcome)
        if pause is not None:
            lane.pause(pause, now)
        since = None
        if outcome.rate_limited:
            since = await asyncio.to_thread(self.outbox.rate_limited_since, delivery.id)
        decision = decide(
            outcome, attempts=delivery.attempts, retry=hook.retry, now=now, rate_limited_since=since
        )
        record = AttemptRecord(
            outcome=outcome.name,
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
                state=decision.state,
                next_attempt_at=decision.next_attempt_at,
                remote_id=outcome.remote_id,
                owner=self.owner,
                counted=decision.counted,
            )
        )
        if decision.next is Next.DISABLE:  # whoever holds the row now, the receiver is gone
            await self.coordinator.disable(hook, now, str(outcome.error))
        if not recorded:
            log.warning(
                "the outcome of %s to %s (%s) came after its claim ended (its lease ran out and "
                "another process took it, or it was routed or replayed meanwhile): kept in its "
                "attempts, its state left to whoever holds it now",
                delivery.message_id,
                delivery.webhook,
                outcome.name,
                extra=_keys(delivery),
            )
            return SUPERSEDED
        if decision.next is Next.DISABLE:
            return GONE
        _log_attempt(delivery, decision, outcome)
        return decision.state


def _keys(delivery: DueDelivery, **more: object) -> dict[str, object]:
    """The stable log keys of a delivery: its `webhook-id` as `message_id`, and `alert_id` when
    it carries an alert (digests and feed events carry none)."""
    keys: dict[str, object] = {"message_id": delivery.message_id, "webhook": delivery.webhook}
    if delivery.alert_id is not None:
        keys["alert_id"] = delivery.alert_id
    return keys | more


def _log_attempt(delivery: DueDelivery, decision: Decision, outcome: DeliveryOutcome) -> None:
    extra = _keys(delivery, attempt=decision.attempts)
    when = decision.next_attempt_at
    if decision.next is Next.RATE_LIMITED and when is not None:
        log.warning(
            "delivery of %s to %s rate limited (%s); next at %s, not counted as a failed attempt",
            delivery.message_id,
            delivery.webhook,
            outcome.error,
            when.strftime("%H:%M:%S"),
            extra=extra,
        )
    elif decision.next is Next.DELIVERED:
        log.info(
            "delivered %s to %s (%s)",
            delivery.message_id,
            delivery.webhook,
            outcome.answer,
            extra=extra,
        )
    elif decision.next is Next.RETRY and when is not None:
        log.warning(
            "delivery of %s to %s failed (%s); attempt %d, next at %s",
            delivery.message_id,
            delivery.webhook,
            outcome.error,
            decision.attempts,
            when.strftime("%H:%M:%S"),
            extra=extra,
        )
    else:
        log.error(
            "delivery of %s to %s failed for good after %d attempts (%s); kept as failed",
            delivery.message_id,
            delivery.webhook,
            decision.attempts,
            outcome.error,
            extra=extra,
        )
