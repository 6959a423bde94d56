"""The outbox dispatcher against a real receiver on 127.0.0.1 and a real store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from monitor.delivery.dispatcher import Dispatcher, make_delivery_client
from monitor.delivery.settings import WebhookConfig
from monitor.models import Item
from monitor.store import AttemptRecord, NewAlert, SeenItem, Store
from tests.delivery.support import UNHEALTHY, event
from tests.support.receiver import SECRET, SignedReceiver

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_delivery_client() as c:
        yield c


def _store_with_alerts(tmp_path: Path, count: int) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.sync_feeds([("http://feed", None)], NOW)
    (feed,) = store.claim_feeds(NOW, timedelta(minutes=1))
    seen = [
        SeenItem(
            Item(title=f"t{i}", guid=f"g{i}"),
            (NewAlert(f"alrt_{i}", "r", "high", 90.0, event(f"alrt_{i}"), ("hook",)),),
        )
        for i in range(count)
    ]
    store.record_poll(
        feed.id, NOW, next_check_at=NOW, etag=None, last_modified=None, title=None, seen=seen
    )
    return store


def _hook(receiver: SignedReceiver, retry: list[str]) -> dict[str, WebhookConfig]:
    return {
        "hook": WebhookConfig.model_validate(
            {"name": "hook", "url": receiver.url, "secret": SECRET, "retry": retry, "timeout": "5s"}
        )
    }


async def test_delivers_each_alert_signed(
    tmp_path: Path, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    store = _store_with_alerts(tmp_path, 3)
    summary = await Dispatcher(store.outbox, client, _hook(receiver, ["1h"])).deliver_due()
    assert summary.delivered == 3
    assert sorted(d.webhook_id for d in receiver.deliveries) == ["alrt_0", "alrt_1", "alrt_2"]
    assert all(d.valid_signature for d in receiver.deliveries)
    assert (
        await Dispatcher(store.outbox, client, _hook(receiver, ["1h"])).deliver_due()
        == summary.__class__()
    )
    store.close()


async def test_failures_retry_with_the_same_webhook_id_then_fail_visibly(
    tmp_path: Path, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    store = _store_with_alerts(tmp_path, 1)
    receiver.answer([503, 502, 500])
    dispatcher = Dispatcher(store.outbox, client, _hook(receiver, ["0s", "0s"]))
    for _ in range(3):
        await dispatcher.deliver_due()
    attempts = receiver.attempts()
    assert len(attempts) == 3
    assert {a.headers["webhook-id"] for a in attempts} == {"alrt_0"}
    assert receiver.deliveries == []
    (row,) = store.outbox.recent_alerts()
    assert (row.state, row.attempts, row.last_error) == (
        "failed",
        3,
        "HTTP 500 Internal Server Error",
    )
    store.close()


async def test_a_redirect_is_a_failure_and_is_not_followed(
    tmp_path: Path, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    store = _store_with_alerts(tmp_path, 1)
    receiver.answer([(302, {"Location": receiver.server.url("/elsewhere")})])
    await Dispatcher(store.outbox, client, _hook(receiver, ["1h"])).deliver_due()
    assert receiver.server.requests_to("/elsewhere") == []
    (row,) = store.outbox.recent_alerts()
    assert row.state == "pending"
    assert "redirects are not followed" in (row.last_error or "")
    store.close()


async def test_an_unreachable_receiver_keeps_the_alert_queued(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    store = _store_with_alerts(tmp_path, 1)
    hook = WebhookConfig.model_validate(
        {"name": "hook", "url": "http://127.0.0.1:9/hook", "secret": SECRET, "retry": ["1h"]}
    )
    summary = await Dispatcher(store.outbox, client, {"hook": hook}).deliver_due()
    assert (summary.delivered, summary.retrying) == (0, 1)
    (row,) = store.outbox.recent_alerts()
    assert row.state == "pending"
    assert "connection failed" in (row.last_error or "")
    assert "127.0.0.1:9" not in (row.last_error or "")
    store.close()


async def test_a_rate_limit_does_not_spend_the_retry_budget(
    tmp_path: Path, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    store = _store_with_alerts(tmp_path, 1)
    receiver.answer([503, (429, {"Retry-After": "0"}), 429, 429])
    dispatcher = Dispatcher(store.outbox, client, _hook(receiver, ["0s", "0s"]))
    # 429s in a row back off: no wait, then as long as they have lasted
    while (await dispatcher.deliver_due()).delivered == 0:
        due = await dispatcher.next_due()
        assert due is not None
        assert due - datetime.now(UTC) < timedelta(seconds=2)
        await asyncio.sleep(max((due - datetime.now(UTC)).total_seconds(), 0))
    assert len(receiver.attempts()) == 5
    assert [d.webhook_id for d in receiver.deliveries] == ["alrt_0"]
    (row,) = store.outbox.recent_alerts()
    assert (row.state, row.attempts) == ("delivered", 5)  # every attempt shown
    store.close()


async def test_a_rate_limit_that_lasts_a_day_counts_again(
    tmp_path: Path, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    store = _store_with_alerts(tmp_path, 1)
    (due,) = store.outbox.claim_deliveries(NOW, timedelta(minutes=1), {"hook": 100})
    limited = AttemptRecord("transient", 429, "HTTP 429 Too Many Requests", 5)
    long_ago = datetime.now(UTC) - timedelta(days=1, minutes=1)
    assert store.outbox.record_attempt(
        due.id, long_ago, limited, state="pending", next_attempt_at=NOW, counted=False
    )
    assert store.outbox.rate_limited_since(due.id) == long_ago
    receiver.answer([429] * 5)
    dispatcher = Dispatcher(store.outbox, client, _hook(receiver, ["0s"]))
    for _ in range(3):
        await dispatcher.deliver_due()
    assert len(receiver.attempts()) == 2  # each 429 counted: one retry, then failed
    (row,) = store.outbox.recent_alerts()
    assert row.state == "failed"
    assert (row.last_error or "").startswith("HTTP 429 Too Many Requests")
    store.close()


@pytest.mark.parametrize("status", [200, 410])
async def test_an_outcome_after_the_claim_ended_leaves_the_row_to_its_new_owner(
    tmp_path: Path,
    receiver: SignedReceiver,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    store = _store_with_alerts(tmp_path, 1)
    dispatcher = Dispatcher(store.outbox, client, _hook(receiver, ["1h"]), owner="slow")
    now = datetime.now(UTC)
    (due,) = store.outbox.claim_deliveries(now, timedelta(minutes=2), {"hook": 100}, owner="slow")
    later = now + timedelta(minutes=3)  # the lease ran out; another replica took the row
    assert store.outbox.claim_deliveries(later, timedelta(minutes=2), {"hook": 100}, owner="fast")
    receiver.answer([status])
    with caplog.at_level("WARNING", logger="monitor.delivery.dispatcher"):
        assert await dispatcher._deliver(due) == "superseded"
    assert "came after its claim ended" in caplog.text
    assert store.outbox.leases_held(later, ["hook"]) == {"fast": 1}
    (row,) = store.outbox.recent_alerts()
    assert (row.state, row.attempts) == ("pending", 1)  # the attempt is in its history
    # a 410 disables the webhook all the same: the receiver is gone whoever holds the row
    assert ("hook" in store.outbox.disabled_webhooks()) == (status == 410)
    store.close()


async def test_delivery_logs_carry_the_message_id_and_the_alert_id_only_of_an_alert(
    tmp_path: Path,
    receiver: SignedReceiver,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _store_with_alerts(tmp_path, 1)
    event_id = store.outbox.enqueue_event("feed.unhealthy", UNHEALTHY, ["hook"], datetime.now(UTC))
    with caplog.at_level("INFO", logger="monitor.delivery.dispatcher"):
        await Dispatcher(store.outbox, client, _hook(receiver, ["1h"])).deliver_due()
    delivered = [r for r in caplog.records if r.getMessage().startswith("delivered")]
    keys = {(r.__dict__["message_id"], r.__dict__.get("alert_id")) for r in delivered}
    assert keys == {("alrt_0", "alrt_0"), (event_id, None)}  # a feed event belongs to no alert
    store.close()
