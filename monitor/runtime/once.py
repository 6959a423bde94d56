"""`monitor run --once`: one cycle over every feed, then the deliveries due, then exit.

The same parts as the daemon (monitor.runtime.daemon): `Pipeline.refresh` for each feed and the
outbox's dispatcher; only the scheduling differs, and none of the daemon's own parts (scheduler,
HTTP server, config watcher, metrics) are loaded, so a cron job does not pay for them at each
start. Many feeds are polled by several processes, one per core (monitor.runtime.split).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from monitor.config.settings import LoadedConfig
from monitor.delivery.dispatcher import Dispatcher, DispatchSummary, make_delivery_client
from monitor.errors import StartError
from monitor.feeds.fetcher import make_client
from monitor.pipeline.pipeline import FEED_LEASE, Pipeline, sync_feeds
from monitor.pipeline.refresh import RefreshOutcome
from monitor.runtime import split
from monitor.store import FeedState, Store, owners
from monitor.store.replicas import Replicas, log_released_processes
from monitor.wording import plural

Sleep = Callable[[float], Awaitable[None]]
Report = Callable[[str], None]
log = logging.getLogger(__name__)


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
    count = split.processes_for(config, processes)
    started = time.monotonic()
    skipped = asyncio.run(_prepare(config)) if count > 1 else 0
    if count == 1 or not split.can_fork():  # a thread that outlived the preparation: no fork
        return asyncio.run(run_once(config, max_wait, progress=progress))
    log.debug("polling %d feeds in %d processes", len(config.settings.feeds), count)
    gc.freeze()  # the collector of a child then writes to none of the pages they share

    def child(number: int, fd: int) -> int:
        if progress is not None:
            progress.drawn_by_another()
        share = split.Share(number, count)
        return _poll_share(split.share_config(config, share), share, fd)

    try:
        children = split.fork_children(count - 1, child)
    except OSError as exc:  # those forked already stop at their next feed: nobody reads them
        raise StartError(
            f"cannot start a polling process: {exc}; `--processes 1` polls in this one"
        ) from exc
    shares = Shares(count, skipped, children)
    first = split.share_config(config, split.Share(0, count))
    summary = asyncio.run(run_once(first, max_wait, progress=progress, shares=shares))
    summary.seconds = time.monotonic() - started
    return summary


@dataclass(frozen=True, slots=True)
class Shares:
    """The first of `count` processes polling together: what it found held by others before
    the fork, and the children polling the other shares."""

    count: int
    skipped: int
    children: tuple[split.Child, ...]


async def run_once(
    config: LoadedConfig,
    max_wait: timedelta,
    *,
    sleep: Sleep = asyncio.sleep,
    progress: Progress | None = None,
    shares: Shares | None = None,
) -> CycleSummary:
    """Poll every feed once, deliver what is due, keep retrying while a retry falls due in time.

    `sleep` waits for the next retry to fall due (a caller keeping its own clock passes its own);
    `progress` is told of each feed done and of the delivery phase. With `shares`, only the
    first share is polled here; the children's reports are counted and, once they exited, the
    deliveries of all are made here."""
    started = time.monotonic()
    summary = CycleSummary()
    async with _opened(config, parse_in_processes=None if shares is None else False) as pipeline:
        if shares is None:
            await asyncio.to_thread(pipeline.sync_feeds)
            feeds = await _claim_feeds(pipeline.store, len(config.settings.feeds), summary)
            await _poll_here(pipeline, feeds, summary, Tally(progress, [len(feeds)]))
        else:  # the children poll the other shares: a core each, so parses go to threads
            summary.skipped = shares.skipped
            feeds = await _claim_share(pipeline.store, config, split.Share(0, shares.count))
            await _poll_with(shares, pipeline, feeds, summary, progress)
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


async def _each_polled(
    pipeline: Pipeline, feeds: list[FeedState], on_outcome: Callable[[RefreshOutcome], None]
) -> None:
    for done in asyncio.as_completed([pipeline.refresh(feed) for feed in feeds]):
        on_outcome(await done)


class Tally:
    """Tells `progress` of each feed done, once every process has said how many it claimed."""

    def __init__(self, progress: Progress | None, claimed: list[int | None]) -> None:
        self.progress = progress
        self.claimed = claimed  # per process; None until it reported

    def polled(self, summary: CycleSummary) -> None:
        if self.progress is None or None in self.claimed:
            return
        self.progress.polled(summary, sum(n for n in self.claimed if n is not None))


async def _poll_here(
    pipeline: Pipeline, feeds: list[FeedState], summary: CycleSummary, tally: Tally
) -> None:
    def counted(outcome: RefreshOutcome) -> None:
        summary.add(outcome)
        tally.polled(summary)

    await _each_polled(pipeline, feeds, counted)


async def _poll_with(
    shares: Shares,
    pipeline: Pipeline,
    feeds: list[FeedState],
    summary: CycleSummary,
    progress: Progress | None,
) -> None:
    """Poll `feeds` here while counting what the children report, until they all exited."""
    tally = Tally(progress, [len(feeds), *(None for _ in shares.children)])
    async with asyncio.TaskGroup() as group:
        for number, child in enumerate(shares.children, start=1):
            group.create_task(_follow(child, number, summary, tally))
        await _poll_here(pipeline, feeds, summary, tally)


async def _follow(child: split.Child, number: int, summary: CycleSummary, tally: Tally) -> None:
    polled = 0

    def on_line(line: str) -> None:
        nonlocal polled
        match line.split():
            case ["claimed", claimed] if claimed.isdigit():
                tally.claimed[number] = int(claimed)
            case ["polled", status, new_items, alerts] if new_items.isdigit() and alerts.isdigit():
                polled += 1
                summary.count(status, int(new_items), int(alerts))
            case _:
                return
        tally.polled(summary)

    code = await split.follow(child, on_line)
    claimed = tally.claimed[number]
    how = f"status {code}" if code >= 0 else f"signal {-code}"
    if claimed == polled:
        if code != 0:  # what it polled is recorded: only its end went wrong
            log.warning("a polling process (pid %d) exited with %s", child.pid, how)
        return
    missing = (claimed or 0) - polled
    for _ in range(missing):  # not polled this time: the next run polls them
        summary.count("failed", 0, 0)
    tally.claimed[number] = claimed or 0
    if claimed is None:
        what = "saying which feeds it claimed"
    else:
        what = f"polling {missing} of its {'feed' if missing == 1 else 'feeds'}"
    log.error(
        "a polling process (pid %d) exited with %s before %s; the next run polls %s",
        child.pid,
        how,
        what,
        "it" if missing == 1 else "them",
    )


def _poll_share(config: LoadedConfig, share: split.Share, fd: int) -> int:
    """A child's life: poll its share, write a line per feed polled to `fd`; its exit code."""
    with open(fd, "wb", buffering=0) as reports:

        def report(line: str) -> None:
            reports.write(line.encode("ascii") + b"\n")

        try:
            asyncio.run(_poll_share_async(config, share, report))
        except BrokenPipeError:  # the first process is gone: nobody would count the rest
            return 1
    return 0


