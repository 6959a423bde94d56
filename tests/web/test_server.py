"""uvicorn on the daemon's loop: bound by us, signals left to the daemon, a graceful stop,
connections limited, and an access log that shows no token."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from monitor.runtime.metrics import Metrics
from monitor.store import Store
from monitor.web.app import build_app, shown_target
from monitor.web.auth import Auth, Tokens
from monitor.web.health import Health
from monitor.web.server import WebServer
from tests.support.web import TOKEN, serving


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    yield opened
    opened.close()


class Held:
    """A route that answers once released, and says when a request has reached it."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def handle(self, _request: Request) -> Response:
        self.reached.set()
        await self.release.wait()
        return PlainTextResponse("done")


def _app(store: Store, held: Held) -> object:
    return build_app(
        Health(store, lambda: None),
        Metrics(store).exposition,
        auth=Auth(Tokens(TOKEN)),
        extra_routes=[Route("/held", held.handle)],
    )


async def test_a_taken_address_is_an_os_error(store: Store) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        server = WebServer(build_app(Health(store, lambda: None), bytes, auth=Auth(Tokens(TOKEN))))
        with pytest.raises(OSError, match="in use"):
            await server.start("127.0.0.1", port)
        await server.stop()  # nothing started: nothing to do


async def test_the_daemon_keeps_its_signal_handlers(store: Store) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    async with serving(Health(store, lambda: None), Metrics(store).exposition) as web:
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{web.url}/metrics")).status_code == 200
        assert {sig: signal.getsignal(sig) for sig in before} == before
    assert {sig: signal.getsignal(sig) for sig in before} == before


async def test_stop_lets_a_request_in_flight_finish(store: Store) -> None:
    held = Held()
    server = WebServer(_app(store, held))  # type: ignore[arg-type]
    _host, port = await server.start("127.0.0.1", 0)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(headers=headers) as client:
        asking = asyncio.create_task(client.get(f"http://127.0.0.1:{port}/held"))
        await held.reached.wait()
        stopping = asyncio.create_task(server.stop())
        await asyncio.sleep(0)  # stop has begun; the request is still held
        assert not stopping.done()
        held.release.set()
        answer = await asyncio.wait_for(asking, timeout=10)
        await asyncio.wait_for(stopping, timeout=10)
    assert (answer.status_code, answer.text) == (200, "done")
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)  # no longer listening


async def test_connections_past_the_limit_get_503(store: Store) -> None:
    held = Held()
    server = WebServer(_app(store, held), max_connections=2)  # type: ignore[arg-type]
    _host, port = await server.start("127.0.0.1", 0)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with httpx.AsyncClient(headers=headers) as first, httpx.AsyncClient() as second:
            asking = asyncio.create_task(first.get(f"http://127.0.0.1:{port}/held"))
            await held.reached.wait()
            idle = await asyncio.open_connection("127.0.0.1", port)  # the second connection
            busy = await second.get(f"http://127.0.0.1:{port}/healthz")
            assert busy.status_code == 503
            assert busy.text == "Service Unavailable"  # uvicorn's, not /healthz's JSON
            held.release.set()
            assert (await asyncio.wait_for(asking, timeout=10)).status_code == 200
            idle[1].close()
    finally:
        await server.stop()


async def test_the_access_log_masks_tokens(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="monitor.web.access"):
        health = Health(store, lambda: None)
        async with (
            serving(health, Metrics(store).exposition) as web,
            httpx.AsyncClient() as client,
        ):
            await client.get(f"{web.url}/login", params={"token": TOKEN, "next": "/x"})
            # with the session cookie just set: no such page yet, 404
            await client.get(f"{web.url}/api/v1/alerts", params={"access_token": "s3cret"})
    lines = [r.getMessage() for r in caplog.records if r.name == "monitor.web.access"]
    assert any("GET /login?token=***&next=/x 303" in line for line in lines), lines
    assert any("GET /api/v1/alerts?access_token=*** 404" in line for line in lines), lines
    assert not any(TOKEN in line or "s3cret" in line for line in lines)
    assert not any(TOKEN in r.getMessage() for r in caplog.records)


def test_shown_targets() -> None:
    assert shown_target("/a", "") == "/a"
    assert shown_target("/a", "rule=r1&token=abc") == "/a?rule=r1&token=***"
    assert shown_target("/a", "q=a%20b&apiKey=k") == "/a?q=a%20b&apiKey=***"
