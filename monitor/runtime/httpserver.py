"""The daemon's own HTTP endpoint (the `http:` key): `GET /healthz`, `GET /metrics`, and the
WebSub callbacks `GET` and `POST /websub/<token>` when WebSub is on (`Callbacks`, served by
monitor.pipeline.websub.callback).

A small asyncio server on the daemon's event loop, HTTP/1.1 with `Connection: close`: one
request per connection is all a health checker or Prometheus needs, and it keeps the server
free of keep-alive state. Bound to 127.0.0.1 unless the config names another host.

/healthz answers 200 while the scheduler ticks and the store answers and takes writes, 503
otherwise, with a small JSON body saying which check failed:

    {"status": "ok", "checks": {"scheduler": "ok: last tick 0.4s ago", "store": "ok"}}
    {"status": "unhealthy", "checks": {"scheduler": "ok: …", "store": "writes failing for 42s
     (3 in a row): OperationalError: database or disk is full"}}

A WebSub push is read only for a callback path the daemon handed out (404 otherwise), at most
PUSH_READS_AT_ONCE at a time (503), within `fetch.max_size_mib` and `fetch.deadline` (408):

    Content-Length: N                 N over the cap: 413 before a byte of it is read
    Transfer-Encoding: chunked        read chunk by chunk; 413 as soon as the chunks pass the cap;
                                      malformed framing 400; another transfer coding 501
    neither                           411
    Content-Encoding: gzip, deflate   decoded (monitor.feeds.compression), its output capped too:
                                      413 past the cap, however small the compressed body (a
                                      bomb is stopped at the cap); corrupt data 400; br, zstd or
                                      another coding 415
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
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl

from monitor.errors import PermanentFeedError
from monitor.feeds.compression import BodyTooLarge, Decoder
from monitor.runtime.metrics import CONTENT_TYPE, Metrics
from monitor.store import Store

log = logging.getLogger(__name__)
HTTP_ENV = "MONITOR_HTTP"  # overrides the `http:` key, e.g. 0.0.0.0:9108 in a container
DEFAULT_HOST = "127.0.0.1"
STALE_TICK = 15.0  # seconds without a scheduler tick before /healthz says unhealthy
STORE_TIMEOUT = 5.0  # seconds the store gets to answer `SELECT 1`
READ_TIMEOUT = 5.0
MAX_HEADER = 8192  # bytes of a request's head, and of a chunked body's trailers
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
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    501: "Not Implemented",
}
Reply = tuple[int, str, bytes]  # status, content type, body
Found = TypeVar("Found")


class Callbacks(Protocol[Found]):
    """What serves /websub/<token> (monitor.pipeline.websub.callback.Callback). `find` looks the
    token up before a body is read; `push` gets what it found, the body with its
    Content-Encoding undone, and the body as sent (`raw`: what a hub may have signed)."""

    @property
    def max_body(self) -> int: ...
    @property
    def body_deadline(self) -> float: ...
    async def verify(self, token: str, query: Mapping[str, str]) -> Reply: ...
    async def find(self, token: str) -> Found | None: ...
    async def push(
        self, found: Found, headers: Mapping[str, str], body: bytes, raw: bytes
    ) -> Reply: ...
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
    """The checks behind /healthz: a recent scheduler tick, and a store that answers and
    takes writes (the poll writer's last transaction succeeded)."""

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
        if not answered:
            return "unavailable: the database does not answer"
        # it answers, but may refuse writes (a full disk, a write lock held elsewhere)
        return self.store.writes.problem() or "ok"


PUSH_READS_AT_ONCE = 4  # WebSub bodies read at the same time; more get a 503


class HttpServer:
    def __init__(
        self, health: Health, metrics: Metrics, websub: Callbacks[Any] | None = None
    ) -> None:
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
        self,
        websub: Callbacks[Any],
        method: str,
        target: str,
        head: bytes,
        reader: asyncio.StreamReader,
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
        self, websub: Callbacks[Any], token: str, head: bytes, reader: asyncio.StreamReader
    ) -> Reply:
        """A body is read only for a callback path we handed out, and only a few at once: any
        client can POST here, and each body may be as large as a feed."""
        found = await websub.find(token)
        if found is None:
            websub.refused(token, "unknown")
            return 404, "text/plain", b"no such subscription\n"
        if self._push_reads >= PUSH_READS_AT_ONCE:
            websub.refused(token, "busy")
            return 503, "text/plain", b"busy, retry later\n"
        self._push_reads += 1
        headers = request_headers(head)
        try:
            raw = await _read_framed(headers, reader, websub.max_body, websub.body_deadline)
            content = _decoded(raw, headers.get("content-encoding", ""), websub.max_body)
        except _Refused as refusal:
            websub.refused(token, refusal.outcome)
            return refusal.status, "text/plain", refusal.message
        finally:
            self._push_reads -= 1
        kept = {k: v for k, v in headers.items() if k not in _FRAMING}  # undone here
        return await websub.push(found, kept, content, raw)


