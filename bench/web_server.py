"""What serving HTTP costs the daemon's event loop: requests per second and latency of the web
app on uvicorn, and how late a 10 ms timer on the same loop fires meanwhile (what a scheduler
tick or a poll would wait).

    .venv/bin/python -m bench.web_server [--requests 2000] [--clients 8]

The app is the daemon's (monitor.web.app.build_app) over a SQLite store in a temporary folder,
served by WebServer on 127.0.0.1 in this process's loop; --clients threads, each with its own
keep-alive httpx client, ask in turn GET /healthz (a store ping in a thread), GET /metrics (the
store's counts) and an authenticated GET behind the Bearer check. A benchmark, not a test: it
prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from monitor.runtime.metrics import Metrics
from monitor.store import Store
from monitor.web.app import build_app
from monitor.web.auth import Auth, Tokens
from monitor.web.health import Health
from monitor.web.server import WebServer

TOKEN = "bench-token-" + "b" * 24
PATHS = ("/healthz", "/metrics", "/api/v1/ping")


async def _ping(_request: Request) -> Response:
    return PlainTextResponse("pong")


def _client(base: str, count: int, latencies: list[float], failures: list[int]) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for n in range(count):
            started = time.perf_counter()
            status = client.get(PATHS[n % len(PATHS)]).status_code
            latencies.append(time.perf_counter() - started)
            if status not in (200, 503):  # /healthz is 503 without a scheduler: answered
                failures.append(status)


async def _lag(stop: asyncio.Event, late: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.01)
        late.append(time.perf_counter() - started - 0.01)


def _ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.1f}"


async def _bench(folder: Path, requests: int, clients: int) -> None:
    store = Store.open(f"sqlite:///{folder / 'monitor.db'}")
    app = build_app(
        Health(store, time.monotonic),
        Metrics(store).exposition,
        auth=Auth(Tokens(TOKEN)),
        extra_routes=[Route("/api/v1/ping", _ping)],
    )
    server = WebServer(app)
    host, port = await server.start("127.0.0.1", 0)
    stop = asyncio.Event()
    late: list[float] = []
    lagging = asyncio.create_task(_lag(stop, late))
    await asyncio.sleep(0.5)
    idle = list(late)
    late.clear()
    latencies: list[float] = []
    failures: list[int] = []
    threads = [
        threading.Thread(
            target=_client, args=(f"http://{host}:{port}", requests // clients, latencies, failures)
        )
        for _ in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        await asyncio.to_thread(thread.join)
    seconds = time.perf_counter() - started
    stop.set()
    await lagging
    await server.stop()
    store.close()
    print(f"{len(latencies)} requests from {clients} clients in {seconds:.2f}s: ", end="")
    print(f"{len(latencies) / seconds:.0f}/s, failures {len(failures)}")
    print(
        f"latency ms: median {statistics.median(latencies) * 1000:.1f}, "
        f"p95 {_ms(latencies, 0.95)}, p99 {_ms(latencies, 0.99)}, max {_ms(latencies, 1.0)}"
    )
    print(
        f"a 10 ms timer on the loop fired late by, ms: idle p99 {_ms(idle, 0.99)}; "
        f"serving median {statistics.median(late) * 1000:.1f}, p99 {_ms(late, 0.99)}, "
        f"max {_ms(late, 1.0)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_bench(Path(folder), args.requests, args.clients))


if __name__ == "__main__":
    main()
