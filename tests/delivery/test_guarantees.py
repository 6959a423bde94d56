"""Delivery guarantees against real receivers on 127.0.0.1: 410, Retry-After, Discord's
`retry_after`, isolation between targets, claims of dead processes, secrets kept out of logs."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from monitor.delivery.dispatcher import Dispatcher, DispatchSummary, make_delivery_client
from monitor.delivery.settings import WebhookConfig
from monitor.runtime.once import _deliver_until
from monitor.store import Store
from monitor.store.owners import Owner, current
from tests.delivery.support import hook, store_with_alerts
from tests.support.receiver import SECRET, SignedReceiver
from tests.support.servers import LocalServer, RecordedRequest, Reply


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_delivery_client() as c:
        yield c


def _hooks(*hooks: WebhookConfig) -> dict[str, WebhookConfig]:
    return {h.name: h for h in hooks}


class Timed:
    """A route that records when each request came and answers with the next reply."""

    def __init__(self, server: LocalServer, path: str, replies: list[Reply]) -> None:
        self.times: list[float] = []
        self.replies = replies
        self.url = server.url(path)
        server.route(path, self._handle)

    def _handle(self, _request: RecordedRequest) -> Reply:
        self.times.append(time.monotonic())
        return self.replies.pop(0) if self.replies else Reply(200, b"{}")


class Blocking:
    """A receiver that holds every request until `release` is set (or 30 s pass)."""

    def __init__(self, server: LocalServer, path: str = "/slow") -> None:
        self.release = threading.Event()
        self.arrived = threading.Semaphore(0)
        self.url = server.url(path)
        server.route(path, self._handle)

    def _handle(self, _request: RecordedRequest) -> Reply:
        self.arrived.release()
        self.release.wait(30)
        return Reply(200, b"{}")


async def test_410_disables_the_webhook_visibly_and_holds_its_alerts(
    tmp_path: Path,
    receiver: SignedReceiver,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = store_with_alerts(tmp_path, 3)
    receiver.answer([410])
    hooks = _hooks(hook(url=receiver.url, retry=["0s"], concurrency=1))
    with caplog.at_level(logging.ERROR):
        summary = await _deliver_until(Dispatcher(store.outbox, client, hooks), timedelta(0))
    assert len(receiver.attempts()) == 1  # the first 410 stops the webhook
    assert (summary.delivered, summary.failed) == (0, 0)
    assert any("410 Gone: disabled" in r.getMessage() for r in caplog.records)
    states = store.outbox.webhook_states()
    assert states["hook"].disabled_at is not None
    assert "410" in (states["hook"].disabled_reason or "")
    assert states["hook"].counts == {"pending": 3}
    # a new dispatcher (a later run) leaves it alone, and says nothing is due
    dispatcher = Dispatcher(store.outbox, client, hooks)
    assert await dispatcher.deliver_due() == summary.__class__()
    assert await dispatcher.next_due() is None
    assert len(receiver.attempts()) == 1
    # enabled again: everything is delivered, the alert that met the 410 too
    assert store.outbox.enable_webhook("hook", datetime.now(UTC))
    again = await Dispatcher(store.outbox, client, hooks).deliver_due()
    assert again.delivered == 3
    assert sorted(d.webhook_id for d in receiver.deliveries) == ["alrt_0", "alrt_1", "alrt_2"]
    store.close()


async def test_a_disabled_webhook_whose_url_changed_is_enabled_again(
    tmp_path: Path, receiver: SignedReceiver, client: httpx.AsyncClient, server: LocalServer
) -> None:
    store = store_with_alerts(tmp_path, 1)
    server.static("/gone", b"", status=410)
    await Dispatcher(store.outbox, client, _hooks(hook(url=server.url("/gone")))).deliver_due()
    assert store.outbox.disabled_webhooks().keys() == {"hook"}
    moved = _hooks(hook(url=receiver.url))
    assert (await Dispatcher(store.outbox, client, moved).deliver_due()).delivered == 1
    assert store.outbox.disabled_webhooks() == {}
    store.close()


async def test_429_retry_after_is_waited_then_delivered_once(
    tmp_path: Path, server: LocalServer, client: httpx.AsyncClient
) -> None:
    store = store_with_alerts(tmp_path, 1)
    route = Timed(server, "/hook", [Reply(429, b"", {"Retry-After": "1"})])
    hooks = _hooks(hook(url=route.url, retry=["0s", "0s"]))
    summary = await _deliver_until(Dispatcher(store.outbox, client, hooks), timedelta(seconds=10))
    assert (summary.delivered, summary.failed) == (1, 0)
    assert len(route.times) == 2
    assert route.times[1] - route.times[0] >= 0.95
    store.close()


async def test_discord_retry_after_in_the_body_is_honored(
    tmp_path: Path, server: LocalServer, client: httpx.AsyncClient
) -> None:
    store = store_with_alerts(tmp_path, 1)
    body = b'{"message": "You are being rate limited.", "retry_after": 0.6, "global": false}'
    route = Timed(
        server, "/api/webhooks/1/tok", [Reply(429, body, {"Content-Type": "application/json"})]
    )
    hooks = _hooks(hook(format="discord", url=route.url, retry=["0s", "0s"]))
    summary = await _deliver_until(Dispatcher(store.outbox, client, hooks), timedelta(seconds=10))
    assert summary.delivered == 1
    assert route.times[1] - route.times[0] >= 0.55
    requests = server.requests_to("/api/webhooks/1/tok")
    assert all(r.path.endswith("?wait=true") for r in requests)
    store.close()


async def test_discord_empty_bucket_pauses_only_discord(
    tmp_path: Path, server: LocalServer, client: httpx.AsyncClient
) -> None:
    store = store_with_alerts(tmp_path, 2, ("discord",))
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "0.5"}
    route = Timed(server, "/d", [Reply(200, b"{}", headers), Reply(200, b"{}", headers)])
    hooks = _hooks(hook("discord", format="discord", url=route.url))
    summary = await _deliver_until(Dispatcher(store.outbox, client, hooks), timedelta(seconds=10))
    assert summary.delivered == 2
    assert route.times[1] - route.times[0] >= 0.45
    store.close()


async def test_a_slow_target_never_delays_the_others(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    store = store_with_alerts(tmp_path, 3, ("slow", "fast"))
    slow = Blocking(server)
    hooks = _hooks(
        hook("slow", url=slow.url, timeout="30s"), hook("fast", url=receiver.url, retry=["1h"])
    )
    dispatcher = Dispatcher(store.outbox, client, hooks, claim_poll=0.05)
    run = asyncio.create_task(dispatcher.deliver_due())
    # the fast receiver gets all three while the slow one holds every request it got
    got_all = await asyncio.to_thread(receiver.server.wait_for, lambda reqs: len(reqs) >= 3, 10.0)
    assert got_all
    assert not run.done()
    # and alerts created meanwhile (the daemon's case) go out too, still while slow is stuck
    await asyncio.to_thread(
        store_with_alerts, tmp_path, 2, ("slow", "fast"), start=3, store=store, feed_url="http://f2"
    )
    assert await asyncio.to_thread(receiver.server.wait_for, lambda reqs: len(reqs) >= 5, 10.0)
    assert not run.done()
    slow.release.set()
    summary = await asyncio.wait_for(run, 20)
    assert summary.delivered == 10
    assert {d.webhook_id for d in receiver.deliveries} == {f"alrt_{i}" for i in range(5)}
    store.close()


async def test_a_rate_limited_target_never_delays_the_others(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    store = store_with_alerts(tmp_path, 4, ("chat", "fast"))
    chat = Timed(server, "/chat", [])
    hooks = _hooks(
        hook("chat", format="slack", url=chat.url, rate_limit=2),  # 2/s: 4 take 1.5 s
        hook("fast", url=receiver.url),
    )
    started = time.monotonic()
    run = asyncio.create_task(Dispatcher(store.outbox, client, hooks).deliver_due())
    assert await asyncio.to_thread(receiver.server.wait_for, lambda reqs: len(reqs) >= 4, 10.0)
    fast_done = time.monotonic() - started
    summary = await run
    assert summary.delivered == 8
    # paced: a burst of 2, then 2/s, so the 4th starts a second after the lane was made at the
    # earliest (measured from before it, not from the 1st arrival, which a slow first connection
    # on a busy machine delays while the pacing of the others does not wait for it)
    assert chat.times[-1] - started >= 1.0
    assert fast_done < chat.times[-1] - started  # the fast one finished before the paced one
    store.close()


def _other_process_owner(pid: int) -> str:
    me = current()
    stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return str(Owner(me.host, me.boot, me.pid_ns, pid, stat[19]))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
async def test_claims_of_a_dead_process_are_released_at_once_and_a_live_ones_kept(
    tmp_path: Path, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    store = store_with_alerts(tmp_path, 2)
    now = datetime.now(UTC)
    process = await asyncio.create_subprocess_exec("sleep", "30")
    alive = _other_process_owner(process.pid)
    (first,) = store.outbox.claim_deliveries(now, timedelta(hours=1), {"hook": 1}, owner=alive)
    hooks = _hooks(hook(url=receiver.url))
    assert (await Dispatcher(store.outbox, client, hooks).deliver_due()).delivered == 1
    assert [d.webhook_id for d in receiver.deliveries] == ["alrt_1"]  # alrt_0 is held
    process.kill()
    await process.wait()
    assert (await Dispatcher(store.outbox, client, hooks).deliver_due()).delivered == 1
    assert sorted(d.webhook_id for d in receiver.deliveries) == ["alrt_0", "alrt_1"]
    assert first.alert_id == "alrt_0"
    store.close()


async def test_an_unprovable_owner_keeps_its_lease(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    store = store_with_alerts(tmp_path, 1)
    elsewhere = "other-host|boot|pid:[1]|4242|1"
    store.outbox.claim_deliveries(
        datetime.now(UTC), timedelta(hours=1), {"hook": 100}, owner=elsewhere
    )
    dispatcher = Dispatcher(store.outbox, client, _hooks(hook()))
    assert await dispatcher.deliver_due() == DispatchSummary()
    due = await dispatcher.next_due()
    assert due is not None
    assert due > datetime.now(UTC) + timedelta(minutes=59)  # not due before the lease ends
    store.close()


async def test_cancelling_hands_claims_back(
    tmp_path: Path, server: LocalServer, client: httpx.AsyncClient
) -> None:
    store = store_with_alerts(tmp_path, 2)
    slow = Blocking(server)
    dispatcher = Dispatcher(store.outbox, client, _hooks(hook(url=slow.url, timeout="30s")))
    run = asyncio.create_task(dispatcher.deliver_due())
    assert await asyncio.to_thread(slow.arrived.acquire, True, 10)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    slow.release.set()
    assert store.outbox.leases_held(datetime.now(UTC), ["hook"]) == {}
    assert (
        len(store.outbox.claim_deliveries(datetime.now(UTC), timedelta(minutes=1), {"hook": 100}))
        == 2
    )
    store.close()


TOKEN = "XXXXSECRETTOKEN0123"


async def test_secrets_and_url_tokens_never_reach_logs_or_errors(
    tmp_path: Path, server: LocalServer, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    store = store_with_alerts(tmp_path, 1, ("slack", "signed", "down"))
    path = f"/services/T000/B000/{TOKEN}"
    # a receiver that echoes the URL back in its refusal
    server.route(path, lambda r: Reply(400, f"invalid_token {r.path}".encode()))
    server.static("/signed", b"nope", status=503)
    hooks = _hooks(
        hook("slack", format="slack", url=server.url(path), retry=["0s"]),
        hook("signed", url=server.url(f"/signed?token={TOKEN}"), retry=["0s"]),
        hook("down", url=f"http://user:{TOKEN}@127.0.0.1:9/{TOKEN}", retry=["0s"]),
    )
    with caplog.at_level(logging.DEBUG):
        await _deliver_until(Dispatcher(store.outbox, client, hooks), timedelta(seconds=5))
    rows = store.outbox.recent_alerts()
    assert {r.state for r in rows} == {"failed"}
    texts = [r.getMessage() for r in caplog.records] + [repr(r.args) for r in caplog.records]
    texts += [r.last_error or "" for r in rows] + [repr(h) for h in hooks.values()]
    texts += [str(s) for s in store.outbox.webhook_states().values()]
    secret_key = SECRET.removeprefix("whsec_")
    for text in texts:
        assert TOKEN not in text
        assert secret_key not in text
    slack_row = next(r for r in rows if r.webhook == "slack")
    assert "invalid_token" in (slack_row.last_error or "")  # the useful part is kept
    store.close()


async def test_store_shared_by_two_dispatchers_delivers_each_alert_once(
    tmp_path: Path, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    store = store_with_alerts(tmp_path, 20)
    other = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    hooks = _hooks(hook(url=receiver.url))
    one = Dispatcher(store.outbox, client, hooks, owner="a|b|c|1|1")
    two = Dispatcher(other.outbox, client, hooks, owner="a|b|c|2|1")
    first, second = await asyncio.gather(one.deliver_due(), two.deliver_due())
    assert first.delivered + second.delivered == 20
    ids = [d.webhook_id for d in receiver.deliveries]
    assert len(ids) == len(set(ids)) == 20
    other.close()
    store.close()


async def test_a_long_retry_after_pauses_the_target_without_holding_its_alerts(
    tmp_path: Path, server: LocalServer, client: httpx.AsyncClient
) -> None:
    store = store_with_alerts(tmp_path, 3)
    route = Timed(server, "/hook", [Reply(429, b"", {"Retry-After": "3600"})])
    hooks = _hooks(hook(url=route.url, concurrency=2, rate_limit=1))
    dispatcher = Dispatcher(store.outbox, client, hooks)
    started = time.monotonic()
    summary = await _deliver_until(dispatcher, timedelta(seconds=30))
    assert time.monotonic() - started < 10  # not an hour: the second alert was handed back
    assert len(route.times) == 1
    assert (summary.delivered, summary.failed) == (0, 0)
    assert store.outbox.leases_held(datetime.now(UTC), ["hook"]) == {}
    due = await dispatcher.next_due()
    assert due is not None
    assert due > datetime.now(UTC) + timedelta(minutes=59)
    store.close()
