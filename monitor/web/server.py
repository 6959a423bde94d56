"""The `http:` server's lifecycle: uvicorn serving the app (monitor.web.app) on the daemon's own
event loop, as one more task beside the scheduler.

    server = WebServer(app)
    host, port = await server.start("127.0.0.1", 0)   # bound (port 0 picks one); OSError if not
    ...
    await server.stop()                               # in-flight requests get a moment, then go

The daemon owns the signals: uvicorn's handlers are not installed (`capture_signals` does
nothing), and it runs with `lifespan="off"`, since the daemon opens and closes what the routes
use. The socket is bound here, not by uvicorn, so a taken address is an OSError the daemon can
report (uvicorn would exit the process).

Limits, beside each route's own: a request head within MAX_HEAD bytes (one still coming is
refused by h11 past `max_incomplete_event_size`, 400; one that came whole by `_HeadLimit`, 431)
and within HEAD_TIMEOUT seconds from
the connection or the previous answer (a client sending a head a byte at a time would otherwise
hold a connection, since uvicorn's keep-alive timer restarts at every byte); idle keep-alive
connections closed after KEEP_ALIVE seconds; at most MAX_CONNECTIONS connections, 503 beyond.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

import h11
import uvicorn
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)
HTTP_ENV = "MONITOR_HTTP"  # overrides the `http:` key's address, e.g. 0.0.0.0:9108 in a container
DEFAULT_HOST = "127.0.0.1"
MAX_HEAD = 8192  # bytes of a request's head (its request line and headers)
HEAD_TIMEOUT = 5.0  # seconds for a request's head to arrive
KEEP_ALIVE = 5  # seconds an idle connection is kept open
MAX_CONNECTIONS = 64  # connections (or requests in flight) at once; more get a 503
STOP_GRACE = 2.0  # seconds requests in flight get at stop before they are cancelled


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` (HOST optional, default 127.0.0.1) as a (host, port) pair; ValueError if not."""
    host, sep, port = text.strip().rpartition(":")
    if (
        not sep
        or not port.isdigit()
        or not 0 <= int(port) <= 65535
        or any(c.isspace() for c in host)
    ):
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or DEFAULT_HOST, int(port)


def configured_address(listen: str | None) -> tuple[str, int] | None:
    """Where to serve: MONITOR_HTTP, else the `http:` key's address, else nowhere."""
    text = os.environ.get(HTTP_ENV) or listen
    if not text:
        return None
    try:
        return parse_address(text)
    except ValueError as exc:
        raise ValueError(f"{HTTP_ENV if os.environ.get(HTTP_ENV) else 'http'}: {exc}") from None


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the daemon handles SIGTERM and SIGINT, and stops the server itself


class HeadTimed(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head (`head_timeout`)."""

    head_timeout = HEAD_TIMEOUT
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is in
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()  # for the next request on this connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._head_timer = self.loop.call_later(self.head_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _too_slow(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def _protocol(head_timeout: float) -> type[HeadTimed]:
    return type("HeadTimed", (HeadTimed,), {"head_timeout": head_timeout})


class _HeadLimit:
    """431 for a request whose line and headers together pass MAX_HEAD bytes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _head_size(scope) > MAX_HEAD:
            answer = PlainTextResponse("request head too large\n", 431)
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _head_size(scope: Scope) -> int:
    line = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    return line + sum(len(name) + len(value) + 4 for name, value in scope["headers"])


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=MAX_CONNECTIONS)


class WebServer:
    """One uvicorn server for `app`, started and stopped by the daemon."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        head_timeout: float = HEAD_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.app = _HeadLimit(app)
        self.head_timeout = head_timeout
        self.max_connections = max_connections
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; returns the bound address (port 0 picks a free one). Raises OSError."""
        sock = _bind(host, port)
        bound: Any = sock.getsockname()
        config = uvicorn.Config(
            self.app,
            http=_protocol(self.head_timeout),
            ws="none",
            lifespan="off",
            log_config=None,  # our handlers (monitor.runtime.logs); the access log is ours too
            access_log=False,
            server_header=False,
            timeout_keep_alive=KEEP_ALIVE,
            limit_concurrency=self.max_connections,
            h11_max_incomplete_event_size=MAX_HEAD,
            timeout_graceful_shutdown=int(STOP_GRACE),
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._serve(self._server, sock), name="http server")
        return str(bound[0]), int(bound[1])

    @staticmethod
    async def _serve(server: _Server, sock: socket.socket) -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit:  # uvicorn exits when it cannot start; the daemon must not
            log.error("http: the server stopped: it could not start")  # noqa: TRY400
        finally:
            sock.close()

    async def stop(self) -> None:
        """Stop listening; requests in flight get STOP_GRACE seconds, then are cancelled."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=STOP_GRACE + 3.0)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
