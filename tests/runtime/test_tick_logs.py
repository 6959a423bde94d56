"""While PostgreSQL is unreachable, the scheduler's ticks log one line per change of state and a
reminder, not a traceback each second; and a line when the store works again.

The store is a real PostgreSQL database, dropped (its connections ended) while the scheduler
runs and created again afterwards; ticks are driven one by one, and the clock is the test's.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.config.settings import load_config
from monitor.delivery.dispatcher import make_delivery_client
from monitor.feeds.fetcher import make_client
from monitor.pipeline.pipeline import Pipeline
from monitor.runtime.scheduler import Scheduler
from monitor.runtime.trouble import REMIND_EVERY
from monitor.store import Store
from tests.support.pipeline import write_config


def _database(url: str, statement: str) -> None:
    parsed = sa.make_url(url)
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as db:
            db.execute(sa.text(statement.format(name=parsed.database)))
    finally:
        admin.dispose()


async def test_ticks_while_postgresql_is_unreachable_log_a_line_per_change(
    tmp_path: Path, postgresql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(
        tmp_path / "config", feeds=[{"url": "http://127.0.0.1:9/feed.xml"}], storage=postgresql_url
    )
    loaded = load_config(config, environ={})
    store = await asyncio.to_thread(Store.open, loaded.storage_url)
    now = [1000.0]
    caplog.set_level(logging.INFO, logger="monitor.runtime.scheduler")
    try:
        async with make_client() as feed_client, make_delivery_client() as delivery_client:
            pipeline = Pipeline(loaded, store, feed_client, delivery_client)
            scheduler = Scheduler(pipeline, clock=lambda: now[0])

            async def ticks(count: int) -> None:
                for _ in range(count):
                    await scheduler._claim_feeds()
                    await scheduler._deliver()
                    now[0] += 1.0

            await ticks(1)
            _database(postgresql_url, 'DROP DATABASE "{name}" WITH (FORCE)')
            await ticks(60)
            down = [r for r in caplog.records if r.levelno >= logging.ERROR]
            now[0] += REMIND_EVERY
            await ticks(5)
            reminded = [r for r in caplog.records if r.levelno >= logging.ERROR][len(down) :]
            _database(postgresql_url, 'CREATE DATABASE "{name}"')
            (await asyncio.to_thread(Store.open, postgresql_url)).close()  # migrated again
            await ticks(1)
    finally:
        await asyncio.to_thread(store.close)

    assert [r.getMessage().split(" (")[0] for r in down] == [
        "reading due feeds from the store failed",
        "delivering failed",
    ]
    assert all(r.exc_info is None for r in down)  # one line each, no traceback
    assert 'database "' in down[0].getMessage()
    assert [r.getMessage().split(", for")[0] for r in reminded] == [
        "reading due feeds from the store still failing",
        "delivering still failing",
    ]
    back = [r.getMessage() for r in caplog.records if "works again" in r.getMessage()]
    assert [m.split(",")[0] for m in back] == [
        "reading due feeds from the store works again",
        "delivering works again",
    ]
