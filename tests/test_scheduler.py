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
from monitor.pipeline.pipeline import Pipeline
from monitor.runtime.scheduler import Scheduler
from monitor.store import FeedState, Store
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