async def _poll_share_async(config: LoadedConfig, share: split.Share, report: Report) -> None:
    async with _opened(config, parse_in_processes=False) as pipeline:
        feeds = await _claim_share(pipeline.store, config, share)
        report(f"claimed {len(feeds)}")

        def reported(outcome: RefreshOutcome) -> None:
            report(f"polled {outcome.status} {outcome.new_items} {outcome.alerts}")

        await _each_polled(pipeline, feeds, reported)


async def _prepare(config: LoadedConfig) -> int:
    """Before the fork: the feeds synced, dead processes' leases ended; the feeds held by
    others, which no share polls."""
    store = await asyncio.to_thread(Store.open, config.storage_url)
    try:
        await asyncio.to_thread(sync_feeds, store, config)
        await _release_dead(store)
        return await asyncio.to_thread(
            Replicas(store.engine).feeds_held_by_others, datetime.now(UTC), str(owners.current())
        )
    finally:
        await asyncio.to_thread(store.close)


async def _claim_share(store: Store, config: LoadedConfig, share: split.Share) -> list[FeedState]:
    return await asyncio.to_thread(
        store.claim_feeds,
        datetime.now(UTC),
        FEED_LEASE,
        due_only=False,
        limit=max(1, len(config.settings.feeds)),
        owner=str(owners.current()),
        share=(share.index, share.count),
    )


async def _release_dead(store: Store) -> None:
    now = datetime.now(UTC)
    replicas = Replicas(store.engine)
    await asyncio.to_thread(replicas.release_dead, now)
    log_released_processes(await asyncio.to_thread(replicas.release_dead_processes, now))


async def _claim_feeds(store: Store, configured: int, summary: CycleSummary) -> list[FeedState]:
    """Every feed no other live process holds. Leases of daemons whose heartbeat stopped, and of
    processes here that died (a `run --once` killed while polling), end first."""
    await _release_dead(store)
    now = datetime.now(UTC)
    replicas = Replicas(store.engine)
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
