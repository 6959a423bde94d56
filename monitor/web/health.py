"""`GET /healthz` and `GET /metrics`: open to anyone who reaches the server (no token), as a
health checker or Prometheus needs.

/healthz answers 200 while the scheduler ticks and the store answers and takes writes, 503
otherwise, with a small JSON body saying which check failed:

    {"status": "ok", "checks": {"scheduler": "ok: last tick 0.4s ago", "store": "ok"}}
    {"status": "unhealthy", "checks": {"scheduler": "ok: …", "store": "writes failing for 42s
     (3 in a row): OperationalError: database or disk is full"}}
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from monitor.store import Store

STALE_TICK = 15.0  # seconds without a scheduler tick before /healthz says unhealthy
STORE_TIMEOUT = 5.0  # seconds the store gets to answer `SELECT 1`
NO_STORE = {"Cache-Control": "no-store"}
# the Prometheus text of the daemon's metrics (monitor.runtime.metrics.Metrics.exposition)
Exposition = Callable[[], bytes]


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


def routes(health: Health, exposition: Exposition) -> list[BaseRoute]:
    """/healthz and /metrics (GET, and HEAD as Starlette adds it)."""

    async def healthz(_request: Request) -> Response:
        ok, checks = await health.check()
        document = {"status": "ok" if ok else "unhealthy", "checks": checks}
        body = json.dumps(document) + "\n"
        status = 200 if ok else 503
        return Response(body, status, NO_STORE, media_type="application/json")

    async def metrics(_request: Request) -> Response:
        body = await asyncio.to_thread(exposition)  # reads counts from the store
        return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4, headers=NO_STORE)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
