"""Scheduling at scale: 100,000 feeds in PostgreSQL shared by 4 replicas, on a simulated clock.

    .venv/bin/python -m bench.schedule_scale                      # 100,000 feeds, 4 replicas
    .venv/bin/python -m bench.schedule_scale --feeds 10000 --replicas 2 --intervals 2

What it exercises is the real claim path — `Store.claim_feeds` (FOR UPDATE SKIP LOCKED) and
`Store.record_polls` (the batched write of a 304) — with the fetch replaced by an instant "not
modified", so the figures are the database's side of scheduling and nothing else. The clock is
simulated: it advances one second a step, and every replica (a thread with its own Store, as a
daemon has) claims what is due at that second, at most `CLAIM_AHEAD` feeds, and records each as
polled with its next check one `--interval` later. Feeds start spread evenly over the first
interval, as a daemon that has run for a while has them.

Printed: polls/s the replicas sustained (real time), claim and record latency (median and 95th
percentile, ms), how often each feed was claimed per interval (the goal: exactly once), the
database's work from pg_stat_database (transactions, rows fetched and updated per poll), and
EXPLAIN ANALYZE of the feed claim with the whole table in place and of the outbox claim with
`--delivered` delivered rows stored. A fresh database is made on the server at
$MONITOR_TEST_POSTGRESQL (default postgresql://127.0.0.1:5432/test) and dropped after.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from monitor.runtime.scheduler import CLAIM_AHEAD
from monitor.store import Store
from monitor.store.outbox.claims import _due
from monitor.store.store import PollRecord
from monitor.store.tables import feeds

ADMIN = os.environ.get("MONITOR_TEST_POSTGRESQL", "postgresql+psycopg://127.0.0.1:5432/test")
LEASE = timedelta(minutes=5)
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass
class Replica:
    name: str
    store: Store
    claims: list[float] = field(default_factory=list)  # seconds per claim
    records: list[float] = field(default_factory=list)  # seconds per record_polls batch
    polled: dict[int, list[int]] = field(default_factory=dict)  # feed -> seconds it was polled

    def step(self, now: datetime, interval: timedelta, second: int) -> int:
        """Claim and poll what is due now; a full claim is followed by another at once, as
        the scheduler claims again as soon as it has room (polls here take no time)."""
        polled = 0
        while True:
            count = self._claim_and_poll(now, interval, second)
            polled += count
            if count < CLAIM_AHEAD:
                return polled

    def _claim_and_poll(self, now: datetime, interval: timedelta, second: int) -> int:
        started = time.perf_counter()
        due = self.store.claim_feeds(now, LEASE, limit=CLAIM_AHEAD, owner=self.name)
        self.claims.append(time.perf_counter() - started)
        if not due:
            return 0
        polls = [
            PollRecord(
                feed.id,
                now,
                next_check_at=now + interval,
                etag='"same"',
                last_modified=None,
                title=None,
                status=304,
                owner=self.name,
            )
            for feed in due
        ]
        started = time.perf_counter()
        self.store.record_polls(polls)
        self.records.append(time.perf_counter() - started)
        for feed in due:
            self.polled.setdefault(feed.id, []).append(second)
        return len(due)


def _url(database: str) -> str:
    return sa.engine.make_url(ADMIN).set(database=database).render_as_string(hide_password=False)


def _admin() -> sa.Engine:
    return sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")


def _seed_feeds(engine: sa.Engine, count: int, interval: timedelta) -> None:
    spacing = interval / count
    rows = [
        {
            "url": f"https://feeds{i % 997}.example.org/{i}.xml",
            "next_check_at": T0 + spacing * i,
            "error_count": 0,
            "active": True,
            "created_at": T0,
        }
        for i in range(count)
    ]
    with engine.begin() as db:
        for start in range(0, count, 10_000):
            db.execute(sa.insert(feeds), rows[start : start + 10_000])
        db.execute(sa.text("ANALYZE feeds"))


def _seed_delivered(engine: sa.Engine, count: int) -> None:
    """Delivered outbox rows (feed events: no alert row needed) and a few due ones."""
    insert = sa.text(
        "INSERT INTO deliveries (alert_id, webhook, state, attempts, next_attempt_at, "
        "created_at, delivered_at, event, message_id) "
        "SELECT NULL, 'news', 'delivered', 1, NULL, :t0, :t0, 'feed.unhealthy', "
        "'evt_' || g FROM generate_series(1, :count) AS g"
    )
    due = sa.text(
        "INSERT INTO deliveries (alert_id, webhook, state, attempts, next_attempt_at, "
        "created_at, event, message_id) "
        "SELECT NULL, 'news', 'pending', 0, :t0, :t0, 'feed.unhealthy', 'due_' || g "
        "FROM generate_series(1, 50) AS g"
    )
    with engine.begin() as db:
        db.execute(insert, {"t0": T0, "count": count})
        db.execute(due, {"t0": T0})
        db.execute(sa.text("ANALYZE deliveries"))


def _counters(engine: sa.Engine, database: str) -> dict[str, int]:
    query = sa.text(
        "SELECT xact_commit, tup_fetched, tup_returned, tup_updated FROM pg_stat_database "
        "WHERE datname = :name"
    )
    with engine.connect() as db:
        row = db.execute(query, {"name": database}).one()
    return dict(row._mapping)


def _explain(engine: sa.Engine, statement: sa.Select[tuple[int]]) -> str:
    compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.begin() as db:
        lines = db.execute(sa.text(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {compiled}"))
        return "\n".join(f"    {line[0]}" for line in lines)


def _vacuum(engine: sa.Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
        db.execute(sa.text("VACUUM feeds"))


def _dead_rows(engine: sa.Engine) -> str:
    query = sa.text(
        "SELECT n_live_tup, n_dead_tup, autovacuum_count, vacuum_count "
        "FROM pg_stat_user_tables WHERE relname = 'feeds'"
    )
    with engine.connect() as db:
        live, dead, auto, manual = db.execute(query).one()
    return f"{live:,} live rows, {dead:,} dead; vacuumed {manual} times, by autovacuum {auto}"


def _feed_claim(now: datetime) -> sa.Select[tuple[int]]:
    """The select of Store.claim_feeds (without its FOR UPDATE, which EXPLAIN ANALYZE would
    take on every row it returns)."""
    return (
        sa.select(feeds.c.id)
        .where(
            feeds.c.active,
            feeds.c.gone_at.is_(None),
            sa.or_(feeds.c.lease_until.is_(None), feeds.c.lease_until <= now),
            feeds.c.next_check_at <= now,
        )
        .order_by(feeds.c.next_check_at)
        .limit(CLAIM_AHEAD)
    )


def _ms(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000


def _simulate(
    replicas: list[Replica], args: argparse.Namespace, engine: sa.Engine
) -> tuple[int, float]:
    """Every replica steps through the simulated seconds together; polls made, real seconds.
    Every `--vacuum-every` simulated seconds the feeds table is vacuumed (counted in the real
    time), as autovacuum would on a server that runs it."""
    interval = timedelta(seconds=args.interval)
    polls = 0
    wall = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(replicas)) as pool:
        for second in range(args.interval * args.intervals):
            now = T0 + timedelta(seconds=second)
            steps = [pool.submit(r.step, now, interval, second) for r in replicas]
            polls += sum(step.result() for step in steps)
            if args.vacuum_every and second % args.vacuum_every == args.vacuum_every - 1:
                _vacuum(engine)
    return polls, time.perf_counter() - wall


def _report_polls(
    replicas: list[Replica], args: argparse.Namespace, polls: int, wall: float
) -> None:
    seconds: dict[int, list[int]] = {}
    for replica in replicas:
        for feed_id, polled in replica.polled.items():
            seconds.setdefault(feed_id, []).extend(polled)
    times = dict(sorted(Counter(len(s) for s in seconds.values()).items()))
    gaps = Counter(b - a for s in seconds.values() for a, b in itertools.pairwise(sorted(s)))
    missing = args.feeds - len(seconds)
    claims = [c for r in replicas for c in r.claims]
    records = [c for r in replicas for c in r.records]
    steps = args.interval * args.intervals
    needed = args.feeds / args.interval
    print(
        f"{len(replicas)} replicas, {args.feeds:,} feeds every {args.interval} s, "
        f"{args.intervals} intervals simulated ({steps:,} steps) in {wall:.1f} s real"
    )
    print(f"  polls: {polls:,} ({polls / wall:,.0f}/s real; the schedule needs {needed:,.0f}/s)")
    print(f"  polls per feed (polls: feeds): {times}; never polled: {missing}")
    print(f"  seconds between a feed's polls (gap: count): {dict(sorted(gaps.items()))}")
    print(
        f"  claim: median {_ms(claims, 0.5):.1f} ms, p95 {_ms(claims, 0.95):.1f} ms "
        f"({len(claims):,} claims); record: median {_ms(records, 0.5):.1f} ms, "
        f"p95 {_ms(records, 0.95):.1f} ms a batch"
    )
    for replica in replicas:
        print(f"  {replica.name}: {sum(len(v) for v in replica.polled.values()):,} polls")


def _outbox(store: Store, count: int) -> None:
    started = time.perf_counter()
    _seed_delivered(store.engine, count)
    print(f"seeded {count:,} delivered rows in {time.perf_counter() - started:.1f} s")
    print(f"EXPLAIN ANALYZE outbox claim ({count:,} delivered rows, 50 due):")
    print(_explain(store.engine, _due("news", T0, T0, False).limit(8)))
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        claimed = store.outbox.claim_deliveries(T0, LEASE, {"news": 8}, owner="bench")
        timings.append(time.perf_counter() - started)
        store.outbox.requeue(T0, alert_ids=[d.message_id for d in claimed if d.message_id])
    median, p95 = _ms(timings, 0.5), _ms(timings, 0.95)
    print(f"  outbox claim of 8: median {median:.1f} ms, p95 {p95:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=100_000)
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--interval", type=int, default=600, help="seconds (default 600)")
    parser.add_argument("--intervals", type=int, default=3, help="simulated intervals to run")
    parser.add_argument("--delivered", type=int, default=1_000_000)
    parser.add_argument(
        "--vacuum-every",
        type=int,
        default=60,
        metavar="SECONDS",
        help="VACUUM the feeds table every this many simulated seconds (default 60, autovacuum's "
        "default naptime), for a server where autovacuum is off, as on the test server here; "
        "0: never",
    )
    args = parser.parse_args()
    database = f"monitor_bench_sched_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    with admin.connect() as db:
        db.execute(sa.text(f'CREATE DATABASE "{database}"'))
    try:
        first = Store.open(_url(database))
        started = time.perf_counter()
        _seed_feeds(first.engine, args.feeds, timedelta(seconds=args.interval))
        print(f"seeded {args.feeds:,} feeds in {time.perf_counter() - started:.1f} s")
        replicas = [
            Replica(f"replica-{i}", Store.open(_url(database))) for i in range(args.replicas)
        ]
        before = _counters(admin, database)
        polls, wall = _simulate(replicas, args, first.engine)
        after = _counters(admin, database)
        _report_polls(replicas, args, polls, wall)
        shown = [
            f"{k} {after[k] - before[k]:,} ({(after[k] - before[k]) / max(polls, 1):.1f}/poll)"
            for k in after
        ]
        print("  database: " + ", ".join(shown))
        now = T0 + timedelta(seconds=args.interval * args.intervals)
        due = args.feeds / args.interval
        print(f"EXPLAIN ANALYZE feed claim ({args.feeds:,} feeds, {due:.0f} due a second):")
        print(_explain(first.engine, _feed_claim(now)))
        print(f"  feeds: {_dead_rows(first.engine)}")
        _vacuum(first.engine)
        print("the same, just after VACUUM feeds:")
        print(_explain(first.engine, _feed_claim(now)))
        _outbox(first, args.delivered)
        for replica in replicas:
            replica.store.close()
        first.close()
    finally:
        with admin.connect() as db:
            db.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
