"""The console's routes, as the daemon mounts them: one function, so the daemon needs to know
nothing of the pages, the API or the feed of alerts.

`all_routes(ctx)` returns the console at `/` (monitor.web.console), the JSON API under
`/api/v1` (monitor.web.api, as a Mount) and `/alerts.atom` (monitor.web.atom). They are served
behind the token check of monitor.web.auth: a route sees its caller as `request.scope["auth"]`
(`can_write`), a form posted from a page carries `csrf_token(request)`, and a POST that writes
nothing (a match, a backtest) is marked `@reads_only` so read-only tokens may use it. Paths
under `/static/` are served without a token (the login page may use them): assets only, never
data.

A handler runs on the daemon's event loop, beside polling: anything heavier than a store read
of one page (a backtest, a long query, rendering thousands of rows) goes to a thread
(`asyncio.to_thread`) or a worker, never on the loop.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from monitor.web.api import api_routes
from monitor.web.atom import atom_routes
from monitor.web.console import console_routes
from monitor.web.context import WebContext


def all_routes(ctx: WebContext) -> list[BaseRoute]:
    return [*api_routes(ctx), *atom_routes(ctx), *console_routes(ctx)]
