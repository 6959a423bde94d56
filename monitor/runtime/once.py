"""`monitor run --once`: one cycle over every feed, then the deliveries due, then exit.

The same parts as the daemon (monitor.runtime.daemon): `Pipeline.refresh` for each feed and the
outbox's dispatcher; only the scheduling differs, and none of the daemon's own parts (scheduler,
HTTP server, config watcher, metrics) are loaded, so a cron job does not pay for them at each
start. Many feeds are polled by several processes, one per core (monitor.runtime.split).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from monitor.config.settings import LoadedConfig
from monitor.delivery.dispatcher import Dispatcher, DispatchSummary, make_delivery_client
from monitor.errors import StartError, StoreError
from monitor.feeds.fetcher import make_client
from monitor.feeds.hosts import host_key
from monitor.pipeline.pipeline import FEED_LEASE, Pipeline, sync_feeds
from monitor.pipeline.refresh import RefreshOutcome
from monitor.processes import can_fork
from monitor.runtime import split
from monitor.store import FeedState, Store, owners
from monitor.store.replicas import Replicas, log_released_processes
from monitor.wording import plural

Sleep = Callable[[float], Awaitable[None]]
log = logging.getLogger(__name__)
RENEW_EVERY = FEED_LEASE / 3  # leases still held are renewed this often during a cycle
# How long a thread holds the GIL, while others wait for it, before it must let go: during a
# cycle (sys.setswitchinterval, 5 ms by default). A cycle's parses run in threads beside the
# event loop and take turns on one core, and a parse cut short resumes with its caches cold: a
# batch wants the turns long, and the loop's latency costs it nothing (a response waits in the
# socket's buffer, every timeout is seconds).
SWITCH_INTERVAL = 0.05


class Progress(Protocol):
    """Told as the cycle goes (monitor.cli.progress draws it on a terminal)."""

    def polled(self, summary: CycleSummary, total: int) -> None: ...

    def delivering(self, summary: CycleSummary) -> None: ...

    def drawn_by_another(self) -> None:
        """In a process that does not draw the line (a child of a split cycle): its log records
        erase the line whoever drew it."""


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
        self.count(outcome.status, outcome.new_items, outcome.alerts)

    def count(self, status: str, new_items: int, alerts: int) -> None:
        self.feeds += 1
        self.new_items += new_items
        self.alerts += alerts
        if status == "fetched":
            self.fetched += 1
        elif status == "unchanged":
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


def run_cycle(
    config: LoadedConfig,
    max_wait: timedelta,
    *,
    progress: Progress | None = None,
    processes: int | None = None,
) -> CycleSummary:
    """`run_once` in `processes` processes (by default one per core for many feeds,
    monitor.runtime.split.processes_for); call it outside any event loop."""
    with _long_turns():
        return _run_cycle(config, max_wait, progress=progress, processes=processes)


@contextmanager
def _long_turns() -> Iterator[None]:
    """SWITCH_INTERVAL while the cycle runs (the split's children inherit it), then as before."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _run_cycle(
    config: LoadedConfig, max_wait: timedelta, *, progress: Progress | None, processes: int | None
) -> CycleSummary:
    count = split.processes_for(config, processes)
    if count == 1:
        return asyncio.run(run_once(config, max_wait, progress=progress))
    started = time.monotonic()
    feeds, skipped = asyncio.run(_prepare(config))
    if not can_fork():  # a thread outlived the preparation: polled here, all of them
        claimed = Claimed(feeds, skipped)
        summary = asyncio.run(run_once(config, max_wait, progress=progress, claimed=claimed))
    else:
        in_config_order = sorted(feeds, key=lambda feed: feed.id)
        parts = split.deal(in_config_order, count, lambda feed: host_key(feed.fetch_url))
        log.debug("polling %d feeds in %d processes", len(feeds), count)
        gc.freeze()  # the collector of a child then writes to none of the pages they share

        def child(number: int, fd: int) -> int:
            if progress is not None:
                progress.drawn_by_another()
            share = split.share_config(config, split.Share(number, count))
            return _poll_share(share, parts[number], fd)

        try:
            children = split.fork_children(count - 1, child)
        except OSError as exc:  # those forked already stop at their next feed: nobody reads
            raise StartError(
                f"cannot start a polling process: {exc}; `--processes 1` polls in this one"
            ) from exc
        claimed = Claimed(parts[0], skipped, tuple(zip(children, parts[1:], strict=True)))
        first = split.share_config(config, split.Share(0, count))
        summary = asyncio.run(run_once(first, max_wait, progress=progress, claimed=claimed))
    summary.seconds = time.monotonic() - started
    return summary


