"""The scheduler in process, over a real SQLite store: what stopping does to work under way."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.config.settings import load_config
from monitor.delivery.dispatcher import make_delivery_client
from monitor.feeds.fetcher import make_client
from monitor.feeds.websub import make_hub_client
from monitor.pipeline.pipeline import Pipeline
from monitor.runtime.scheduler import Scheduler
from monitor.store import FeedState, Store
from monitor.store.replicas import Heartbeat
from monitor.store.tables import feeds
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.servers import LocalServer


@pytest.mark.parametrize("grace", [10.0, 0.0])
async def test_stopping_while_feeds_are_claimed_gives_them_back_without_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, grace: float
) -> None:
    """A stop that lands while the store is claiming feeds lets the claim finish, gives those
    feeds back at once and logs no job error (APScheduler cancels the jobs it is running).
    With no grace left the claim is still awaited: its thread cannot be stopped."""
    server = LocalServer()
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    config = write_config(tmp_path / "config", feeds=[{"url": server.url("/wire.xml")}])
    loaded = load_config(config, environ={})
    store = await asyncio.to_thread(Store.open, loaded.storage_url)
    claiming, claim_may_end, claimed = threading.Event(), threading.Event(), threading.Event()
    claim_feeds = store.claim_feeds

    def slow_claim(now: datetime, lease: timedelta, **options: object) -> list[FeedState]:
        claiming.set()
        claim_may_end.wait(10)
        try:
            return claim_feeds(now, lease, **options)  # type: ignore[arg-type]
        finally:
            claimed.set()

    store.claim_feeds = slow_claim  # type: ignore[method-assign]
    caplog.set_level(logging.INFO)
    try:
        async with make_client() as feed_client, make_delivery_client() as delivery_client:
            pipeline = Pipeline(loaded, store, feed_client, delivery_client)
            await asyncio.to_thread(pipeline.sync_feeds)
            scheduler = Scheduler(pipeline)
            scheduler.start()
            assert await asyncio.to_thread(claiming.wait, 10)
            stopping = asyncio.create_task(scheduler.stop(grace=grace))
            await asyncio.sleep(0)  # stop() has shut APScheduler down and waits for the claim
            assert not stopping.done()
            claim_may_end.set()
            await stopping
        assert await asyncio.to_thread(claimed.wait, 10)  # the store's claim has ended
        with store.engine.connect() as db:
            leases = db.execute(sa.select(feeds.c.url, feeds.c.lease_until)).all()
    finally:
        claim_may_end.set()
        await asyncio.to_thread(store.close)
        server.close()
    assert leases == [(server.url("/wire.xml"), None)]  # due again for the next run, not leased
    assert not server.requests  # claimed after the stop began: never polled
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    errors += [r for r in caplog.records if "cannot give back" in r.getMessage()]
    assert not errors, [r.getMessage() for r in errors]


async def test_the_jobs_each_daemon_runs_with_their_intervals_and_first_runs(
    tmp_path: Path,
) -> None:
    """Four jobs always; `websub` once WebSub is on, `heartbeat` with a heartbeat. First runs are
    relative to the start (the feeds tick runs at once)."""
    config = write_config(tmp_path / "config", feeds=[{"url": "http://127.0.0.1:9/feed.xml"}])
    loaded = load_config(config, environ={})
    store = await asyncio.to_thread(Store.open, loaded.storage_url)
    second, minute, hour = timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1)
    try:
        async with (
            make_client() as feed_client,
            make_delivery_client() as delivery_client,
            make_hub_client() as hub_client,
        ):
            pipeline = Pipeline(loaded, store, feed_client, delivery_client)
            plain = await _jobs(Scheduler(pipeline))
            pipeline.use_websub(hub_client)
            beat = Heartbeat(store.engine, "replica-a", timedelta(seconds=30))
            full = await _jobs(Scheduler(pipeline, beat))
    finally:
        await asyncio.to_thread(store.close)
    always = [
        ("feeds", second, timedelta(0)),
        ("deliveries", second, timedelta(0)),
        ("retention", hour, minute),
        ("health", 10 * minute, 10 * minute),
    ]
    assert plain == always
    heartbeat = ("heartbeat", timedelta(seconds=30), timedelta(seconds=30))
    assert full == [*always, ("websub", second, timedelta(0)), heartbeat]


JOB_NAMES = ("feeds", "deliveries", "retention", "health", "websub", "heartbeat")


async def _jobs(scheduler: Scheduler) -> list[tuple[str, timedelta, timedelta]]:
    """What `start` registered with APScheduler: id, interval, first run after the feeds tick's."""
    scheduler.start()
    scheduler._scheduler.pause()  # before the loop runs a job: this test only reads the table
    try:
        jobs = scheduler._scheduler.get_jobs()
        start = next(job.next_run_time for job in jobs if job.id == "feeds")
        table = {job.id: (job.trigger.interval, job.next_run_time - start) for job in jobs}
        return [(name, *table[name]) for name in JOB_NAMES if name in table]
    finally:
        await scheduler.stop(grace=0.0)
