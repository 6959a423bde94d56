"""The WebSub callback endpoint, `GET` and `POST /websub/<token>`, served by
monitor.pipeline.websub.callback.Callback (the `Callbacks` protocol below).

Anyone can POST here, and a body may be as large as a feed, so a push is read only for a
callback path the daemon handed out (404 otherwise, before a byte of the body is read), at most
PUSH_READS_AT_ONCE at a time (503), within `fetch.max_size_mib` and `fetch.deadline` (408).
uvicorn (h11) parses the framing; what it refuses (a malformed Content-Length, a transfer coding
other than chunked, malformed chunks) is answered 400 by it:

    Content-Length: N                 N over the cap: 413 before the body is read
    Transfer-Encoding: chunked        read as it comes; 413 as soon as the chunks pass the cap
    neither                           411
    Content-Encoding: gzip, deflate   decoded (monitor.feeds.compression), its output capped too:
                                      413 past the cap, however small the compressed body (a
                                      bomb is stopped at the cap); corrupt data 400; br, zstd or
                                      another coding 415
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from monitor.errors import PermanentFeedError
from monitor.feeds.compression import BodyTooLarge, Decoder

log = logging.getLogger(__name__)
WEBSUB_PREFIX = "/websub/"
PUSH_READS_AT_ONCE = 4  # WebSub bodies read at the same time; more get a 503
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_FRAMING = frozenset(("content-length", "transfer-encoding", "content-encoding"))
_TEXT = "text/plain; charset=utf-8"
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


class _Refused(Exception):  # noqa: N818 - a signal inside this module, not an error class
    """A push body not read or not decoded: the status to answer and the outcome to count."""

    def __init__(self, status: int, outcome: str, message: bytes) -> None:
        super().__init__(outcome)
        self.status = status
        self.outcome = outcome
        self.message = message


_TOO_LARGE = 413, "too_large", b"too large\n"


def routes(websub: Callbacks[Any]) -> list[BaseRoute]:
    """/websub/<token>: GET for the hub's verification of intent, POST for content."""
    return [Route(WEBSUB_PREFIX + "{token}", _Endpoint(websub).handle, methods=["GET", "POST"])]


def _reply(reply: Reply) -> Response:
    status, content_type, body = reply
    return Response(body, status, {"Cache-Control": "no-store"}, media_type=content_type)


class _Endpoint:
    def __init__(self, websub: Callbacks[Any]) -> None:
        self.websub = websub
        self.reading = 0  # push bodies being read now

    async def handle(self, request: Request) -> Response:
        token = str(request.path_params["token"])
        if not _TOKEN.match(token):
            return _reply((404, _TEXT, b"not found\n"))
        if request.method == "GET":
            return _reply(await self.websub.verify(token, dict(request.query_params)))
        if request.method != "POST":
            return _reply((405, _TEXT, b"method not allowed\n"))
        return _reply(await self._push(token, request))

    async def _push(self, token: str, request: Request) -> Reply:
        """A body is read only for a callback path we handed out, and only a few at once."""
        websub = self.websub
        found = await websub.find(token)
        if found is None:
            websub.refused(token, "unknown")
            return 404, _TEXT, b"no such subscription\n"
        if self.reading >= PUSH_READS_AT_ONCE:
            websub.refused(token, "busy")
            return 503, _TEXT, b"busy, retry later\n"
        self.reading += 1
        try:
            raw = await _read_body(request, websub.max_body, websub.body_deadline)
            content = _decoded(raw, request.headers.get("content-encoding", ""), websub.max_body)
        except _Refused as refusal:
            websub.refused(token, refusal.outcome)
            return refusal.status, _TEXT, refusal.message
        finally:
            self.reading -= 1
        return await websub.push(found, _kept(request.headers), content, raw)


def _kept(headers: Headers) -> dict[str, str]:
    """Header names lower-cased, a repeated header's values joined with ", "; the framing and
    the coding left out (undone here)."""
    found: dict[str, str] = {}
    for key, value in headers.items():
        if key not in _FRAMING:
            found[key] = f"{found[key]}, {value}" if key in found else value
    return found


async def _read_body(request: Request, cap: int, deadline: float) -> bytes:
    """A push's body as sent, bounded in size (before reading, when it has a length) and in
    time; else _Refused. h11 has checked the framing: a length is digits, a transfer coding
    is `chunked`, and it frames the body whatever a length says."""
    length = request.headers.get("content-length")
    chunked = "transfer-encoding" in request.headers
    if not chunked:
        if length is None:
            raise _Refused(411, "no_length", b"a Content-Length or a chunked body is required\n")
        if int(length) > cap:
            raise _Refused(*_TOO_LARGE)
    body = bytearray()
    try:
        async with asyncio.timeout(deadline):
            async for chunk in request.stream():
                body += chunk
                if len(body) > cap:  # the chunks passed the cap: read no more of them
                    raise _Refused(*_TOO_LARGE)
    except TimeoutError:
        raise _Refused(408, "too_slow", b"too slow\n") from None
    except ClientDisconnect:  # h11 refused the framing (answered 400), or the hub went away
        raise _Refused(400, "bad_body", b"malformed body\n") from None
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
