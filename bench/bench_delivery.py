"""How fast delivery is, and whether a slow target slows the others.

    .venv/bin/python -m bench.bench_delivery [--alerts 500] [--slow-seconds 10]

Real parts throughout: a SQLite outbox in a temporary folder, the Dispatcher with its lanes,
signed `standard` requests over HTTP to receivers on 127.0.0.1 (a threading http.server).
Three runs:
1. one fast target: deliveries per second, end to end (claim, sign, POST, record);
2. three fast targets: their combined rate and each alert's latency (due -> received);
3. the same three, plus a target that answers only after --slow-seconds: the fast targets' rate
   and latency again. Isolation means 3 matches 2.
The receivers run in the benchmark's own process (sharing its GIL with httpx and the event
loop), so the figures are a floor. A benchmark, not a test: it prints figures (docs/delivery.md
quotes them).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from monitor.delivery.dispatcher import Dispatcher, make_delivery_client
from monitor.delivery.settings import WebhookConfig
from monitor.events import alert_created, new_alert_id
from monitor.models import Item, Match
from monitor.store import NewAlert, SeenItem, Store

SECRET = "whsec_" + base64.b64encode(b"bench-delivery-secret-0123456789").decode()


class Receiver:
    """POST anywhere: answers 200 after `delay` seconds, notes when each webhook-id arrived."""

    def __init__(self, delay: float = 0.0) -> None:
        self.arrivals: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if delay:
                    receiver.stop.wait(delay)
                with receiver.lock:
                    receiver.arrivals.setdefault(self.headers["webhook-id"], time.monotonic())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def fill(store: Store, count: int, hooks: Sequence[str]) -> list[str]:
    now = datetime.now(UTC)
    store.sync_feeds([("http://bench/feed", "Bench")], now)
    (feed,) = store.feeds()
    seen, ids = [], []
    for i in range(count):
        item = Item(title=f"Russian warships in Havana, report {i}", guid=f"g{i}", summary="…")
        match = Match("russia-cuba-contacts", "Russian-Cuban state contacts", "high", 93.5)
        alert_id = new_alert_id(now)
        ids.append(alert_id)
        payload = alert_created(alert_id, item, match, now)
        seen.append(
            SeenItem(
                item, (NewAlert(alert_id, match.rule_id, "high", 93.5, payload, tuple(hooks)),)
            )
        )
    store.record_poll(
        feed.id,
        now,
        next_check_at=now + timedelta(hours=1),
        etag=None,
        last_modified=None,
        title=None,
        seen=seen,
    )
    return ids


def hook(name: str, url: str, timeout: str = "15s") -> WebhookConfig:
    return WebhookConfig.model_validate(
        {"name": name, "url": url, "secret": SECRET, "retry": ["1h"], "timeout": timeout}
    )


async def run(count: int, fast: int, slow_seconds: float | None) -> tuple[float, list[float]]:
    """Deliver `count` alerts to `fast` fast targets (and one slow one); the fast targets'
    combined deliveries per second, and each fast delivery's latency in seconds."""
    receivers = [Receiver() for _ in range(fast)]
    slow = Receiver(slow_seconds) if slow_seconds else None
    hooks = {f"fast{i}": hook(f"fast{i}", r.url) for i, r in enumerate(receivers)}
    if slow is not None:
        hooks["slow"] = hook("slow", slow.url, timeout=f"{slow_seconds + 5:g}s")
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(f"sqlite:///{Path(folder) / 'bench.db'}")
        fill(store, count, list(hooks))
        async with make_delivery_client() as client:
            dispatcher = Dispatcher(store.outbox, client, hooks)
            started = time.monotonic()
            task = asyncio.create_task(dispatcher.deliver_due())
            while sum(len(r.arrivals) for r in receivers) < count * fast:
                await asyncio.sleep(0.01)
                if task.done():
                    task.result()
            elapsed = time.monotonic() - started
            task.cancel()  # the slow target's deliveries are handed back, not waited for
            with contextlib.suppress(asyncio.CancelledError):
                await task
        store.close()
    for receiver in [*receivers, *([slow] if slow else [])]:
        receiver.close()
    latencies = [t - started for r in receivers for t in r.arrivals.values()]
    return count * fast / elapsed, latencies


def report(label: str, rate: float, latencies: list[float]) -> None:
    q = statistics.quantiles(latencies, n=20)
    print(
        f"{label:<44} {rate:8.0f} deliveries/s   latency p50 {statistics.median(latencies):5.2f}s"
        f"  p95 {q[18]:5.2f}s  max {max(latencies):5.2f}s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=500)
    parser.add_argument("--slow-seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"{args.alerts} alerts per target, standard format (signed), SQLite outbox")
    report("1 target", *asyncio.run(run(args.alerts, 1, None)))
    report("3 targets", *asyncio.run(run(args.alerts, 3, None)))
    report(
        f"3 targets + 1 answering after {args.slow_seconds:g}s",
        *asyncio.run(run(args.alerts, 3, args.slow_seconds)),
    )


if __name__ == "__main__":
    main()
