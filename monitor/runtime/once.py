"""`monitor run --once`: one cycle over every feed, then the deliveries due, then exit.

The same parts as the daemon (monitor.runtime.daemon): `Pipeline.refresh` for each feed and the
outbox's dispatcher; only the scheduling differs, and none of the daemon's own parts (scheduler,
HTTP server, config watcher, metrics) are loaded, so a cron job does not pay for them at each
start.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from monitor.config.settings import LoadedConfig
from monitor.delivery.dispatcher import Dispatcher, DispatchSummary, make_delivery_client
from monitor.feeds.fetcher import make_client
from monitor.pipeline.pipeline import FEED_LEASE, Pipeline
from monitor.pipeline.refresh import RefreshOutcome
from monitor.store import FeedState, Store, owners
from monitor.store.replicas import Replicas, log_released_processes
from monitor.wording import plural

Sleep = Callable[[float], Awaitable[None]]


class Progress(Protocol):
    """Told as the cycle goes (monitor.cli.progress draws it on a terminal)."""

    def polled(self, summary: CycleSummary, total: int) -> None: ...

    def delivering(self, summary: CycleSummary) -> None: ...


@dataclass
class CycleSummary:
    """What one `run --once` did, for its one-line summary."""

    feeds: int = 0
    fetched: int = 0
    unchanged: int = 0
    failed: int = 0
    new_items: int = 0
    alerts: int = 0
    deliveries: DispatchSummary = field(default_factory=DispatchSummary)
    pending: int = 0
    skipped: int = 0  # feeds another live process holds: it polls them
    seconds: float = 0.0

    def add(self, outcome: RefreshOutcome) -> None:
        self.feeds += 1
        self.new_items += outcome.new_items
        self.alerts += outcome.alerts
        if outcome.status == "fetched":
            self.fetched += 1
        elif outcome.status == "unchanged":
            self.unchanged += 1
        else:
            self.failed += 1

    def line(self) -> str:
        d = self.deliveries
        return (
            f"{plural(self.feeds, 'feed')} polled ({self.fetched} fetched, {self.unchanged} "
            f"unchanged, {self.failed} failed), {self._skipped()}"
            f"{plural(self.new_items, 'new item')}, {plural(self.alerts, 'alert')}; "
            f"delivered {d.delivered}, {self.pending} queued, {d.failed} failed; "
            f"{self.seconds:.1f}s"
        )

    def _skipped(self) -> str:
        if not self.skipped:
            return ""
        return (
            f"{plural(self.skipped, 'feed')} skipped (another running process is polling "
            f"{'it' if self.skipped == 1 else 'them'}), "
        )


async def run_once(
    config: LoadedConfig,
    max_wait: timedelta,
    *,
    sleep: Sleep = asyncio.sleep,
    progress: Progress | None = None,
) -> CycleSummary:
    """Poll every feed once, deliver what is due, keep retrying while a retry falls due in time.

    `sleep` waits for the next retry to fall due (a caller keeping its own clock passes its own);
    `progress` is told of each feed done and of the delivery phase."""
    started = time.monotonic()
    store = await asyncio.to_thread(Store.open, config.storage_url)
    summary = CycleSummary()
    try:
        async with make_client() as feed_client, make_delivery_client() as delivery_client:
            pipeline = Pipeline(config, store, feed_client, delivery_client)
            await asyncio.to_thread(pipeline.sync_feeds)
            feeds = await _claim_feeds(store, len(config.settings.feeds), summary)
            for done in asyncio.as_completed([pipeline.refresh(f) for f in feeds]):
                summary.add(await done)
                if progress is not None:
                    progress.polled(summary, len(feeds))
            await asyncio.to_thread(pipeline.check_feed_health)  # feed.unhealthy, feed.recovered
            if progress is not None:
                progress.delivering(summary)
            summary.deliveries = await _deliver_until(pipeline.dispatcher, max_wait, sleep)
            summary.pending = await pipeline.pending_count()
    finally:
        await asyncio.to_thread(store.close)
    summary.seconds = time.monotonic() - started
    return summary


async def _claim_feeds(store: Store, configured: int, summary: CycleSummary) -> list[FeedState]:
    """Every feed no other live process holds. Leases of daemons whose heartbeat stopped, and of
    processes here that died (a `run --once` killed while polling), end first."""
    now = datetime.now(UTC)
    replicas = Replicas(store.engine)
    await asyncio.to_thread(replicas.release_dead, now)
    log_released_processes(await asyncio.to_thread(replicas.release_dead_processes, now))
    me = str(owners.current())
    feeds = await asyncio.to_thread(
        store.claim_feeds, now, FEED_LEASE, due_only=False, limit=max(1, configured), owner=me
    )
    summary.skipped = await asyncio.to_thread(replicas.feeds_held_by_others, now, me)
    return feeds


async def _deliver_until(
    dispatcher: Dispatcher, max_wait: timedelta, sleep: Sleep = asyncio.sleep
) -> DispatchSummary:
    """Deliver what is due; while the next retry falls due before the deadline, wait for it.

    `max_wait` bounds the whole delivery phase: each pass sends what is due when it begins,
    and claims a retry coming due meanwhile only if it comes due by the deadline; an attempt in
    flight ends within its webhook's `timeout`."""
    deadline = datetime.now(UTC) + max_wait
    totals = DispatchSummary()
    while True:
        done = await dispatcher.deliver_due(due_by=max(datetime.now(UTC), deadline))
        totals = DispatchSummary(
            totals.delivered + done.delivered, done.retrying, totals.failed + done.failed
        )
        due = await dispatcher.next_due()
        if due is None or due > deadline or datetime.now(UTC) >= deadline:
            return totals
        if not (done.delivered or done.retrying or done.failed) and due <= datetime.now(UTC):
            # due, yet the pass could take none of it (a routed webhook whose routing fails):
            # another pass at once would only fail the same way; it waits for the next run
            return totals
        await sleep(max((due - datetime.now(UTC)).total_seconds(), 0.0))
