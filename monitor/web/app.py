"""The daemon's ASGI app (Starlette): `build_app` puts the routes and the middleware together.

    /healthz, /metrics          monitor.web.health: open, for probes and Prometheus
    /websub/<token>             monitor.web.websub: open, for hubs; bounded before reading
    /login, /logout             monitor.web.auth
    the rest (`extra_routes`)   the console, the API, /alerts.atom (monitor.web.routes):
                                behind a token (monitor.web.auth.AuthMiddleware)

Why Starlette on uvicorn (rather than aiohttp.web): it is ASGI, so routes are plain async
functions over typed requests and responses that tests can also drive in process; uvicorn's h11
parser takes HTTP framing off our hands with limits we can set; both run on the daemon's event
loop without owning it (aiohttp's web runner works too, but brings a second HTTP client stack
beside httpx, and its server is tied to its own framework).

Every handler runs on the daemon's event loop, beside polling and delivering: a handler must
never block it. A store read goes through `asyncio.to_thread`; anything heavier (a backtest,
rendering many rows) runs in a thread or a worker process.

Each request is logged by `AccessLog` to `monitor.web.access` (INFO; DEBUG for /healthz and
/metrics, which probes ask all day), with secret-looking query values (`token=`) masked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.http.urls import MASK, secret_name
from monitor.web import health as health_routes
from monitor.web import websub as websub_routes
from monitor.web.auth import Auth, AuthMiddleware
from monitor.web.health import Exposition, Health
from monitor.web.websub import Callbacks

access = logging.getLogger("monitor.web.access")
QUIET = ("/healthz", "/metrics")


def build_app(
    health: Health,
    exposition: Exposition,
    *,
    auth: Auth,
    websub: Callbacks[Any] | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The app the daemon serves: its own endpoints, the login, and `extra_routes` (the
    console's, from monitor.web.routes.all_routes) behind the token."""
    routes: list[BaseRoute] = [
        *health_routes.routes(health, exposition),
        *(websub_routes.routes(websub) if websub is not None else []),
        *auth.routes(),
        *extra_routes,
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(AccessLog),
            Middleware(AuthMiddleware, auth=auth, routes=routes),
        ],
    )


def shown_target(path: str, query: str) -> str:
    """The path and query of a request as a log may show them: `token=` values masked."""
    if not query:
        return path
    pairs = parse_qsl(query, keep_blank_values=True)
    masked = "&".join(
        f"{quote(name)}={MASK if secret_name(name) else quote(value)}" for name, value in pairs
    )
    return f"{path}?{masked}"


class AccessLog:
    """One line per request: client, method, target (masked), status, milliseconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = str(scope.get("path", ""))
            client = scope.get("client") or ("-", 0)
            access.log(
                logging.DEBUG if path in QUIET else logging.INFO,
                "%s %s %s %s %.0fms",
                client[0],
                scope.get("method", ""),
                shown_target(path, scope.get("query_string", b"").decode("latin-1")),
                status or "-",
                (time.monotonic() - started) * 1000,
            )
