"""APScheduler 3.x jobs that turn the store's due times into work.

Two jobs tick every second: `feeds` claims the feeds whose `next_check_at` has come (the due time
lives in the store, with jitter, so it survives restarts) and starts a refresh for each one not
already in flight; `deliveries` runs the outbox dispatcher unless a run is still going. The ticks
themselves return at once: slow feeds never hold up the others.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.pipeline import FEED_LEASE, Pipeline
from monitor.store import FeedState

log = logging.getLogger(__name__)
TICK_SECONDS = 1.0


class Scheduler:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._feeds_in_flight: dict[int, asyncio.Task[object]] = {}
        self._delivery: asyncio.Task[object] | None = None
        self.last_tick: datetime | None = None

    def start(self) -> None:
        now = datetime.now(UTC)
        for job, name in ((self._tick_feeds, "feeds"), (self._tick_deliveries, "deliveries")):
            self._scheduler.add_job(
                job,
                "interval",
                seconds=TICK_SECONDS,
                id=name,
                next_run_time=now,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        self._scheduler.start()

    async def stop(self, grace: float) -> None:
        """Stop ticking, give in-flight work `grace` seconds, then cancel what is left."""
        self._scheduler.shutdown(wait=False)
        tasks = [*self._feeds_in_flight.values(), *([self._delivery] if self._delivery else [])]
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            log.warning(
                "cancelled %d unfinished tasks; their leases expire and the work is "
                "picked up by the next run",
                len(pending),
            )
            await asyncio.gather(*pending, return_exceptions=True)

    async def _tick_feeds(self) -> None:
        self.last_tick = now = datetime.now(UTC)
        try:
            due = await asyncio.to_thread(self.pipeline.store.claim_feeds, now, FEED_LEASE)
        except Exception:
            log.exception("cannot read due feeds from the store; retrying next tick")
            return
        for feed in due:
            if feed.id not in self._feeds_in_flight:
                self._start_refresh(feed)

    def _start_refresh(self, feed: FeedState) -> None:
        task: asyncio.Task[object] = asyncio.create_task(self.pipeline.refresh(feed))
        self._feeds_in_flight[feed.id] = task
        task.add_done_callback(lambda _t: self._feeds_in_flight.pop(feed.id, None))

    async def _tick_deliveries(self) -> None:
        if self._delivery is not None and not self._delivery.done():
            return
        self._delivery = asyncio.create_task(self._deliver())

    async def _deliver(self) -> object:
        try:
            return await self.pipeline.dispatcher.deliver_due()
        except Exception:
            log.exception("delivery run failed; retrying next tick")
            return None