@dataclass(frozen=True, slots=True)
class Claimed:
    """What the first process claimed before forking: the feeds it polls, those held by others,
    and each child with the feeds it polls (all leased by the first process)."""

    feeds: list[FeedState]
    skipped: int
    children: tuple[tuple[split.Child, list[FeedState]], ...] = ()


async def run_once(
    config: LoadedConfig,
    max_wait: timedelta,
    *,
    sleep: Sleep = asyncio.sleep,
    progress: Progress | None = None,
    claimed: Claimed | None = None,
) -> CycleSummary:
    """Poll every feed once, deliver what is due, keep retrying while a retry falls due in time.

    `sleep` waits for the next retry to fall due (a caller keeping its own clock passes its own);
    `progress` is told of each feed done and of the delivery phase. With `claimed`, the feeds
    were synced and claimed already: its own are polled here while its children's reports are
    counted, and once they exited the deliveries of all are made here."""
    started = time.monotonic()
    summary = CycleSummary()
    # the children poll the other shares, a core each: parses go to threads
    parse_in_processes = False if claimed is not None and claimed.children else None
    async with _opened(config, parse_in_processes=parse_in_processes) as pipeline:
        if claimed is None:
            await asyncio.to_thread(pipeline.sync_feeds)
            claimed = Claimed(*await _claim_feeds(pipeline.store, config))
        summary.skipped = claimed.skipped
        await _poll_claimed(claimed, pipeline, summary, progress)
        await asyncio.to_thread(pipeline.check_feed_health)  # feed.unhealthy, feed.recovered
        if progress is not None:
            progress.delivering(summary)
        summary.deliveries = await _deliver_until(pipeline.dispatcher, max_wait, sleep)
        summary.pending = await pipeline.pending_count()
    summary.seconds = time.monotonic() - started
    return summary


@asynccontextmanager
async def _opened(
    config: LoadedConfig, *, parse_in_processes: bool | None
) -> AsyncIterator[Pipeline]:
    """A pipeline over its own store and HTTP clients, all closed at the end."""
    store = await asyncio.to_thread(Store.open, config.storage_url)
    try:
        async with make_client() as feed_client, make_delivery_client() as delivery_client:
            yield Pipeline(
                config,
                store,
                feed_client,
                delivery_client,
                parse_in_processes=parse_in_processes,
            )
    finally:
        await asyncio.to_thread(store.close)


Polled = Callable[[FeedState, RefreshOutcome], None]


async def _each_polled(pipeline: Pipeline, feeds: list[FeedState], on_polled: Polled) -> None:
    async def polled(feed: FeedState) -> tuple[FeedState, RefreshOutcome]:
        return feed, await pipeline.refresh(feed)

    for done in asyncio.as_completed([polled(feed) for feed in feeds]):
        on_polled(*await done)


async def _poll_claimed(
    claimed: Claimed, pipeline: Pipeline, summary: CycleSummary, progress: Progress | None
) -> None:
    """Poll the claimed feeds here, count what the children report until they all exited, and
    poll here what a child left unpolled."""
    total = len(claimed.feeds) + sum(len(feeds) for _, feeds in claimed.children)

    def counted(status: str, new_items: int, alerts: int) -> None:
        summary.count(status, new_items, alerts)
        if progress is not None:
            progress.polled(summary, total)

    def polled_here(_feed: FeedState, outcome: RefreshOutcome) -> None:
        counted(outcome.status, outcome.new_items, outcome.alerts)

    async def follow(child: split.Child, feeds: list[FeedState]) -> None:
        left = await _follow(child, feeds, counted)
        if left:
            await _each_polled(pipeline, left, polled_here)

    renewing = asyncio.create_task(_keep_leases(pipeline.store))
    try:
        async with asyncio.TaskGroup() as group:
            for child, feeds in claimed.children:
                group.create_task(follow(child, feeds))
            await _each_polled(pipeline, claimed.feeds, polled_here)
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing


async def _keep_leases(store: Store) -> None:
    """Renew the leases this process still holds while its cycle runs: a cycle over many feeds
    can outlast one lease, and a feed whose lease ended could be claimed meanwhile by a daemon or
    the next `run --once` (an overlapping cron run) and fetched twice. A child's feeds are leased
    by the first process too, so this covers them."""
    me = str(owners.current())
    while True:
        await asyncio.sleep(RENEW_EVERY.total_seconds())
        try:
            await asyncio.to_thread(store.renew_leases, me, datetime.now(UTC), FEED_LEASE)
        except StoreError as exc:  # the polls' own writes will say more; try again later
            log.warning("could not renew this cycle's feed leases: %s", exc)


async def _follow(
    child: split.Child, feeds: list[FeedState], counted: Callable[[str, int, int], None]
) -> list[FeedState]:
    """Count what `child` reports until it exits; the feeds it did not report polled."""
    polled: set[int] = set()

    def on_line(line: str) -> None:
        match line.split():
            case ["polled", feed_id, status, new_items, alerts] if (
                feed_id.isdigit() and new_items.isdigit() and alerts.isdigit()
            ):
                polled.add(int(feed_id))
                counted(status, int(new_items), int(alerts))

    code = await split.follow(child, on_line)
    left = [feed for feed in feeds if feed.id not in polled]
    how = f"status {code}" if code >= 0 else f"signal {-code}"
    if left:
        # their leases are this process's: polled again here, at worst a second conditional GET
        # of a feed whose poll the child recorded but did not report
        log.error(
            "a polling process (pid %d) exited with %s, %d of its %d feeds not polled; "
            "polling %s here",
            child.pid,
            how,
            len(left),
            len(feeds),
            "it" if len(left) == 1 else "them",
        )
    elif code != 0:  # what it polled is recorded: only its end went wrong
        log.warning("a polling process (pid %d) exited with %s", child.pid, how)
    return left


def _poll_share(config: LoadedConfig, feeds: list[FeedState], fd: int) -> int:
    """A child's life: poll `feeds`, write a line per feed polled to `fd`; its exit code."""
    with open(fd, "wb", buffering=0) as reports:

        def report(feed: FeedState, outcome: RefreshOutcome) -> None:
            line = f"polled {feed.id} {outcome.status} {outcome.new_items} {outcome.alerts}\n"
            reports.write(line.encode("ascii"))

        try:
            asyncio.run(_poll_share_async(config, feeds, report))
        except BrokenPipeError:  # the first process is gone: nobody would count the rest
            return 1
    return 0


async def _poll_share_async(config: LoadedConfig, feeds: list[FeedState], report: Polled) -> None:
    async with _opened(config, parse_in_processes=False) as pipeline:
        await _each_polled(pipeline, feeds, report)


async def _prepare(config: LoadedConfig) -> tuple[list[FeedState], int]:
    """Before the fork: the feeds synced and claimed, with the count of those held by others."""
    store = await asyncio.to_thread(Store.open, config.storage_url)
    try:
        await asyncio.to_thread(sync_feeds, store, config)
        return await _claim_feeds(store, config)
    finally:
        await asyncio.to_thread(store.close)


async def _claim_feeds(store: Store, config: LoadedConfig) -> tuple[list[FeedState], int]:
    """Every feed no other live process holds, and how many they hold. Leases of daemons whose
    heartbeat stopped, and of processes here that died (a `run --once` killed while polling),
    end first."""
    now = datetime.now(UTC)
    replicas = Replicas(store.engine)
    await asyncio.to_thread(replicas.release_dead, now)
    log_released_processes(await asyncio.to_thread(replicas.release_dead_processes, now))
    me = str(owners.current())
    feeds = await asyncio.to_thread(
        store.claim_feeds,
        now,
        FEED_LEASE,
        due_only=False,
        limit=max(1, len(config.settings.feeds)),
        owner=me,
    )
    return feeds, await asyncio.to_thread(replicas.feeds_held_by_others, now, me)


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
