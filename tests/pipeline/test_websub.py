"""WebSub with real parts: the daemon as a subprocess, its own HTTP server as the callback, a hub
written in tests/support/hub.py, feeds and a signed-webhook receiver on 127.0.0.1. The wire
protocol alone (signatures, requests to a hostile hub) is tests/feeds/test_websub.py."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import hmac
import itertools
import json
import sqlite3
import threading
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.config.settings import FeedConfig, load_config
from monitor.delivery.dispatcher import make_delivery_client
from monitor.durations import parse_duration
from monitor.errors import ConfigError
from monitor.feeds.fetcher import make_client
from monitor.feeds.websub import HUB_REQUESTS_AT_ONCE, make_hub_client
from monitor.pipeline.pipeline import Pipeline
from monitor.pipeline.refresh import MAX_FEEDS_IN_FLIGHT, RefreshOutcome, feed_settings
from monitor.pipeline.websub.callback import Callback
from monitor.pipeline.websub.shared import InForce
from monitor.pipeline.websub.subscriber import Subscriber
from monitor.runtime.metrics import Metrics
from monitor.store import FeedState, Store
from monitor.store import subscriptions as subs
from monitor.store.replicas import Replicas
from monitor.web.health import Health
from monitor.web.websub import PUSH_READS_AT_ONCE, Reply
from tests.conftest import run_cli
from tests.ops.daemon import Daemon, edit_config
from tests.support.burst import Clock
from tests.support.hub import HubEvent, LocalHub, hub_document, websub_config
from tests.support.pipeline import serve_feed, write_config
from tests.support.receiver import SignedReceiver
from tests.support.servers import LocalServer
from tests.support.servers import Reply as ServerReply
from tests.support.web import Served, serving

SECRET_KEY = "0123456789abcdef" * 4
BODY = b"<rss version='2.0'><channel><title>x</title></channel></rss>"


def _sign(method: str, key: str = SECRET_KEY, body: bytes = BODY) -> str:
    return f"{method}=" + hmac.new(key.encode(), body, getattr(hashlib, method)).hexdigest()


# -- config -------------------------------------------------------------------------------------


def _config_with(tmp_path: Path, **top: object) -> Path:
    directory = write_config(tmp_path / "config", feeds=[{"url": "https://a.test/feed"}])
    edit_config(directory, lambda document: document.update(top))
    return directory


def _problems(directory: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(directory, environ={})
    return [f"{p.line}:{p.column}: {p.message}" for p in raised.value.problems]


def test_websub_config_needs_http_and_a_plain_callback(tmp_path: Path) -> None:
    callback = {"callback": "https://monitor.example.org/websub", "lease": "2d"}
    directory = _config_with(tmp_path, websub=callback)
    lines = (directory / "monitor.yaml").read_text(encoding="utf-8").splitlines()
    line = lines.index("websub:") + 1
    needs = "websub: needs `http:` (or MONITOR_HTTP): hubs call back the daemon's HTTP server"
    assert _problems(directory) == [f"{line}:1: {needs}"]
    config = load_config(_config_with(tmp_path, websub=callback, http="127.0.0.1:0"), environ={})
    assert config.settings.websub is not None
    assert config.settings.websub.callback == "https://monitor.example.org/websub/"
    assert config.settings.websub.lease.days == 2
    assert config.settings.feeds[0].websub is True
    with_env = _config_with(tmp_path, websub=callback)
    assert load_config(with_env, environ={"MONITOR_HTTP": "127.0.0.1:0"}).settings.websub

    bad = {"callback": "ftp://x/websub/?a=1", "lease": "0s"}
    problems = _problems(_config_with(tmp_path, websub=bad, http="127.0.0.1:0"))
    assert any("websub.callback: 'ftp://x/websub/?a=1' is not an http://" in p for p in problems)
    assert any("websub.lease: lease must be at least 1s" in p for p in problems)
    unknown = _problems(_config_with(tmp_path, websub={"calback": "https://x/"}, http=":1"))
    assert any("unknown key 'calback'; did you mean 'callback'?" in p for p in unknown)


def test_a_feed_opts_out_with_websub_false(tmp_path: Path) -> None:
    directory = write_config(
        tmp_path / "config", feeds=[{"url": "https://a.test/feed", "websub": False}]
    )
    assert load_config(directory, environ={}).settings.feeds[0].websub is False


# -- the HTTP server's bounds, in process ----------------------------------------------------------


class _Callbacks:
    """A recording stand-in for monitor.pipeline.websub.callback.Callback, to test the server's
    bounds."""

    max_body = 1000
    body_deadline = 0.5

    def __init__(self, tokens: set[str]) -> None:
        self.tokens = tokens
        self.pushed: list[bytes] = []
        self.raw: list[bytes] = []
        self.headers: list[Mapping[str, str]] = []
        self.refusals: list[str] = []
        self.finds = 0
        self._found = asyncio.Condition()

    async def find(self, token: str) -> str | None:
        async with self._found:
            self.finds += 1
            self._found.notify_all()
        return token if token in self.tokens else None

    async def reading(self, count: int) -> None:
        """Once `count` pushes were looked up (and so, for known tokens, are being read)."""
        async with self._found:
            await self._found.wait_for(lambda: self.finds >= count)

    async def verify(self, token: str, query: Mapping[str, str]) -> Reply:
        return 200, "text/plain", query.get("hub.challenge", "").encode()

    async def push(self, found: str, headers: Mapping[str, str], body: bytes, raw: bytes) -> Reply:
        self.pushed.append(body)
        self.raw.append(raw)
        self.headers.append(headers)
        return 200, "text/plain", b"ok\n"

    def refused(self, token: str, outcome: str) -> None:
        self.refusals.append(outcome)


def _served(store: Store, callbacks: _Callbacks) -> AbstractAsyncContextManager[Served]:
    return serving(Health(store, lambda: None), Metrics(store).exposition, websub=callbacks)


async def test_callbacks_are_routed_and_push_bodies_bounded(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    token = "A" * 43
    callbacks = _Callbacks({token})
    try:
        async with _served(store, callbacks) as web:
            answer = await web.ask(
                f"GET /websub/{token}?hub.challenge=xyz HTTP/1.1\r\n\r\n".encode()
            )
            assert answer.startswith(b"HTTP/1.1 200 ")
            assert answer.endswith(b"\r\n\r\nxyz")
            assert (await web.ask(b"GET /websub/short HTTP/1.1\r\n\r\n")).startswith(
                b"HTTP/1.1 404"
            )
            post = f"POST /websub/{token} HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".encode()
            assert (await web.ask(post)).startswith(b"HTTP/1.1 200 ")
            assert callbacks.pushed == [b"hello"]
            big = f"POST /websub/{token} HTTP/1.1\r\nContent-Length: 1001\r\n\r\n".encode()
            assert (await web.ask(big)).startswith(b"HTTP/1.1 413 ")  # refused before reading
            # a transfer coding other than chunked: uvicorn's parser refuses it (400); no
            # framing at all (411)
            coded = f"POST /websub/{token} HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
            assert (await web.ask(coded.encode())).startswith(b"HTTP/1.1 400 ")
            unframed = f"POST /websub/{token} HTTP/1.1\r\n\r\nhello".encode()
            assert (await web.ask(unframed)).startswith(b"HTTP/1.1 411 ")
            slow = f"POST /websub/{token} HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc".encode()
            assert (await web.ask(slow)).startswith(b"HTTP/1.1 408 ")  # the rest never comes
            put = f"PUT /websub/{token} HTTP/1.1\r\nContent-Length: 0\r\n\r\n".encode()
            assert (await web.ask(put)).startswith(b"HTTP/1.1 405 ")
            # a superscript digit is not a length (str.isdigit says it is): the parser's 400
            odd = f"POST /websub/{token} HTTP/1.1\r\nContent-Length: \u00b2\r\n\r\n"
            assert (await web.ask(odd.encode("latin-1"))).startswith(b"HTTP/1.1 400 ")
            # a path we never handed out: refused before a byte of its body is read
            stranger = f"POST /websub/{'B' * 43} HTTP/1.1\r\nContent-Length: 999\r\n\r\n"
            assert (await web.ask(stranger.encode())).startswith(b"HTTP/1.1 404 ")
            assert callbacks.refusals == ["too_large", "no_length", "too_slow", "unknown"]
            assert callbacks.pushed == [b"hello"]
            # the daemon's own endpoints are untouched
            assert (await web.ask(b"GET /metrics HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 200 ")
            assert (await web.ask(b"GET /healthz HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 503 ")
    finally:
        store.close()


async def test_only_a_few_push_bodies_are_read_at_once(tmp_path: Path) -> None:
    """Pushes whose bodies are still coming hold a read each; one more is answered 503 at
    once, and a read frees its place when it ends."""
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    token = "A" * 43
    callbacks = _Callbacks({token})
    callbacks.body_deadline = 30.0
    head = f"POST /websub/{token} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n".encode()
    try:
        async with _served(store, callbacks) as web:
            held = [await asyncio.open_connection("127.0.0.1", web.port) for _ in range(4)]
            for _reader, writer in held:
                writer.write(head + b"he")  # the rest of each body later
                await writer.drain()
            await callbacks.reading(PUSH_READS_AT_ONCE)
            assert (await web.ask(head + b"hello")).startswith(b"HTTP/1.1 503 ")
            assert callbacks.refusals == ["busy"]
            for reader, writer in held:
                writer.write(b"llo")
                await writer.drain()
                assert (await reader.readline()).startswith(b"HTTP/1.1 200 ")
                writer.close()
            assert (await web.ask(head + b"hello")).startswith(b"HTTP/1.1 200 ")
            assert callbacks.pushed == [b"hello"] * 5
    finally:
        store.close()


async def test_a_request_head_must_come_in_time_and_within_its_size(tmp_path: Path) -> None:
    """A client sending its head a byte at a time loses its connection; a head over 8 KiB is
    refused (400 while it comes, 431 once whole) — before anything is routed."""
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    try:
        health = Health(store, lambda: None)
        async with serving(health, Metrics(store).exposition, head_timeout=0.3) as web:
            reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # closed, unanswered
            writer.close()
            huge = b"GET /healthz HTTP/1.1\r\nX-Big: " + b"x" * 9000 + b"\r\n\r\n"
            assert (await web.ask(huge)).startswith(b"HTTP/1.1 431 ")
            reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
            writer.write(huge[:-4])  # still coming, already too large
            await writer.drain()
            assert (await asyncio.wait_for(reader.read(), 10)).startswith(b"HTTP/1.1 400 ")
            writer.close()
            # a request on a kept-alive connection gets the same deadline for its head
            reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            assert (await reader.readline()).startswith(b"HTTP/1.1 200 ")
            writer.write(b"GET /metrics HTTP/1.1\r\n")  # and the rest never comes
            await writer.drain()
            rest = await asyncio.wait_for(reader.read(), timeout=10)
            assert rest.count(b"HTTP/1.1 ") == 0  # the first answer's body, then closed
            writer.close()
    finally:
        store.close()


# -- the daemon, end to end -----------------------------------------------------------------------


RSS_TYPE = {"Content-Type": "application/rss+xml; charset=utf-8"}


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    with LocalServer(poll_interval=0.05) as local:
        yield LocalHub(local)


def _items(config: Path) -> list[str]:
    with sqlite3.connect(config / "data" / "monitor.db") as db:
        return [row[0] for row in db.execute("SELECT guid FROM items ORDER BY guid")]


def _feeds_json(config: Path) -> dict[str, object]:
    listed = run_cli("feeds", "--json", "--config", str(config), cwd=config)
    assert listed.returncode == 0, listed.stderr
    return dict(json.loads(listed.stdout.splitlines()[0]))


def test_subscribe_verify_push_alert_and_unsubscribe(
    tmp_path: Path, server: LocalServer, hub: LocalHub, receiver: SignedReceiver
) -> None:
    config, topic = websub_config(tmp_path, server, hub, receiver, interval="1h")
    daemon = Daemon.start(config)
    try:
        assert hub.wait_for(lambda events: any(e.kind == "verified" for e in events)), daemon.log
        (request,) = hub.of("request")
        form = request.form
        assert form["hub.topic"] == topic
        assert form["hub.lease_seconds"] == "3600"
        assert len(form["hub.secret"]) >= 32
        token = form["hub.callback"].removeprefix(f"{daemon.base_url}/websub/")
        assert len(token) >= 32  # unguessable, one per subscription
        assert "/" not in token
        assert _items(config) == ["push-1", "push-2"]  # the first poll, nothing matching

        # a forged push (wrong secret) and an unsigned one: 2xx, dropped, counted
        assert hub.publish(topic, hub_document("pushed.xml", hub, topic), secret="forged") == [202]
        assert hub.publish(topic, hub_document("pushed.xml", hub, topic), signed=False) == [202]
        assert daemon.metric('monitor_websub_pushes_total{outcome="bad_signature"}') == 1
        assert daemon.metric('monitor_websub_pushes_total{outcome="unsigned"}') == 1
        assert _items(config) == ["push-1", "push-2"]
        assert receiver.deliveries == []

        # the real push: an alert without waiting for a poll (the interval is an hour)
        assert hub.publish(topic, hub_document("pushed.xml", hub, topic), method="sha512") == [200]
        assert receiver.wait_for_deliveries(1)
        (delivery,) = receiver.deliveries
        assert delivery.valid_signature
        data = delivery.body["data"]
        assert isinstance(data, dict)
        assert data["rule"]["id"] == "russia-cuba-contacts"
        assert data["item"]["guid"] == "push-3"
        assert _items(config) == ["push-1", "push-2", "push-3"]
        assert len(server.requests_to("/wire.xml")) == 1  # polled once, at start
        assert daemon.metric('monitor_websub_pushes_total{outcome="accepted"}') == 1
        assert daemon.metric("monitor_alerts_created_total") == 1
        # the same content again, gzip-encoded and chunked: read, verified, nothing new
        again = hub_document("pushed.xml", hub, topic)
        assert hub.publish(topic, again, gzip=True, chunked=True) == [200]
        assert daemon.metric('monitor_websub_pushes_total{outcome="accepted"}') == 2
        assert _items(config) == ["push-1", "push-2", "push-3"]

        # verifications the daemon did not ask for are refused
        callback = form["hub.callback"]
        other = hub.verification(callback, "subscribe", "http://elsewhere/", challenge="c1")
        assert other[0] == 404
        unknown = hub.verification(
            f"{daemon.base_url}/websub/{'x' * 43}", "subscribe", topic, challenge="c2"
        )
        assert unknown[0] == 404
        assert hub.verification(callback, "unsubscribe", topic, challenge="c3")[0] == 404

        shown = _feeds_json(config)["websub"]
        assert isinstance(shown, dict)
        assert shown["state"] == "verified"
        assert shown["hub"] == hub.url
        assert shown["pushes"] == 2
        listed = run_cli("feeds", "--config", str(config), cwd=config)
        assert f"websub verified at {hub.url}" in listed.stdout

        # the feed leaves the config: unsubscribed, and the hub's verification answered
        edit_config(config, lambda document: document.update(feeds=[]))
        assert hub.wait_for(lambda _: bool(hub.of("verified", "unsubscribe"))), daemon.log
        assert hub.of("request", "unsubscribe")[0].form["hub.callback"] == callback
    finally:
        code, _seconds = daemon.stop()
    assert code == 0, daemon.log
    assert "Traceback" not in daemon.log
    assert "pushed content dropped (X-Hub-Signature mismatch)" in daemon.log


async def _subscribed(
    websub: _Replica, hub: LocalHub, topic: str, lease: int
) -> tuple[FeedState, HubEvent]:
    """The first poll subscribes; the hub's verification (granting `lease` seconds) is made
    through the callback in process. The feed and the hub's request."""
    (feed,) = await asyncio.to_thread(websub.pipeline.store.feeds)
    assert (await websub.pipeline.refresh(feed)).status == "fetched"
    await _background(websub.subscriber)
    (asked,) = hub.of("request")
    token = asked.form["hub.callback"].rsplit("/", 1)[-1]
    query = {"hub.mode": "subscribe", "hub.topic": topic, "hub.challenge": "c1"}
    reply = await websub.callback.verify(token, query | {"hub.lease_seconds": str(lease)})
    assert (reply[0], reply[2]) == (200, b"c1")
    return feed, asked


