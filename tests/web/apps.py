"""The routes of this branch in a Starlette app of their own, for the routes' unit tests (the
end-to-end tests serve them from a real server)."""

from __future__ import annotations

from datetime import datetime

from starlette.applications import Starlette

from monitor.web.context import WebContext
from monitor.web.routes import all_routes
from tests.web.seed import NOW, Seeded


def context(seeded: Seeded, now: datetime = NOW) -> WebContext:
    return WebContext(seeded.store, lambda: seeded.config, lambda: now)


def routes_app(seeded: Seeded, now: datetime = NOW) -> Starlette:
    return Starlette(routes=all_routes(context(seeded, now)))