_FRAMING = frozenset(("content-length", "transfer-encoding", "content-encoding"))
_HEX = frozenset(b"0123456789abcdefABCDEF")


class _Refused(Exception):  # noqa: N818 - a signal inside this module, not an error class
    """A push body not read or not decoded: the status to answer and the outcome to count."""

    def __init__(self, status: int, outcome: str, message: bytes) -> None:
        super().__init__(outcome)
        self.status = status
        self.outcome = outcome
        self.message = message


_TOO_LARGE = 413, "too_large", b"too large\n"
_MALFORMED = 400, "bad_body", b"malformed chunked body\n"


async def _read_framed(
    headers: Mapping[str, str], reader: asyncio.StreamReader, cap: int, deadline: float
) -> bytes:
    """A push's body as sent, bounded in size (before reading, when it has a length) and in
    time; else _Refused."""
    coding = headers.get("transfer-encoding")
    length = headers.get("content-length", "")
    if coding is None:  # else the transfer coding frames the body, whatever the length says
        if not (length.isascii() and length.isdigit()):
            raise _Refused(411, "no_length", b"a Content-Length or a chunked body is required\n")
        if int(length) > cap:
            raise _Refused(*_TOO_LARGE)
    elif coding.strip().lower() != "chunked":
        raise _Refused(501, "bad_body", b"only the chunked transfer coding is understood\n")
    try:
        async with asyncio.timeout(deadline):
            if coding is None:
                return await reader.readexactly(int(length))
            return await _read_chunked(reader, cap)
    except TimeoutError:
        raise _Refused(408, "too_slow", b"too slow\n") from None


async def _read_chunked(reader: asyncio.StreamReader, cap: int) -> bytes:
    """A chunked body (RFC 9112 7.1), refused once its chunks pass `cap`; trailers skipped."""
    body = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")  # a line past the reader's limit: 400
        size = line[:-2].split(b";", 1)[0].strip()  # chunk extensions ignored
        if not size or len(size) > 16 or not _HEX.issuperset(size):
            raise _Refused(*_MALFORMED)
        if int(size, 16) == 0:
            break
        if len(body) + int(size, 16) > cap:
            raise _Refused(*_TOO_LARGE)
        body += await reader.readexactly(int(size, 16))
        if await reader.readexactly(2) != b"\r\n":
            raise _Refused(*_MALFORMED)
    trailers = 0
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        trailers += len(line)
        if trailers > MAX_HEADER:
            raise _Refused(*_MALFORMED)
    return bytes(body)


def _decoded(raw: bytes, content_encoding: str, cap: int) -> bytes:
    """`raw` with its Content-Encoding undone, the output capped at `cap` (a gzip bomb stops
    there); refused when the coding is unknown (415) or the data corrupt (400)."""
    if not content_encoding.strip():
        return raw
    try:
        decoder = Decoder(content_encoding, cap)
    except PermanentFeedError:
        log.warning("http: a WebSub push with Content-Encoding %r refused", content_encoding[:40])
        raise _Refused(
            415, "bad_encoding", b"unsupported Content-Encoding: send gzip, deflate or none\n"
        ) from None
    try:
        content = decoder.decode(raw)
        decoder.finish()
    except BodyTooLarge:
        raise _Refused(*_TOO_LARGE) from None
    except PermanentFeedError as error:
        raise _Refused(400, "bad_body", f"{error}\n".encode()) from None
    return content


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
