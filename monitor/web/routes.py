"""Every route of the console, the API and the Atom feed, for monitor.web.app to serve."""

from __future__ import annotations

from starlette.routing import BaseRoute

from monitor.web.api import api_routes
from monitor.web.atom import atom_routes
from monitor.web.console import console_routes
from monitor.web.context import WebContext


def all_routes(ctx: WebContext) -> list[BaseRoute]:
    return [*api_routes(ctx), *atom_routes(ctx), *console_routes(ctx)]
