"""Wiring and lifecycle: one cycle for `run --once`, and the long-running daemon.

Both use the same parts: `Pipeline.refresh` for a feed (monitor.feeds.refresh) and
`Dispatcher.deliver_due` for the outbox (monitor.delivery.dispatcher); the daemon merely lets the
scheduler (monitor.scheduler) call them when the store says work is due.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import make_url

from monitor.config import LoadedConfig
from monitor.delivery.dispatcher import Dispatcher, DispatchSummary, make_delivery_client
from monitor.feeds.fetcher import make_client
from monitor.feeds.refresh import RefreshOutcome
from monitor.pipeline import FEED_LEASE, Pipeline
from monitor.scheduler import Scheduler
from monitor.store import Store

log = logging.getLogger(__name__)
STOP_GRACE = 10.0  # seconds in-flight work gets to finish on SIGTERM before it is cancelled


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
            f"{self.feeds} feeds polled ({self.fetched} fetched, {self.unchanged} unchanged, "
            f"{self.failed} failed), {self.new_items} new items, {self.alerts} alerts; "
            f"delivered {d.delivered}, {self.pending} queued, {d.failed} failed; "
            f"{self.seconds:.1f}s"
        )


async def run_once(config: LoadedConfig, max_wait: timedelta) -> CycleSummary:
    """Poll every feed once, deliver what is due, keep retrying while a retry falls due in time."""
    started = time.monotonic()
    store = await asyncio.to_thread(Store.open, config.storage_url)
    summary = CycleSummary()
    try:
        async with make_client() as feed_client, make_delivery_client() as delivery_client:
            pipeline = Pipeline(config, store, feed_client, delivery_client)
            await asyncio.to_thread(pipeline.sync_feeds)
            now = datetime.now(UTC)
            feeds = await asyncio.to_thread(store.claim_feeds, now, FEED_LEASE, due_only=False)
            for outcome in await asyncio.gather(*(pipeline.refresh(f) for f in feeds)):
                summary.add(outcome)
            summary.deliveries = await _deliver_until(pipeline.dispatcher, max_wait)
            summary.pending = await pipeline.pending_count()
    finally:
        await asyncio.to_thread(store.close)
    summary.seconds = time.monotonic() - started
    return summary


async def _deliver_until(dispatcher: Dispatcher, max_wait: timedelta) -> DispatchSummary:
    """Deliver what is due; while the next retry falls due before the deadline, wait for it."""
    deadline = datetime.now(UTC) + max_wait
    totals = DispatchSummary()
    while True:
        done = await dispatcher.deliver_due()
        totals = DispatchSummary(
            totals.delivered + done.delivered, done.retrying, totals.failed + done.failed
        )
        due = await dispatcher.next_due()
        if due is None or due > deadline:
            return totals
        await asyncio.sleep(max((due - datetime.now(UTC)).total_seconds(), 0.0))


def describe_storage(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def run_daemon(config: LoadedConfig, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM or SIGINT (or `stop` is set); in-flight work gets STOP_GRACE to finish."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    store = await asyncio.to_thread(Store.open, config.storage_url)
    try:
        async with make_client() as feed_client, make_delivery_client() as delivery_client:
            pipeline = Pipeline(config, store, feed_client, delivery_client)
            await asyncio.to_thread(pipeline.sync_feeds)
            log.info(
                "monitor running: %d feeds, %d rules, %d webhooks, storage %s",
                len(config.settings.feeds),
                len(config.matcher.rules),
                len(config.settings.webhooks),
                describe_storage(config.storage_url),
            )
            if config.settings.http:
                log.warning(
                    "http: %s is configured but not served yet in this version",
                    config.settings.http,
                )
            scheduler = Scheduler(pipeline)
            scheduler.start()
            await stop.wait()
            log.info("stopping: no new work; waiting up to %.0fs for work in flight", STOP_GRACE)
            await scheduler.stop(STOP_GRACE)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await asyncio.to_thread(store.close)
    log.info("stopped")
