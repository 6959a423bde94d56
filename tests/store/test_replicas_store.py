"""Replicas at the store level, over SQLite and PostgreSQL: concurrent claims, heartbeats, dead
replicas' claims freed, migrations raced. Real threads with their own connections; no mocks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from monitor import __version__
from monitor.cli.status import status_lines
from monitor.models import Item
from monitor.store import NewAlert, SeenItem, Store
from monitor.store.engine import MIGRATIONS
from monitor.store.replicas import (
    MISSED,
    Activity,
    Heartbeat,
    Released,
    Replicas,
    heartbeat_interval,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
BEAT = timedelta(seconds=10)
DEAD = NOW + BEAT * MISSED + timedelta(seconds=1)  # when a replica that beat at NOW is dead


@pytest.fixture
def store(storage_url: str) -> Iterator[Store]:
    opened = Store.open(storage_url)
    yield opened
    opened.close()


def _feeds(store: Store, count: int) -> None:
    store.sync_feeds([(f"http://farm/{i}.xml", None) for i in range(count)], NOW)


def _deliveries(store: Store, count: int) -> None:
    """`count` pending deliveries to `hook`, recorded as a poll of one feed would."""
    _feeds(store, 1)
    (feed,) = store.claim_feeds(NOW, LEASE)
    seen = [
        SeenItem(
            Item(title=f"t{i}", guid=f"g{i}"),
            (NewAlert(f"alrt_{i}", "rule-a", "high", 90.0, {"data": {"id": i}}, ("hook",)),),
        )
        for i in range(count)
    ]
    store.record_poll(
        feed.id, NOW, next_check_at=NOW + LEASE, etag=None, last_modified=None, title="F", seen=seen
    )


def _race(claim: Callable[[], list[int]], workers: int = 2) -> list[list[int]]:
    """Run `claim` repeatedly in `workers` threads started together, until it finds nothing."""
    start = threading.Barrier(workers)

    def worker() -> list[int]:
        start.wait()
        taken: list[int] = []
        while batch := claim():
            taken += batch
        return taken

    with ThreadPoolExecutor(workers) as pool:
        return [f.result() for f in [pool.submit(worker) for _ in range(workers)]]


def test_concurrent_feed_claims_are_disjoint_and_cover_every_due_feed(store: Store) -> None:
    _feeds(store, 200)
    first, second = _race(lambda: [f.id for f in store.claim_feeds(NOW, LEASE, limit=7)])
    assert not set(first) & set(second)
    assert len(first) + len(second) == 200
    assert sorted(first + second) == sorted(f.id for f in store.feeds())


def test_concurrent_delivery_claims_are_disjoint(store: Store) -> None:
    _deliveries(store, 120)
    first, second = _race(
        lambda: [d.id for d in store.outbox.claim_deliveries(NOW, LEASE, {"hook": 5})]
    )
    assert not set(first) & set(second)
    assert len(first) + len(second) == 120


def test_a_heartbeat_registers_reports_and_leaves_cleanly(store: Store) -> None:
    _feeds(store, 3)
    replicas = Replicas(store.engine)
    replicas.register("replica-a", NOW, BEAT)
    store.claim_feeds(NOW, LEASE, limit=2, owner="replica-a")
    assert replicas.beat("replica-a", NOW + BEAT, BEAT, Activity(2, 5, 1))
    (row,) = replicas.report(NOW + BEAT)
    assert row.alive(NOW + BEAT)
    assert (row.in_flight, row.polls, row.deliveries, row.feeds_held) == (2, 5, 1, 2)
    assert row.expires_at == NOW + BEAT + BEAT * MISSED
    queue = replicas.queue(NOW + BEAT)
    assert (queue.feeds, queue.feeds_due, queue.feeds_leased) == (3, 3, 2)

    replicas.remove("replica-a", NOW + BEAT)  # a clean stop frees what it held
    assert replicas.report(NOW + BEAT) == []
    assert len(store.claim_feeds(NOW + BEAT, LEASE)) == 3


def test_a_dead_replicas_claims_are_freed_long_before_its_leases_end(store: Store) -> None:
    _deliveries(store, 4)  # from a poll of farm/0, not due again for a while
    _feeds(store, 6)  # so five feeds are due
    dead, live = Heartbeat(store.engine, "replica-dead", BEAT), Heartbeat(store.engine, "live")
    dead.start(NOW)
    live.start(NOW)
    assert len(store.claim_feeds(NOW, LEASE, owner="replica-dead")) == 5
    assert len(store.outbox.claim_deliveries(NOW, LEASE, {"hook": 100}, owner="replica-dead")) == 4
    # `dead` is SIGKILLed here: no more heartbeats; `live` goes on beating
    assert live.beat(NOW + BEAT * MISSED, Activity()) == []  # not dead yet
    assert store.claim_feeds(DEAD, LEASE) == []  # its leases run for minutes

    (freed,) = live.beat(DEAD, Activity())
    assert freed == Released("replica-dead", freed.host, freed.pid, 5, 4)
    assert len(store.claim_feeds(DEAD, LEASE, owner="live")) == 5
    assert len(store.outbox.claim_deliveries(DEAD, LEASE, {"hook": 100}, owner="live")) == 4
    assert live.beat(DEAD + BEAT, Activity()) == []  # freed once; the live one's claims stay
    states = {row.id: row.alive(DEAD) for row in Replicas(store.engine).report(DEAD)}
    assert states == {"live": True, "replica-dead": False}


def test_a_live_replicas_claims_are_never_freed(store: Store) -> None:
    _feeds(store, 2)
    a, b = Heartbeat(store.engine, "a", BEAT), Heartbeat(store.engine, "b", BEAT)
    a.start(NOW)
    b.start(NOW)
    store.claim_feeds(NOW, LEASE, owner="a")
    for step in range(1, 10):
        a.beat(NOW + BEAT * step, Activity())
        assert b.beat(NOW + BEAT * step, Activity()) == []
    assert store.claim_feeds(NOW + BEAT * 9, LEASE) == []


def test_a_replica_taken_for_dead_comes_back_with_its_next_heartbeat(store: Store) -> None:
    beat = Heartbeat(store.engine, "slow", BEAT)
    beat.start(NOW)
    Replicas(store.engine).prune(NOW + timedelta(days=2))  # e.g. stalled for days, pruned
    assert Replicas(store.engine).report(NOW) == []
    beat.beat(NOW + timedelta(days=2), Activity(polls=7))
    (row,) = Replicas(store.engine).report(NOW + timedelta(days=2))
    assert (row.id, row.polls) == ("slow", 7)


def test_a_replica_that_stalled_past_its_expiry_learns_it_was_taken_for_dead(
    store: Store,
) -> None:
    replicas = Replicas(store.engine)
    replicas.register("stalled", NOW, BEAT)
    assert replicas.beat("stalled", NOW + BEAT, BEAT, Activity())  # on time
    late = NOW + BEAT + BEAT * MISSED + timedelta(seconds=1)  # e.g. a paused VM
    assert not replicas.beat("stalled", late, BEAT, Activity())  # its row was still there
    assert replicas.beat("stalled", late + BEAT, BEAT, Activity())  # alive again


def test_dead_replicas_are_pruned_after_a_day(store: Store) -> None:
    replicas = Replicas(store.engine)
    replicas.register("old", NOW, BEAT)
    replicas.register("recent", NOW + timedelta(hours=12), BEAT)
    assert replicas.prune(NOW + timedelta(days=1, minutes=1)) == 1
    assert [row.id for row in replicas.report(NOW)] == ["recent"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, timedelta(seconds=10)), ("2s", timedelta(seconds=2)), ("1m", timedelta(minutes=1))],
)
def test_heartbeat_interval_from_the_environment(value: str | None, expected: timedelta) -> None:
    environ = {} if value is None else {"MONITOR_HEARTBEAT": value}
    assert heartbeat_interval(environ) == expected


@pytest.mark.parametrize("value", ["0s", "10m", "soon"])
def test_a_bad_heartbeat_interval_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"MONITOR_HEARTBEAT|invalid duration"):
        heartbeat_interval({"MONITOR_HEARTBEAT": value})


def test_replicas_starting_at_once_migrate_one_at_a_time(postgresql_url: str) -> None:
    """Four replicas open a fresh PostgreSQL database together: one migrates, the others wait
    on the advisory lock and find the schema current."""
    start = threading.Barrier(4)

    def open_store() -> str:
        start.wait()
        store = Store.open(postgresql_url)
        with store.engine.connect() as db:
            version = str(db.scalar(sa.text("SELECT version_num FROM alembic_version")))
            tables = set(sa.inspect(db).get_table_names())
        store.close()
        assert "replicas" in tables
        return version

    with ThreadPoolExecutor(4) as pool:
        versions = [f.result() for f in [pool.submit(open_store) for _ in range(4)]]
    assert versions == [ScriptDirectory(str(MIGRATIONS)).get_current_head()] * 4


@pytest.mark.parametrize("order", ["same", "reversed"])
def test_replicas_starting_together_add_the_configured_feeds_once(
    storage_url: str, order: str
) -> None:
    """Both sync the same 3,000 feeds at once into an empty store: no unique-key error, and no
    deadlock when their configs list the feeds in opposite orders (PostgreSQL: each would wait
    on rows the other inserted first, were the syncs not taken one at a time)."""
    stores = [Store.open(storage_url) for _ in range(2)]
    configured = [(f"http://farm/{i}.xml", f"Feed {i}") for i in range(3000)]
    orders = [configured, configured if order == "same" else configured[::-1]]
    start = threading.Barrier(2)

    def sync(store: Store, feeds: list[tuple[str, str | None]]) -> None:
        start.wait()
        store.sync_feeds(feeds, NOW)

    try:
        with ThreadPoolExecutor(2) as pool:
            syncs = [pool.submit(sync, *pair) for pair in zip(stores, orders, strict=True)]
            for done in syncs:
                done.result()
        assert sorted(f.url for f in stores[0].feeds()) == sorted(url for url, _ in configured)
    finally:
        for store in stores:
            store.close()


def test_status_lines_show_live_and_dead_replicas_and_the_queue(store: Store) -> None:
    _feeds(store, 4)
    heartbeat = Heartbeat(store.engine, "host-a|boot|ns|42|7", BEAT)
    heartbeat.start(NOW - timedelta(hours=2))
    Replicas(store.engine).register("host-b|boot|ns|43|9", NOW - timedelta(hours=1), BEAT)
    store.claim_feeds(NOW, LEASE, limit=3, owner="host-a|boot|ns|42|7")
    heartbeat.beat(NOW - timedelta(seconds=4), Activity(in_flight=3, polls=120, deliveries=6))
    replicas = Replicas(store.engine)
    lines = status_lines(replicas.report(NOW), replicas.queue(NOW), NOW)
    assert lines[0] == "replicas: 1 live, 1 dead"
    header, live, dead = lines[1:4]
    assert header.split() == [
        *("STATE", "HOST", "PID", "VERSION", "UP", "HEARTBEAT", "FEEDS", "HELD"),
        *("DELIVERIES", "HELD", "IN", "FLIGHT", "POLLS", "DELIVERED"),
    ]
    assert live.split()[:1] + live.split()[3:] == [
        *("live", f"v{__version__}", "2h", "4s", "ago"),
        *("3", "0", "3", "120", "6"),  # feeds and deliveries held, in flight, polls, delivered
    ]
    assert (
        dead.split()[:1] + dead.split()[3:]
        == ["dead", f"v{__version__}", "-", "1h", "ago"] + ["0"] * 2 + ["-"] * 3
    )
    assert lines[4:] == [
        "feeds: 4 active, 4 due now, 3 leased",
        "outbox: 0 pending (0 due now), 0 failed",
    ]


def test_a_large_sync_gives_postgresql_statistics_for_the_claim_query(postgresql_url: str) -> None:
    """Without statistics (autovacuum off, or not yet come) every claim scans and sorts all
    feeds; after a sync that adds many, the table is analyzed at once."""
    store = Store.open(postgresql_url)
    reltuples = "SELECT reltuples FROM pg_class WHERE relname = 'feeds'"
    try:
        store.sync_feeds([(f"http://farm/{i}.xml", None) for i in range(50)], NOW)
        with store.engine.connect() as db:
            assert db.scalar(sa.text(reltuples)) == -1  # a few feeds: left to autovacuum
        store.sync_feeds([(f"http://farm/{i}.xml", None) for i in range(250)], NOW)
        with store.engine.connect() as db:
            assert db.scalar(sa.text(reltuples)) == 250
    finally:
        store.close()
