"""`monitor status`: the replicas sharing the store, what each holds, and the work waiting.

Reads the store only (monitor.store.replicas): every daemon's heartbeat row, live or dead, the
feeds and deliveries it holds a lease on now, and the queue: feeds due, deliveries pending.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.cli.reporting import load_or_report
from monitor.cli.table import table
from monitor.durations import approximate_duration
from monitor.errors import StoreError
from monitor.store import Store
from monitor.store.replicas import Queue, ReplicaRow, Replicas

ConfigOption = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
EXIT_OK, EXIT_STORAGE, EXIT_INVALID, EXIT_NO_REPLICA = 0, 1, 2, 3


def register(sub: Any, with_config: ConfigOption) -> None:
    parser = with_config(
        sub.add_parser(
            "status",
            help="show the replicas sharing the store, what each holds, and the work waiting",
            description="List every `monitor run` replica known to the store: live (heartbeat "
            "within 3 intervals) or dead (its claims are freed for the others; rows are pruned "
            "after a day), its host and pid, last heartbeat, the feeds and deliveries it holds a "
            "lease on, and what it has done since it started; then the feeds due and the "
            "deliveries pending. Reads the store only. Exit codes: 0 at least one live replica, "
            "1 storage unavailable, 2 invalid config, 3 no live replica.",
        )
    )
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config, secrets=False)
    if config is None:
        return EXIT_INVALID
    now = datetime.now(UTC)
    try:
        store = Store.open(config.storage_url, migrating=False)  # never under live daemons
        try:
            replicas = Replicas(store.engine)
            rows, queue = replicas.report(now), replicas.queue(now)
        finally:
            store.close()
    except StoreError as exc:
        print(f"storage: {exc}", file=sys.stderr)
        return EXIT_STORAGE
    if args.json:
        print(json.dumps(status_json(rows, queue, now), ensure_ascii=False))
    else:
        for line in status_lines(rows, queue, now):
            print(line)
    return EXIT_OK if any(row.alive(now) for row in rows) else EXIT_NO_REPLICA


def _ago(moment: datetime, now: datetime) -> str:
    return approximate_duration(max(now - moment, timedelta(0)))


REPLICAS_HEADER = (
    "STATE",
    "HOST",
    "PID",
    "VERSION",
    "UP",
    "HEARTBEAT",
    "FEEDS HELD",
    "DELIVERIES HELD",
    "IN FLIGHT",
    "POLLS",
    "DELIVERED",
)
COUNTS = {2, 6, 7, 8, 9, 10}  # right-aligned columns


def status_lines(rows: list[ReplicaRow], queue: Queue, now: datetime) -> list[str]:
    live = sum(row.alive(now) for row in rows)
    lines = [f"replicas: {live} live, {len(rows) - live} dead"]
    if rows:
        lines.extend(table(REPLICAS_HEADER, [_replica(row, now) for row in rows], right=COUNTS))
    lines.append(
        f"feeds: {queue.feeds} active, {queue.feeds_due} due now, {queue.feeds_leased} leased"
    )
    lines.append(
        f"outbox: {queue.pending} pending ({queue.pending_due} due now), {queue.failed} failed"
    )
    return lines


def _replica(row: ReplicaRow, now: datetime) -> tuple[str, ...]:
    """A dead replica's work since start is not shown: it is gone with it."""
    alive = row.alive(now)
    return (
        "live" if alive else "dead",
        row.host,
        str(row.pid),
        f"v{row.version}",
        _ago(row.started_at, now) if alive else "-",
        f"{_ago(row.last_seen_at, now)} ago",
        str(row.feeds_held),
        str(row.deliveries_held),
        str(row.in_flight) if alive else "-",
        str(row.polls) if alive else "-",
        str(row.deliveries) if alive else "-",
    )


def status_json(rows: list[ReplicaRow], queue: Queue, now: datetime) -> dict[str, object]:
    return {
        "replicas": [
            {
                "id": row.id,
                "state": "live" if row.alive(now) else "dead",
                "host": row.host,
                "pid": row.pid,
                "version": row.version,
                "started_at": row.started_at.isoformat(),
                "last_heartbeat": row.last_seen_at.isoformat(),
                "dead_after": row.expires_at.isoformat(),
                "feeds_held": row.feeds_held,
                "deliveries_held": row.deliveries_held,
                "in_flight": row.in_flight,
                "polls": row.polls,
                "deliveries": row.deliveries,
            }
            for row in rows
        ],
        "feeds": {"active": queue.feeds, "due": queue.feeds_due, "leased": queue.feeds_leased},
        "outbox": {"pending": queue.pending, "due": queue.pending_due, "failed": queue.failed},
    }
