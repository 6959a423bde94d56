"""The console's stylesheet and script (monitor/web/static), served by the daemon itself.

Each is served at `/static/<digest>/<name>`: a new version has a new address, so browsers may
keep one for a year (`immutable`) and still never run a stale script after an upgrade. An old
digest is a 404, not the new file under an old name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
FOREVER = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    digest: str
    media_type: str


@cache
def assets() -> dict[str, Asset]:
    found: dict[str, Asset] = {}
    for entry in resources.files("monitor.web").joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in TYPES:
            body = entry.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:12]
            found[entry.name] = Asset(body, digest, TYPES[suffix])
    return found


def static_url(name: str) -> str:
    """The address of an asset, relative to the console's root."""
    return f"static/{assets()[name].digest}/{name}"


async def _serve(request: Request) -> Response:
    asset = assets().get(request.path_params["name"])
    if asset is None or asset.digest != request.path_params["digest"]:
        return PlainTextResponse("not found", 404)
    etag = f'"{asset.digest}"'
    headers = {"Cache-Control": FOREVER, "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def static_routes() -> list[BaseRoute]:
    return [Route("/static/{digest}/{name}", _serve, methods=["GET", "HEAD"])]
