"""The daemon's own HTTP endpoint (the `http:` key): `GET /healthz`, `GET /metrics`, and the
WebSub callbacks `GET` and `POST /websub/<token>` when WebSub is on (monitor.feeds.websub).

A small asyncio server on the daemon's event loop, HTTP/1.1 with `Connection: close`: one
request per connection is all a health checker or Prometheus needs, and it keeps the server
free of keep-alive state. Bound to 127.0.0.1 unless the config names another host.

/healthz answers 200 while the scheduler ticks and the store answers, 503 otherwise, with a
small JSON body saying which check failed:

    {"status": "ok", "checks": {"scheduler": "ok: last tick 0.4s ago", "store": "ok"}}

A WebSub push is read only with a Content-Length within `fetch.max_size_mib` (413 otherwise,
before a byte of it is read; 411 without a length) and within `fetch.deadline` (408).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl

from monitor.metrics import CONTENT_TYPE, Metrics
from monitor.store import Store

log = logging.getLogger(__name__)
HTTP_ENV = "MONITOR_HTTP"  # overrides the `http:` key, e.g. 0.0.0.0:9108 in a container
DEFAULT_HOST = "127.0.0.1"
STALE_TICK = 15.0  # seconds without a scheduler tick before /healthz says unhealthy
STORE_TIMEOUT = 5.0  # seconds the store gets to answer `SELECT 1`
READ_TIMEOUT = 5.0
MAX_HEADER = 8192
WEBSUB_PREFIX = "/websub/"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    410: "Gone",
    411: "Length Required",
    413: "Content Too Large",
    500: "Internal Server Error",
}
Reply = tuple[int, str, bytes]  # status, content type, body


class Callbacks(Protocol):
    """What serves /websub/<token> (monitor.feeds.websub.WebSub)."""

    @property
    def max_body(self) -> int: ...
    @property
    def body_deadline(self) -> float: ...
    async def verify(self, token: str, query: Mapping[str, str]) -> Reply: ...
    async def push(self, token: str, headers: Mapping[str, str], body: bytes) -> Reply: ...
    async def known(self, token: str) -> bool: ...
    def refused(self, token: str, outcome: str) -> None: ...


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


def configured_address(config_http: str | None) -> tuple[str, int] | None:
    """Where to serve: MONITOR_HTTP, else the `http:` key, else nowhere."""
    text = os.environ.get(HTTP_ENV) or config_http
    if not text:
        return None
    try:
        return parse_address(text)
    except ValueError as exc:
        raise ValueError(f"{HTTP_ENV if os.environ.get(HTTP_ENV) else 'http'}: {exc}") from None


@dataclass
class Health:
    """The checks behind /healthz: a recent scheduler tick and a store that answers."""

    store: Store
    last_tick: Callable[[], float | None]  # time.monotonic() of the last tick, None before one
    stale_after: float = STALE_TICK

    async def check(self) -> tuple[bool, dict[str, str]]:
        checks = {"scheduler": self._scheduler(), "store": await self._store()}
        return all(value.startswith("ok") for value in checks.values()), checks

    def _scheduler(self) -> str:
        tick = self.last_tick()
        if tick is None:
            return "not started"
        age = time.monotonic() - tick
        if age > self.stale_after:
            return f"stalled: last tick {age:.0f}s ago"
        return f"ok: last tick {age:.1f}s ago"

    async def _store(self) -> str:
        try:
            answered = await asyncio.wait_for(
                asyncio.to_thread(self.store.ping), timeout=STORE_TIMEOUT
            )
        except TimeoutError:
            return f"unavailable: no answer within {STORE_TIMEOUT:.0f}s"
        return "ok" if answered else "unavailable: the database does not answer"


PUSH_READS_AT_ONCE = 4  # WebSub bodies read at the same time; more get a 503


class HttpServer:
    def __init__(self, health: Health, metrics: Metrics, websub: Callbacks | None = None) -> None:
        self.health = health
        self.metrics = metrics
        self.websub = websub
        self._server: asyncio.Server | None = None
        self._push_reads = 0

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; returns the bound address (port 0 picks a free one). Raises OSError."""
        self._server = await asyncio.start_server(self._handle, host, port)
        bound = self._server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=1.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=READ_TIMEOUT)
            status, content_type, body = await self._respond(head, reader)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            status, content_type, body = 400, "text/plain", b"bad request\n"
        except ConnectionError:
            writer.close()
            return
        except Exception:  # a request must never take the server down, nor go unanswered
            log.exception("http: cannot answer a request")
            status, content_type, body = 500, "text/plain", b"internal error\n"
        header = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Service Unavailable')}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
        ).encode("ascii")
        try:
            writer.write(header + (b"" if head_only(head) else body))
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _respond(self, head: bytes, reader: asyncio.StreamReader) -> Reply:
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or len(head) > MAX_HEADER:
            return 400, "text/plain", b"bad request\n"
        method, target = parts[0], parts[1].split("?", 1)[0]
        if target.startswith(WEBSUB_PREFIX) and self.websub is not None:
            return await self._websub(self.websub, method, parts[1], head, reader)
        if target not in ("/healthz", "/metrics"):
            return 404, "text/plain", b"not found: try /healthz or /metrics\n"
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        if target == "/metrics":
            return 200, CONTENT_TYPE, await asyncio.to_thread(self.metrics.exposition)
        ok, checks = await self.health.check()
        body = json.dumps({"status": "ok" if ok else "unhealthy", "checks": checks}) + "\n"
        return (200 if ok else 503), "application/json", body.encode()

    async def _websub(
        self, websub: Callbacks, method: str, target: str, head: bytes, reader: asyncio.StreamReader
    ) -> Reply:
        path, _, query = target.partition("?")
        token = path.removeprefix(WEBSUB_PREFIX)
        if not _TOKEN.match(token):
            return 404, "text/plain", b"not found\n"
        if method == "GET":
            return await websub.verify(token, dict(parse_qsl(query, keep_blank_values=True)))
        if method != "POST":
            return 405, "text/plain", b"method not allowed\n"
        return await self._push(websub, token, head, reader)

    async def _push(
        self, websub: Callbacks, token: str, head: bytes, reader: asyncio.StreamReader
    ) -> Reply:
        """A body is read only for a callback path we handed out, and only a few at once: any
        client can POST here, and each body may be as large as a feed."""
        if not await websub.known(token):
            websub.refused(token, "unknown")
            return 404, "text/plain", b"no such subscription\n"
        if self._push_reads >= PUSH_READS_AT_ONCE:
            websub.refused(token, "busy")
            return 503, "text/plain", b"busy, retry later\n"
        self._push_reads += 1
        try:
            headers = request_headers(head)
            body = await _read_body(websub, token, headers, reader)
        finally:
            self._push_reads -= 1
        if isinstance(body, tuple):
            return body
        return await websub.push(token, headers, body)


async def _read_body(
    websub: Callbacks, token: str, headers: Mapping[str, str], reader: asyncio.StreamReader
) -> bytes | Reply:
    """A push's body, bounded in size (before reading) and in time; else the refusal."""
    length = headers.get("content-length", "")
    if "transfer-encoding" in headers or not (length.isascii() and length.isdigit()):
        websub.refused(token, "no_length")
        return 411, "text/plain", b"a Content-Length is required\n"
    if int(length) > websub.max_body:
        websub.refused(token, "too_large")
        return 413, "text/plain", b"too large\n"
    try:
        return await asyncio.wait_for(reader.readexactly(int(length)), timeout=websub.body_deadline)
    except TimeoutError:
        websub.refused(token, "too_slow")
        return 408, "text/plain", b"too slow\n"


def request_headers(head: bytes) -> dict[str, str]:
    """Header names lower-cased; a repeated header's values joined with ", "."""
    found: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep and name.strip():
            key = name.strip().lower()
            found[key] = f"{found[key]}, {value.strip()}" if key in found else value.strip()
    return found


def head_only(head: bytes) -> bool:
    return head.startswith(b"HEAD ")
