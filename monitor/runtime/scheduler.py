"""APScheduler 3.x jobs that turn the store's due times into work.

Two jobs tick every second: `feeds` claims the feeds whose `next_check_at` has come (the due time
lives in the store, with jitter, so it survives restarts) and starts a refresh for each one not
already in flight; `deliveries` runs the outbox dispatcher unless a run is still going. The ticks
themselves return at once, having started their work in a task of ours: slow feeds never hold up
the others, and stopping the scheduler (APScheduler cancels the jobs it is running) never cuts a
claim short between the store and us. The other jobs, in the table `Scheduler._jobs`: `websub`
(every second, when WebSub is on) renews and retries subscriptions; `retention` (hourly) forgets
the text of items older than `retention.item_text`; `health` raises feed health events; a daemon
with a heartbeat (monitor.store.replicas) beats on its own job, and claims feeds under its
replica id.

Replicas share the work by claiming only what they can start: a replica holds at most
`CLAIM_AHEAD` feeds (those polling plus a queue half as long) and claims more as soon as its
queue runs dry, so a fast replica takes more feeds and no feed waits long in a busy one's queue.

On stop, no new work is claimed; work in flight gets a grace period, then is cancelled, and the
leases of cancelled feed refreshes are given back so the next run polls those feeds at once
(the dispatcher hands back its own claims when cancelled).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.pipeline.pipeline import FEED_LEASE, Pipeline
from monitor.pipeline.refresh import MAX_FEEDS_IN_FLIGHT
from monitor.runtime.trouble import Trouble
from monitor.store import FeedState
from monitor.store.replicas import Activity, Heartbeat
from monitor.store.schedule import release_feed_leases

if TYPE_CHECKING:
    from monitor.runtime.metrics import Metrics

log = logging.getLogger(__name__)
TICK_SECONDS = 1.0
PRUNE_EVERY = timedelta(hours=1)
PRUNE_FIRST = timedelta(minutes=1)  # after start, once the first polls are under way
HEALTH_EVERY = timedelta(minutes=10)  # feed health (monitor.pipeline.health): thresholds are hours
CLAIM_AHEAD = MAX_FEEDS_IN_FLIGHT * 3 // 2  # feeds held at most: polling, plus a short queue


Tick = Callable[[], Coroutine[object, object, None]]  # what APScheduler calls; returns at once
Work = Callable[[], Coroutine[object, object, object]]  # what a tick starts in a task


@dataclass(frozen=True, slots=True)
class Job:
    """One of the scheduler's ticks: `tick` runs every `every`, first `first` after start."""

    name: str
    every: timedelta
    first: timedelta
    tick: Tick


