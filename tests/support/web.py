"""The daemon's web app on a real uvicorn server on 127.0.0.1, in process.

async with serving(Health(store, lambda: None), Metrics(store).exposition) as web:
    web.url                     # http://127.0.0.1:PORT
    await web.ask(b"GET /healthz HTTP/1.1\\r\\n\\r\\n")   # raw bytes out, raw answer back
web.token                       # the write token (TOKEN unless `tokens` says otherwise)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute

from monitor.web.app import build_app
from monitor.web.auth import Auth, Tokens
from monitor.web.health import Exposition, Health
from monitor.web.server import HEAD_TIMEOUT, WebServer
from monitor.web.websub import Callbacks

TOKEN = "write-token-" + "w" * 20
READ_TOKEN = "read-token-" + "r" * 20


@dataclass
class Served:
    url: str
    port: int
    auth: Auth

    @property
    def token(self) -> str:
        return self.auth.tokens.write

    async def ask(self, request: bytes) -> bytes:
        """Send `request` as is, with `Connection: close` (and `Host:`, which HTTP/1.1 needs,
        if it has none) added after its request line, and read the whole answer."""
        line, sep, rest = request.partition(b"\r\n")
        added = b"Connection: close\r\n"
        if b"\r\nhost:" not in request.split(b"\r\n\r\n", 1)[0].lower():
            added += b"Host: 127.0.0.1\r\n"
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(line + sep + added + rest if sep else request)
        await writer.drain()
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
        return answer


@asynccontextmanager
async def serving(
    health: Health,
    exposition: Exposition,
    *,
    websub: Callbacks[Any] | None = None,
    auth: Auth | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    head_timeout: float = HEAD_TIMEOUT,
) -> AsyncIterator[Served]:
    auth = auth or Auth(Tokens(TOKEN, READ_TOKEN), failed_delay=0.0)
    app = build_app(health, exposition, auth=auth, websub=websub, extra_routes=extra_routes)
    server = WebServer(app, head_timeout=head_timeout)
    host, port = await server.start("127.0.0.1", 0)
    try:
        yield Served(f"http://{host}:{port}", port, auth)
    finally:
        await server.stop()
