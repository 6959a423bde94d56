"""How soon a WebSub push becomes a delivered alert, against the real daemon.

    .venv/bin/python -m bench.websub_push [--pushes 50]

A real `monitor run` (SQLite in a temporary folder, `http:` and `websub:` on 127.0.0.1) polls
one feed (interval 1h) whose document names the test hub (tests/support/hub.py); once the hub
has verified the subscription, it publishes --pushes documents one after another, each with one
new item the pipeline test rule `russia-cuba-contacts` matches, signed with sha256. Per push:
  push    the hub's POST until the daemon's 200 (signature, parse, identity, match, store);
  alert   the hub's POST until the signed webhook arrives at the local receiver.
Polling, by contrast, finds an item after half an interval on average. Hub, feed server and
receiver share this process and this machine's cores with the daemon. A benchmark, not a test:
it prints figures (docs/operations.md quotes them).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tests.ops.daemon import Daemon
from tests.support.hub import LocalHub, hub_document, websub_config
from tests.support.receiver import SignedReceiver
from tests.support.servers import LocalServer

ITEM = """    <item>
      <title>Russian delegation {n} holds talks in Havana with Cuban officials</title>
      <link>https://wire.example.org/world/delegation-{n}</link>
      <guid isPermaLink="false">bench-{n}</guid>
      <description>Talks on energy supplies, round {n}.</description>
    </item>
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=50)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        LocalServer(poll_interval=0.05) as server,
        LocalServer(poll_interval=0.05) as hub_server,
        LocalServer(poll_interval=0.05) as receiver_server,
    ):
        hub = LocalHub(hub_server)
        receiver = SignedReceiver(receiver_server)
        config, topic = websub_config(Path(folder), server, hub, receiver, interval="1h")
        daemon = Daemon.start(config)
        try:
            if not hub.wait_for(lambda _: bool(hub.of("verified")), timeout=30):
                raise SystemExit(f"the hub never verified:\n{daemon.log}")
            base = hub_document("wire.xml", hub, topic).decode()
            push_seconds, alert_seconds = [], []
            for n in range(args.pushes):
                body = base.replace("<item>", ITEM.format(n=n) + "    <item>", 1).encode()
                started = time.perf_counter()
                statuses = hub.publish(topic, body)
                push_seconds.append(time.perf_counter() - started)
                if statuses != [200]:
                    raise SystemExit(f"push {n} answered {statuses}:\n{daemon.log}")
                arrived = receiver_server.wait_for(lambda requests, n=n: len(requests) > n, 30)
                if not arrived:
                    raise SystemExit(f"no alert for push {n}:\n{daemon.log}")
                alert_seconds.append(time.perf_counter() - started)
        finally:
            daemon.stop()
    print(f"{args.pushes} pushes, each one new matching item:")
    for name, values in (
        ("push (POST -> 200)", push_seconds),
        ("alert (POST -> webhook)", alert_seconds),
    ):
        ordered = sorted(values)
        p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
        print(
            f"  {name:<24} median {statistics.median(values) * 1000:6.1f} ms   "
            f"p95 {p95 * 1000:6.1f} ms   max {max(values) * 1000:6.1f} ms"
        )


if __name__ == "__main__":
    main()