class Scheduler:
    def __init__(
        self,
        pipeline: Pipeline,
        heartbeat: Heartbeat | None = None,
        metrics: Metrics | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pipeline = pipeline
        self.metrics = metrics
        self.heartbeat = heartbeat
        self.owner = heartbeat.replica_id if heartbeat is not None else None
        self.polls = 0  # finished since start, for the heartbeat
        self.deliveries = 0
        self._more_due = False  # the last claim was full: claim again as soon as there is room
        self._stopping = False
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._feeds_in_flight: dict[int, asyncio.Task[object]] = {}
        # The jobs' own work, one task per job at most. APScheduler cancels the coroutines it
        # runs when it shuts down; ticks only start these tasks, so stop() can let them finish.
        self._work: dict[str, asyncio.Task[object]] = {}
        self.last_tick: float | None = None  # time.monotonic() of the last feeds tick
        # a job failing at every tick (the database down) is logged once, then reminded
        self.troubles = {
            job: Trouble(what, log, clock)
            for job, what in (
                ("claim", "reading due feeds from the store"),
                ("deliveries", "delivering"),
                ("heartbeat", "heartbeat"),
                ("websub", "websub: renewing subscriptions"),
                ("health", "health: checking feed health"),
                ("retention", "retention: pruning item text"),
            )
        }

    def start(self) -> None:
        now = datetime.now(UTC)
        for job in self._jobs():
            self._scheduler.add_job(
                job.tick,
                "interval",
                seconds=job.every.total_seconds(),
                id=job.name,
                next_run_time=now + job.first,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        self._scheduler.start()

    def _jobs(self) -> list[Job]:
        """The table of this daemon's jobs, in the order they are added. Every job but `feeds`
        runs its work in a task of ours (`_start`), at most one at a time."""
        tick, at_once = timedelta(seconds=TICK_SECONDS), timedelta(0)
        jobs = [
            Job("feeds", tick, at_once, self._tick_feeds),
            Job("deliveries", tick, at_once, self._in_task("deliveries", self._deliver)),
        ]
        if self.pipeline.subscriber is not None:  # renew, retry, expire WebSub subscriptions
            jobs.append(Job("websub", tick, at_once, self._in_task("websub", self._renew_websub)))
        jobs += [
            Job("retention", PRUNE_EVERY, PRUNE_FIRST, self._in_task("retention", self._prune)),
            Job("health", HEALTH_EVERY, HEALTH_EVERY, self._in_task("health", self._health)),
        ]
        if self.heartbeat is not None:
            beat = self.heartbeat.interval
            jobs.append(Job("heartbeat", beat, beat, self._in_task("heartbeat", self._beat)))
        return jobs

    def _in_task(self, job: str, work: Work) -> Tick:
        async def tick() -> None:
            self._start(job, work)

        return tick

    @property
    def in_flight(self) -> int:
        return len(self._feeds_in_flight) + int(self._running("deliveries"))

    async def stop(self, grace: float, hurry: asyncio.Event | None = None) -> None:
        """Stop ticking, give in-flight work `grace` seconds (less if `hurry` is set), then
        cancel what is left and give back the leases of the feeds it held."""
        self._stopping = True
        self._scheduler.shutdown(wait=False)
        feeds = {task: feed_id for feed_id, task in self._feeds_in_flight.items()}
        tasks: list[asyncio.Task[object]] = [*feeds]
        tasks += [task for task in self._work.values() if not task.done()]
        if not tasks:
            return
        pending = await _wait(tasks, grace, hurry)
        claim = self._work.get("claim")
        for task in pending:
            if task is not claim:  # a claim's thread cannot be stopped: it ends, gives back
                task.cancel()  # what it took (as stopping began before), and is awaited below
        if not pending:
            return
        await asyncio.gather(*pending, return_exceptions=True)
        cancelled = [feeds[task] for task in pending if task in feeds]
        try:
            await asyncio.to_thread(release_feed_leases, self.pipeline.store.engine, cancelled)
        except Exception as exc:
            log.warning("cannot give back feed leases (%s); they expire on their own", exc)
        stopped = pending - {claim}  # the claim was awaited, not cancelled
        if stopped:
            log.warning(
                "cancelled %d unfinished tasks (%d feed polls, re-queued for the next run; "
                "deliveries in flight are handed back to the outbox)",
                len(stopped),
                len(cancelled),
            )

    async def _tick_feeds(self) -> None:
        self.last_tick = time.monotonic()
        if self.metrics is not None:
            self.metrics.observe_tick()
        self._start_claim()

    def _start_claim(self) -> None:
        if len(self._feeds_in_flight) < CLAIM_AHEAD and not self._stopping:
            self._start("claim", self._claim_feeds)

    async def _claim_feeds(self) -> object:
        room = CLAIM_AHEAD - len(self._feeds_in_flight)
        try:
            due = await asyncio.to_thread(
                self.pipeline.store.claim_feeds,
                datetime.now(UTC),
                FEED_LEASE,
                limit=room,
                owner=self.owner,
            )
        except Exception as exc:
            self.troubles["claim"].failed(exc)
            return None
        self.troubles["claim"].succeeded()
        self._more_due = len(due) == room
        if self._stopping:  # stopped while claiming: give these back untouched
            try:
                await asyncio.to_thread(
                    release_feed_leases, self.pipeline.store.engine, [f.id for f in due]
                )
            except Exception as exc:
                log.warning("cannot give back feed leases (%s); they expire on their own", exc)
            return None
        for feed in due:
            if feed.id not in self._feeds_in_flight:
                self._start_refresh(feed)
        return None

    def _start_refresh(self, feed: FeedState) -> None:
        task: asyncio.Task[object] = asyncio.create_task(self.pipeline.refresh(feed))
        self._feeds_in_flight[feed.id] = task
        task.add_done_callback(lambda _t: self._refreshed(feed.id))

    def _refreshed(self, feed_id: int) -> None:
        self._feeds_in_flight.pop(feed_id, None)
        self.polls += 1
        if self._more_due and len(self._feeds_in_flight) <= MAX_FEEDS_IN_FLIGHT:
            self._more_due = False  # one early claim at a time; the next full one re-arms
            self._start_claim()

    def _running(self, job: str) -> bool:
        task = self._work.get(job)
        return task is not None and not task.done()

    def _start(self, job: str, work: Work) -> None:
        """Start `job`'s work in a task of ours unless it is still running from a tick before."""
        if not self._running(job):
            self._work[job] = asyncio.create_task(work(), name=f"scheduler-{job}")

    async def _beat(self) -> object:
        assert self.heartbeat is not None
        activity = Activity(self.in_flight, self.polls, self.deliveries)
        try:
            await asyncio.to_thread(self.heartbeat.beat, datetime.now(UTC), activity)
        except Exception as exc:
            self.troubles["heartbeat"].failed(exc)
        else:
            self.troubles["heartbeat"].succeeded()
        return None

    async def _deliver(self) -> object:
        try:
            summary = await self.pipeline.deliver_due()
        except Exception as exc:
            self.troubles["deliveries"].failed(exc)
            return None
        self.troubles["deliveries"].succeeded()
        self.deliveries += summary.delivered
        return summary

    async def _renew_websub(self) -> object:
        try:
            if self.pipeline.subscriber is not None:
                await self.pipeline.subscriber.tick()
        except Exception as exc:
            self.troubles["websub"].failed(exc)
        else:
            self.troubles["websub"].succeeded()
        return None

    async def _health(self) -> object:
        try:
            report = await asyncio.to_thread(self.pipeline.check_feed_health)
        except Exception as exc:
            self.troubles["health"].failed(exc)
            return None
        self.troubles["health"].succeeded()
        return report

    async def _prune(self) -> object:
        try:
            pruned = await asyncio.to_thread(self.pipeline.prune_item_text)
        except Exception as exc:
            self.troubles["retention"].failed(exc)
            return None
        self.troubles["retention"].succeeded()
        return pruned


async def _wait(
    tasks: list[asyncio.Task[object]], grace: float, hurry: asyncio.Event | None
) -> set[asyncio.Task[object]]:
    """Wait for `tasks` up to `grace` seconds or until `hurry` is set; return those not done."""
    hurried = asyncio.ensure_future(hurry.wait()) if hurry is not None else None
    deadline = asyncio.get_running_loop().time() + grace
    try:
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            pending_tasks = {t for t in tasks if not t.done()}
            if not pending_tasks or remaining <= 0 or (hurried is not None and hurried.done()):
                return pending_tasks
            await asyncio.wait(
                {*pending_tasks, *([hurried] if hurried else [])},
                timeout=remaining,
                return_when=asyncio.FIRST_COMPLETED,
            )
    finally:
        if hurried is not None:
            hurried.cancel()