async def test_the_lease_is_renewed_before_it_ends(
    tmp_path: Path, server: LocalServer, hub: LocalHub, receiver: SignedReceiver, clock: Clock
) -> None:
    """In process on a moved clock: verified for 100 s, renewed at 80 s with the same callback and
    secret, polled meanwhile only by the safety poll. (It raced real 2 s leases in a daemon.)"""
    config, topic = websub_config(tmp_path, server, hub, receiver, interval="1s", lease="1h")
    async with _replica(config, "replica-a") as websub:
        engine = websub.pipeline.store.engine
        (feed,) = await asyncio.to_thread(websub.pipeline.store.feeds)
        assert (await websub.pipeline.refresh(feed)).status == "fetched"
        await _background(websub.subscriber)
        (asked,) = hub.of("request")
        token = asked.form["hub.callback"].rsplit("/", 1)[-1]
        query = {"hub.mode": "subscribe", "hub.topic": topic, "hub.challenge": "c1"}
        status, _type, body = await websub.callback.verify(
            token, query | {"hub.lease_seconds": "100"}
        )
        assert (status, body) == (200, b"c1")
        (row,) = await asyncio.to_thread(subs.every, engine)
        assert row.state == subs.VERIFIED
        assert row.verified_at is not None
        assert row.next_action_at == row.verified_at + timedelta(seconds=80)
        settings = websub.pipeline.settings[topic]
        assert (await websub.subscriber.polling(feed, settings)).interval == timedelta(hours=1)

        await websub.subscriber.tick()  # not due yet: nothing asked
        assert len(hub.of("request")) == 1
        clock.advance(timedelta(seconds=81))
        await websub.subscriber.tick()
        renewal = hub.of("request")[1]
        assert renewal.form["hub.callback"] == asked.form["hub.callback"]  # same callback
        assert renewal.form["hub.secret"] == asked.form["hub.secret"]  # and secret
        assert renewal.form["hub.lease_seconds"] == "3600"  # asks the config's lease again
    assert len(server.requests_to("/wire.xml")) == 1  # no poll but the first


