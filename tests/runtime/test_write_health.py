"""/healthz says unhealthy while the store answers reads but refuses writes (a full disk, a write
lock held elsewhere), as the poll writer finds, and healthy again once a write succeeds.

The store is a real SQLite database whose writes to `feeds` a trigger refuses, as a full disk
would; the daemon's HTTP server answers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from monitor.delivery.dispatcher import Dispatcher, make_delivery_client
from monitor.delivery.settings import WebhookConfig
from monitor.runtime.metrics import Metrics
from monitor.store import Store
from monitor.store.store import PollFailure
from monitor.store.writer import PollWriter
from monitor.web.health import Health
from tests.delivery.support import store_with_alerts
from tests.support.receiver import SECRET, SignedReceiver
from tests.support.web import serving

REFUSE = sa.text(
    "CREATE TRIGGER refuse BEFORE UPDATE ON feeds "
    "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    yield opened
    opened.close()


async def _healthz(url: str) -> tuple[int, dict[str, object]]:
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{url}/healthz")
    document: dict[str, object] = answer.json()
    return answer.status_code, document


async def test_healthz_reports_writes_failing_until_one_succeeds(store: Store) -> None:
    now = datetime.now(UTC)
    store.sync_feeds([("http://feed.test/rss", None)], now)
    (feed,) = store.claim_feeds(now, timedelta(minutes=5), due_only=False)
    writer = PollWriter(store)
    poll = PollFailure(feed.id, now, "HTTP 500", now + timedelta(minutes=10))
    async with serving(Health(store, time.monotonic), Metrics(store).exposition) as web:
        assert (await _healthz(web.url))[0] == 200
        with store.engine.begin() as db:
            db.execute(REFUSE)
        with pytest.raises(sa.exc.IntegrityError):
            await writer.record_failure(poll)

        status, body = await _healthz(web.url)
        assert status == 503
        checks = body["checks"]
        assert isinstance(checks, dict)
        store_check = str(checks["store"])
        assert store_check.startswith("writes failing for ")
        assert store_check.endswith("(1 in a row): IntegrityError: database or disk is full")

        with store.engine.begin() as db:
            db.execute(sa.text("DROP TRIGGER refuse"))
        await writer.record_failure(poll)
        status, body = await _healthz(web.url)
        checks = body["checks"]
        assert isinstance(checks, dict)
        assert (status, body["status"], checks["store"]) == (200, "ok", "ok")


async def test_healthz_reports_failing_writes_of_delivery_attempts(
    tmp_path: Path, receiver: SignedReceiver
) -> None:
    store = store_with_alerts(tmp_path, 1, ("hook",))
    hooks = {
        "hook": WebhookConfig.model_validate(
            {"name": "hook", "url": receiver.url, "secret": SECRET, "retry": ["1h"]}
        )
    }
    health = Health(store, time.monotonic)
    try:
        with store.engine.begin() as db:
            db.execute(
                sa.text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON delivery_attempts "
                    "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
                )
            )
        async with make_delivery_client() as client:
            dispatcher = Dispatcher(store.outbox, client, hooks)
            assert (await dispatcher.deliver_due()).delivered == 0  # sent, not recorded
            healthy, checks = await health.check()
            assert not healthy
            assert checks["store"].endswith("IntegrityError: database or disk is full")
            with store.engine.begin() as db:
                db.execute(sa.text("DROP TRIGGER refuse"))
            await asyncio.to_thread(store.outbox.release, dispatcher.owner)
            assert (await dispatcher.deliver_due()).delivered == 1
        healthy, checks = await health.check()
        assert (healthy, checks["store"]) == (True, "ok")
    finally:
        store.close()