async def test_a_lease_shorter_than_the_interval_is_not_renewed_more_often(
    tmp_path: Path,
    server: LocalServer,
    hub: LocalHub,
    receiver: SignedReceiver,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hub granting 1 s to a feed polled every 2 s: asked again once per interval, not at
    every tick, and the feed polled at its interval meanwhile (no slow safety poll)."""
    config, topic = websub_config(tmp_path, server, hub, receiver, interval="2s")
    async with _replica(config, "replica-a") as websub:
        with caplog.at_level("INFO", logger="monitor.pipeline.websub"):
            feed, asked = await _subscribed(websub, hub, topic, lease=1)
        (row,) = await asyncio.to_thread(subs.every, websub.pipeline.store.engine)
        assert row.verified_at is not None
        assert row.next_action_at == row.verified_at + timedelta(seconds=2)  # the interval
        settings = websub.pipeline.settings[topic]
        assert (await websub.subscriber.polling(feed, settings)).interval == timedelta(seconds=2)
        clock.advance(timedelta(seconds=1))
        await websub.subscriber.tick()  # the lease has ended; the next request waits
        assert len(hub.of("request")) == 1
        clock.advance(timedelta(seconds=1.5))
        await websub.subscriber.tick()
        again = hub.of("request")[1:]
        assert len(again) == 1  # once per poll interval
        assert again[0].form["hub.callback"] == asked.form["hub.callback"]
    assert any(
        "shorter than the poll interval: polled as usual" in r.message for r in caplog.records
    )


async def test_only_a_lease_renewed_in_time_slows_polling(
    tmp_path: Path, server: LocalServer, hub: LocalHub, receiver: SignedReceiver
) -> None:
    config, topic = websub_config(tmp_path, server, hub, receiver, interval="5m")
    async with _replica(config, "replica-a") as websub:
        engine = websub.pipeline.store.engine
        (feed,) = await asyncio.to_thread(websub.pipeline.store.feeds)
        settings = websub.pipeline.settings[topic]
        now = datetime.now(UTC)
        _save(engine, feed.id, "T" * 43, hub.url, topic)
        ends = now + timedelta(minutes=4)  # granted 4 min: verified, but it ends before renewal
        subs.update(engine, "T" * 43, state=subs.VERIFIED, expires_at=ends)
        for renewal, interval in ((ends + timedelta(seconds=1), "5m"), (ends, "1h")):
            subs.update(engine, "T" * 43, next_action_at=renewal)
            polled = await websub.subscriber.polling(feed, settings)
            assert polled.interval == parse_duration(interval), renewal


async def test_an_unrenewed_lease_expires_and_polling_resumes(
    tmp_path: Path,
    server: LocalServer,
    hub: LocalHub,
    receiver: SignedReceiver,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config, topic = websub_config(tmp_path, server, hub, receiver, interval="1s")
    async with _replica(config, "replica-a") as websub:
        engine = websub.pipeline.store.engine
        feed, _asked = await _subscribed(websub, hub, topic, lease=100)
        hub.answer = 500  # renewals fail from now on
        with caplog.at_level("INFO", logger="monitor.pipeline.websub"):
            clock.advance(timedelta(seconds=81))
            await websub.subscriber.tick()  # the renewal, refused
            assert len(hub.of("request")) == 2
            clock.advance(timedelta(seconds=20))
            await websub.subscriber.tick()  # the lease has ended
            await websub.subscriber.tick()
        (row,) = await asyncio.to_thread(subs.every, engine)
        settings = websub.pipeline.settings[topic]
        assert (await websub.subscriber.polling(feed, settings)).interval == timedelta(seconds=1)
    assert row.state == subs.EXPIRED
    assert "the hub answered 500" in str(row.last_error)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "renewal failed (the hub answered 500: hub trouble)" in logged
    assert "ended unrenewed; polling as usual" in logged


async def test_a_failing_hub_leaves_the_feed_polled_as_usual(
    tmp_path: Path, server: LocalServer, hub: LocalHub, receiver: SignedReceiver
) -> None:
    hub.answer = 500
    config, topic = websub_config(tmp_path, server, hub, receiver, interval="1s")
    async with _replica(config, "replica-a") as websub:
        (feed,) = await asyncio.to_thread(websub.pipeline.store.feeds)
        settings = websub.pipeline.settings[topic]
        for _ in range(3):
            assert (await websub.pipeline.refresh(feed)).status == "fetched"
            await _background(websub.subscriber)
            assert (await websub.subscriber.polling(feed, settings)).interval == timedelta(
                seconds=1
            )
        (row,) = await asyncio.to_thread(subs.every, websub.pipeline.store.engine)
    assert len(hub.of("request")) == 1  # not asked again at every poll
    assert row.state == subs.FAILED
    assert "the hub answered 500" in str(row.last_error)
    shown = _feeds_json(config)["websub"]
    assert isinstance(shown, dict)
    assert shown["state"] == "failed"


async def test_a_denial_brings_back_normal_polling(
    tmp_path: Path,
    server: LocalServer,
    hub: LocalHub,
    receiver: SignedReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config, topic = websub_config(tmp_path, server, hub, receiver, interval="2s")
    async with _replica(config, "replica-a") as websub:
        feed, asked = await _subscribed(websub, hub, topic, lease=3600)
        settings = websub.pipeline.settings[topic]
        assert (await websub.subscriber.polling(feed, settings)).interval == timedelta(hours=1)
        token = asked.form["hub.callback"].rsplit("/", 1)[-1]
        denial = {"hub.mode": "denied", "hub.topic": topic, "hub.reason": "publisher left"}
        with caplog.at_level("INFO", logger="monitor.pipeline.websub"):
            assert (await websub.callback.verify(token, denial))[0] == 200
        assert (await websub.subscriber.polling(feed, settings)).interval == timedelta(seconds=2)
        (row,) = await asyncio.to_thread(subs.every, websub.pipeline.store.engine)
    assert row.state == subs.DENIED
    assert row.last_error == "denied by the hub: publisher left"
    assert any(
        "denied the subscription (publisher left); polling as usual" in r.getMessage()
        for r in caplog.records
    )


def test_hub_denial_at_once_and_opted_out_feeds(
    tmp_path: Path, server: LocalServer, hub: LocalHub, receiver: SignedReceiver
) -> None:
    hub.deny = True
    config, topic = websub_config(tmp_path, server, hub, receiver, interval="1s")
    other = server.url("/other.xml")
    serve_feed(server, "/other.xml", hub_document("wire.xml", hub, other))
    edit_config(
        config,
        lambda document: document.update(
            feeds=[*document["feeds"], {"url": other, "interval": "1s", "websub": False}]  # type: ignore[misc]
        ),
    )
    daemon = Daemon.start(config)
    try:
        assert hub.wait_for(lambda _: bool(hub.of("denied", "denied"))), daemon.log
        assert server.wait_for(lambda _: len(server.requests_to("/wire.xml")) >= 3, timeout=20)
        assert server.wait_for(lambda _: len(server.requests_to("/other.xml")) >= 3, timeout=20)
        assert [e.topic for e in hub.of("request")] == [topic]  # never for the opted-out feed
    finally:
        code, _seconds = daemon.stop()
    assert code == 0, daemon.log


# -- in process: replicas, a slow hub, push bodies, the push lookup -------------------------------


def _more_feeds(config: Path, server: LocalServer, hub: LocalHub, count: int) -> list[str]:
    """`count` more feeds naming `hub` (each its own topic), added to the config; all topics."""
    topics = [server.url(f"/wire-{n}.xml") for n in range(count)]
    for topic in topics:
        serve_feed(server, topic.removeprefix(server.url("")), hub_document("wire.xml", hub, topic))
    added = [{"url": topic, "interval": "1h"} for topic in topics]
    edit_config(config, lambda document: document.update(feeds=[*document["feeds"], *added]))  # type: ignore[misc]
    return [server.url("/wire.xml"), *topics]


@dataclass(frozen=True)
class _Replica:
    """One daemon's pipeline with WebSub on: its subscriber and its callback."""

    pipeline: Pipeline
    subscriber: Subscriber
    callback: Callback


@contextlib.asynccontextmanager
async def _replica(config: Path, owner: str) -> AsyncIterator[_Replica]:
    """One daemon's pipeline and WebSub, claiming as `owner`, on the config's database."""
    loaded = load_config(config, environ={})
    store = await asyncio.to_thread(Store.open, loaded.storage_url)
    try:
        async with (
            make_client() as feed_client,
            make_delivery_client() as delivery_client,
            make_hub_client() as hub_client,
        ):
            pipeline = Pipeline(loaded, store, feed_client, delivery_client)
            callback = pipeline.use_websub(hub_client, owner=owner)
            assert pipeline.subscriber is not None
            await asyncio.to_thread(pipeline.sync_feeds)
            try:
                yield _Replica(pipeline, pipeline.subscriber, callback)
            finally:
                await pipeline.subscriber.stop()
    finally:
        await asyncio.to_thread(store.close)


def _make_due(engine: Engine) -> list[str]:
    """Every subscription verified and due for renewal now, in feed order; their tokens."""
    rows = subs.every(engine)
    now = datetime.now(UTC)
    for position, sub in enumerate(rows):
        due = now - timedelta(minutes=10) + timedelta(seconds=position)
        ends = now + timedelta(hours=1)
        subs.update(engine, sub.token, state=subs.VERIFIED, next_action_at=due, expires_at=ends)
    return [sub.token for sub in rows]


def _save(
    engine: Engine, feed_id: int, token: str, hub: str, topic: str, secret: str = "s" * 64
) -> None:
    """A subscription row as requested now, with this token and secret."""
    now = datetime.now(UTC)
    callback = f"http://127.0.0.1/websub/{token}"
    saved = subs.save_request(
        engine,
        feed_id,
        hub=hub,
        topic=topic,
        token=token,
        callback=callback,
        secret=secret,
        now=now,
        verify_by=now + timedelta(minutes=10),
        replacing=None,
    )
    assert saved


async def test_replicas_send_the_hub_one_request_per_subscription(
    tmp_path: Path, server: LocalServer, hub: LocalHub, receiver: SignedReceiver, storage_url: str
) -> None:
    config, _topic = websub_config(tmp_path, server, hub, receiver, interval="1h")
    edit_config(config, lambda document: document.update(storage=storage_url))
    topics = _more_feeds(config, server, hub, 11)
    async with _replica(config, "replica-a") as one, _replica(config, "replica-b") as two:
        engine = one.pipeline.store.engine
        # both poll every feed at once: each subscription is requested once (a request replaces
        # only the row it was decided on; the loser of an insert race sends nothing)
        feeds = await asyncio.to_thread(one.pipeline.store.feeds)
        polls = [w.pipeline.refresh(feed) for feed in feeds for w in (one, two)]
        assert {o.status for o in await asyncio.gather(*polls)} == {"fetched"}
        assert await asyncio.to_thread(hub.wait_for, lambda e: len(e) >= len(topics))
        await one.subscriber.stop(grace=20)  # the background requests finish
        await two.subscriber.stop(grace=20)
        assert sorted(e.topic for e in hub.of("request")) == sorted(topics)
        assert len(await asyncio.to_thread(subs.every, engine)) == len(topics)

    async with _replica(config, "replica-a") as one, _replica(config, "replica-b") as two:
        # both timers at once, every row due for renewal: one request per row
        before = len(hub.of("request"))
        engine = one.pipeline.store.engine
        await asyncio.to_thread(_make_due, engine)
        await asyncio.gather(one.subscriber.tick(), two.subscriber.tick())
        asked = [e.topic for e in hub.of("request")[before:]]
        assert sorted(asked) == sorted(topics)

        # rows held by a live replica stay its own; a dead replica's (its heartbeat row expired)
        # are taken over at once, long before their lease ends
        now = datetime.now(UTC)
        replicas = Replicas(engine)
        replicas.register("live-one", now, timedelta(minutes=1))
        replicas.register("dead-one", now - timedelta(hours=1), timedelta(seconds=10))
        tokens = await asyncio.to_thread(_make_due, engine)
        held = {"live-one": tokens[:6], "dead-one": tokens[6:]}
        for owner, wanted in held.items():
            taken = subs.claim_due(engine, now, owner=owner, lease=timedelta(hours=1), limit=6)
            assert [sub.token for sub in taken] == wanted
        before = len(hub.of("request"))
        await two.subscriber.tick()
        asked = [e.topic for e in hub.of("request")[before:]]
        assert sorted(asked) == sorted(topics[6:])  # the dead one's rows, each once
        await one.subscriber.tick()
        assert len(hub.of("request")) == before + 6  # the live one's rows were not touched


async def _background(subscriber: Subscriber) -> None:
    """Let the subscriptions a poll started in the background finish."""
    await asyncio.gather(*list(subscriber._subscribing.values()))


async def test_a_hub_on_an_internal_address_needs_the_operator_s_opt_in(
    tmp_path: Path, server: LocalServer, hub: LocalHub, receiver: SignedReceiver
) -> None:
    # the feed names a hub on 127.0.0.1; the operator did not set fetch.allow_private
    config, _topic = websub_config(
        tmp_path, server, hub, receiver, interval="1h", allow_private=False
    )
    async with _replica(config, "replica-a") as websub:
        (feed,) = await asyncio.to_thread(websub.pipeline.store.feeds)
        assert (await websub.pipeline.refresh(feed)).status == "fetched"
        await _background(websub.subscriber)
        (row,) = await asyncio.to_thread(subs.every, websub.pipeline.store.engine)
    assert hub.events == []  # not one request reached it
    assert row.state == subs.FAILED
    assert row.last_error is not None
    assert row.last_error.startswith("refused to connect to 127.0.0.1: a loopback address")


async def test_a_feed_naming_another_hub_at_each_poll_waits_out_its_backoff(
    tmp_path: Path, server: LocalServer, hub: LocalHub, receiver: SignedReceiver
) -> None:
    hub.answer = 500  # every subscription fails: retried in an hour, not at the next poll
    config, topic = websub_config(tmp_path, server, hub, receiver, interval="1h")
    polls = itertools.count()
    document = hub_document("wire.xml", hub, topic)

    def another_hub_each_time(_request: object) -> ServerReply:
        elsewhere = f"{hub.url}?poll={next(polls)}".encode()
        return ServerReply(200, document.replace(hub.url.encode(), elsewhere), RSS_TYPE)

    server.route("/wire.xml", another_hub_each_time)
    async with _replica(config, "replica-a") as websub:
        (feed,) = await asyncio.to_thread(websub.pipeline.store.feeds)
        for _ in range(4):
            assert (await websub.pipeline.refresh(feed)).status == "fetched"
            await _background(websub.subscriber)
    assert len(server.requests_to("/wire.xml")) == 4
    assert len(hub.of("request")) == 1  # before: one request to a "new" hub per poll


async def test_a_hub_that_does_not_answer_holds_no_poll(
    tmp_path: Path, server: LocalServer, hub: LocalHub, receiver: SignedReceiver
) -> None:
    hub.hold = threading.Event()  # takes requests, answers none
    config, _topic = websub_config(tmp_path, server, hub, receiver, interval="1h")
    topics = _more_feeds(config, server, hub, MAX_FEEDS_IN_FLIGHT + 1)  # more than poll slots
    try:
        async with _replica(config, "replica-a") as websub:
            feeds = await asyncio.to_thread(websub.pipeline.store.feeds)
            assert len(feeds) == len(topics)
            # every poll ends without waiting for the hub (before, each held its slot for the
            # hub's 15 s deadline, and the last feeds waited for a free slot)
            polls = asyncio.gather(*(websub.pipeline.refresh(feed) for feed in feeds))
            outcomes = await asyncio.wait_for(polls, timeout=10)
            assert {outcome.status for outcome in outcomes} == {"fetched"}
            assert await asyncio.to_thread(hub.wait_for, lambda e: len(e) >= HUB_REQUESTS_AT_ONCE)
            await asyncio.wait_for(websub.subscriber.stop(), timeout=5)  # cancels what is in flight
            assert len(hub.of("request")) == HUB_REQUESTS_AT_ONCE  # the others never started
            rows = await asyncio.to_thread(subs.every, websub.pipeline.store.engine)
            assert len(rows) == HUB_REQUESTS_AT_ONCE
            assert {row.state for row in rows} == {subs.REQUESTED}  # failed later by the timer
    finally:
        hub.hold.set()


async def test_pushes_chunked_or_compressed_are_read_within_the_caps(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    token = "A" * 43
    callbacks = _Callbacks({token})  # max_body 1000, body_deadline 0.5

    def post(headers: str, body: bytes) -> bytes:
        return f"POST /websub/{token} HTTP/1.1\r\n{headers}\r\n".encode() + body

    chunked = "Transfer-Encoding: chunked\r\n"
    document = b"<rss>" + b"x" * 900 + b"</rss>"
    packed = gzip.compress(document)
    try:
        async with _served(store, callbacks) as web:
            # chunked: extensions ignored, trailers skipped, chunks joined
            body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
            assert (await web.ask(post(chunked, body))).startswith(b"HTTP/1.1 200 ")
            # Content-Length and Transfer-Encoding both: the transfer coding frames the body
            assert (await web.ask(post(chunked + "Content-Length: 3\r\n", body))).startswith(
                b"HTTP/1.1 200 "
            )
            # gzip, with a length or chunked, and x-gzip and deflate: decoded, the raw body kept
            gzipped = f"Content-Encoding: gzip\r\nContent-Length: {len(packed)}\r\n"
            assert (await web.ask(post(gzipped, packed))).startswith(b"HTTP/1.1 200 ")
            framed = b"".join(
                b"%x\r\n%s\r\n" % (len(packed[i : i + 100]), packed[i : i + 100])
                for i in range(0, len(packed), 100)
            )
            answer = await web.ask(
                post(chunked + "Content-Encoding: x-gzip\r\n", framed + b"0\r\n\r\n")
            )
            assert answer.startswith(b"HTTP/1.1 200 ")
            deflated = zlib.compress(document)
            coded = f"Content-Encoding: deflate\r\nContent-Length: {len(deflated)}\r\n"
            assert (await web.ask(post(coded, deflated))).startswith(b"HTTP/1.1 200 ")
            assert callbacks.pushed == [
                b"hello world",
                b"hello world",
                document,
                document,
                document,
            ]
            assert callbacks.raw[2:] == [packed, packed, deflated]
            assert all("content-encoding" not in headers for headers in callbacks.headers)

            # refusals: chunks past the cap (before reading them), a gzip bomb (decoded up to
            # the cap only), malformed chunks, corrupt gzip, an unknown coding, a chunked body
            # that stops
            past = b"3e8\r\n" + b"x" * 1000 + b"\r\n1\r\nx\r\n0\r\n\r\n"  # 1000 + 1 bytes
            assert (await web.ask(post(chunked, past))).startswith(b"HTTP/1.1 413 ")
            bomb = gzip.compress(b"\0" * (512 << 10))  # 512 KiB in about 500 bytes
            assert len(bomb) < 1000
            bombed = f"Content-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n"
            assert (await web.ask(post(bombed, bomb))).startswith(b"HTTP/1.1 413 ")
            assert (await web.ask(post(chunked, b"zz\r\nhello\r\n0\r\n\r\n"))).startswith(
                b"HTTP/1.1 400 "
            )
            assert (await web.ask(post(chunked, b"2\r\nhello\r\n0\r\n\r\n"))).startswith(
                b"HTTP/1.1 400 "
            )
            corrupt = f"Content-Encoding: gzip\r\nContent-Length: {len(packed) - 8}\r\n"
            assert (await web.ask(post(corrupt, packed[:-8]))).startswith(b"HTTP/1.1 400 ")
            brotli = "Content-Encoding: br\r\nContent-Length: 5\r\n"
            assert (await web.ask(post(brotli, b"hello"))).startswith(b"HTTP/1.1 415 ")
            assert (await web.ask(post(chunked, b"5\r\nhel"))).startswith(b"HTTP/1.1 408 ")
            assert callbacks.refusals == [
                "too_large",
                "too_large",
                "bad_body",
                "bad_body",
                "bad_body",
                "bad_encoding",
                "too_slow",
            ]
            assert len(callbacks.pushed) == 5
    finally:
        store.close()


async def test_the_callback_needs_only_the_store_the_config_and_an_ingest_function(
    tmp_path: Path,
) -> None:
    """Verification, lookup and pushes, with no pipeline, hub or HTTP server: the challenge is
    echoed for what we asked and the granted lease recorded; a signed push is handed to the
    ingest function, a forged one is dropped (202) and counted."""
    topic, token = "https://a.test/feed", "T" * 43
    websub = {"callback": "https://monitor.example.org/websub/", "lease": "2d"}
    loaded = load_config(_config_with(tmp_path, websub=websub, http="127.0.0.1:0"), environ={})
    store = await asyncio.to_thread(Store.open, loaded.storage_url)
    ingested: list[tuple[str, str, bytes]] = []
    counted: list[str] = []

    async def ingest(
        feed: FeedState, settings: FeedConfig, body: bytes, headers: Mapping[str, str]
    ) -> RefreshOutcome:
        ingested.append((feed.url, settings.url, body))
        return RefreshOutcome(feed.url, "pushed", 1, 0)

    try:
        store.sync_feeds([(topic, None)], datetime.now(UTC))
        (feed,) = store.feeds()
        _save(store.engine, feed.id, token, "https://hub.test/", topic, SECRET_KEY)
        in_force = InForce(lambda: loaded, lambda: feed_settings(loaded))
        callback = Callback(store.engine, in_force, ingest, lambda kind, _: counted.append(kind))
        asked = {"hub.mode": "subscribe", "hub.topic": topic, "hub.challenge": "c1"}
        assert (await callback.verify(token, {**asked, "hub.topic": "https://b.test/"}))[0] == 404
        granted = {**asked, "hub.lease_seconds": "3600"}
        assert (await callback.verify(token, granted))[::2] == (200, b"c1")
        verified = subs.by_token(store.engine, token)
        assert verified is not None
        assert (verified.state, verified.lease_seconds) == (subs.VERIFIED, 3600)
        found = await callback.find(token)
        assert found is not None
        assert await callback.find("U" * 43) is None
        signed = {"x-hub-signature": _sign("sha256")}
        assert (await callback.push(found, signed, BODY, BODY))[::2] == (200, b"ok\n")
        forged = {"x-hub-signature": _sign("sha256", key="not the secret")}
        assert (await callback.push(found, forged, BODY, BODY))[::2] == (202, b"dropped\n")
    finally:
        await asyncio.to_thread(store.close)
    assert ingested == [(topic, topic, BODY)]
    assert counted == ["accepted", "bad_signature"]


async def test_a_push_finds_its_subscription_and_feed_in_one_read(
    tmp_path: Path, server: LocalServer, hub: LocalHub, receiver: SignedReceiver
) -> None:
    config, topic = websub_config(tmp_path, server, hub, receiver, interval="1h")
    _more_feeds(config, server, hub, 20)  # a feed list worth not reading for each push
    async with _replica(config, "replica-a") as websub:
        store = websub.pipeline.store
        (feed,) = [f for f in await asyncio.to_thread(store.feeds) if f.url == topic]
        token, secret = "T" * 43, "s" * 64
        await asyncio.to_thread(_save, store.engine, feed.id, token, hub.url, topic, secret)
        statements: list[str] = []

        def record(*args: object) -> None:
            statements.append(" ".join(str(args[2]).split()))

        body = hub_document("pushed.xml", hub, topic)
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        request = (
            f"POST /websub/{token} HTTP/1.1\r\nContent-Length: {len(body)}\r\n"
            f"X-Hub-Signature: {signature}\r\nContent-Type: application/rss+xml\r\n\r\n"
        ).encode() + body
        health = Health(store, lambda: None)
        async with serving(health, Metrics(store).exposition, websub=websub.callback) as web:
            sa.event.listen(store.engine, "before_cursor_execute", record)
            try:
                assert (await web.ask(request)).startswith(b"HTTP/1.1 200 ")
            finally:
                sa.event.remove(store.engine, "before_cursor_execute", record)
        reads = [s for s in statements if s.startswith("SELECT")]
        assert len([s for s in reads if "FROM websub_subscriptions" in s]) == 1, reads
        whole_list = [s for s in reads if "FROM feeds" in s and "websub" not in s]
        assert whole_list == [], whole_list
        assert [item for item in await asyncio.to_thread(_items, config) if item == "push-3"]


def test_a_stopping_daemon_cancels_requests_a_silent_hub_holds(
    tmp_path: Path, server: LocalServer, hub: LocalHub, receiver: SignedReceiver
) -> None:
    hub.hold = threading.Event()  # takes the subscription request, never answers
    config, _topic = websub_config(tmp_path, server, hub, receiver, interval="1h")
    daemon = Daemon.start(config)
    try:
        assert hub.wait_for(lambda events: len(events) >= 1), daemon.log
        code, _seconds = daemon.stop()
        assert code == 0, daemon.log
        assert "websub: 1 subscription requests cancelled at stop" in daemon.log
        assert "Task was destroyed but it is pending" not in daemon.log
        assert "Traceback" not in daemon.log
    finally:
        hub.hold.set()
        daemon.kill()
