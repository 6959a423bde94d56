"""Two real `monitor run` daemons on one real PostgreSQL database over 40 local feeds.

Each test gets a fresh database (the `postgresql_url` fixture); without PostgreSQL the tests are
skipped with the reason (failed under MONITOR_REQUIRE_POSTGRESQL=1). Gates on the feed server and
the webhook receiver hold requests open, so "mid-cycle" is a state the test waits for, not a
moment it guesses with a sleep. Heartbeats are 1 s (MONITOR_HEARTBEAT) so a killed replica is
dead after 3 s and the tests stay short; the default is 10 s.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from monitor.store.engine import normalize_url
from tests.conftest import REPO, run_cli
from tests.ops.daemon import Daemon, edit_config
from tests.support.pipeline import write_config
from tests.support.receiver import SECRET, SignedReceiver
from tests.support.servers import LocalServer, RecordedRequest, Reply

FEEDS = 40
ALERTS_PER_FEED = 2
INTERVAL = 2.0  # seconds between polls of a feed
ENV = {"MONITOR_HEARTBEAT": "1s"}
GATE_TIMEOUT = 30.0


def _document(index: int) -> bytes:
    now = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    items = [
        (f"f{index}-a", f"Kremlin envoy meets Cuban minister in Havana, report {index}"),
        (f"f{index}-b", f"Treasury adds Cuban firms to the restricted list, report {index}"),
        (f"f{index}-c", f"Heavy rain floods Lima, report {index}"),
    ]
    entries = "".join(
        f"<item><title>{title}</title><guid>{guid}</guid><pubDate>{now}</pubDate>"
        f"<link>https://wire.example/{guid}</link></item>"
        for guid, title in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Wire {index}</title><link>https://wire.example/</link>{entries}</channel></rss>"
    ).encode()


@dataclass
class Farm:
    """40 feeds on one local server; every request's arrival time kept; a gate holds them."""

    server: LocalServer
    gate: threading.Event = field(default_factory=threading.Event)
    times: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for index in range(FEEDS):
            self.server.route(f"/feed/{index}.xml", self._handler(_document(index)))

    def _handler(self, body: bytes) -> Callable[[RecordedRequest], Reply]:
        def handle(request: RecordedRequest) -> Reply:
            with self._lock:
                self.times.setdefault(request.path, []).append(time.monotonic())
            self.gate.wait(GATE_TIMEOUT)
            return Reply(200, body, {"Content-Type": "application/rss+xml"})

        return handle

    def urls(self) -> list[dict[str, object]]:
        return [{"url": self.server.url(f"/feed/{i}.xml")} for i in range(FEEDS)]

    def polls(self) -> dict[str, int]:
        with self._lock:
            return {path: len(times) for path, times in self.times.items()}


class GatedReceiver(SignedReceiver):
    """The deduplicating receiver of tests.support.receiver, holding each request at a gate."""

    def __init__(self, server: LocalServer) -> None:
        self.gate = threading.Event()
        super().__init__(server)

    def _handle(self, request: RecordedRequest) -> Reply:
        self.gate.wait(GATE_TIMEOUT)
        return super()._handle(request)

    def ids(self) -> Counter[str]:
        return Counter(delivery.webhook_id for delivery in self.deliveries)


@pytest.fixture
def farm() -> Iterator[Farm]:
    with LocalServer(poll_interval=0.05) as server:
        farm = Farm(server)
        yield farm
        farm.gate.set()


@pytest.fixture
def hooks() -> Iterator[GatedReceiver]:
    with LocalServer(poll_interval=0.05) as server:
        receiver = GatedReceiver(server)
        yield receiver
        receiver.gate.set()


def _config(tmp_path: Path, url: str, farm: Farm, receiver: GatedReceiver) -> Path:
    config = write_config(
        tmp_path / "config",
        feeds=farm.urls(),
        webhooks=[{"name": "hook", "url": receiver.url, "secret": SECRET, "retry": ["1s"] * 5}],
        defaults={"interval": f"{INTERVAL:g}s", "backfill": "all"},
        storage=url,
    )
    # every feed is on this one host: let a replica poll as many at once as it starts, so a
    # poll's schedule (which counts from its start) is not shortened by a wait for the host
    edit_config(config, lambda document: document.update(fetch={"per_host": 20}))
    return config


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` (a cheap look at servers or the database) until true."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.05)


class Database:
    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(normalize_url(url))

    def rows(self, query: str) -> list[sa.Row[Any]]:
        try:
            with self.engine.connect() as db:
                return list(db.execute(sa.text(query)))
        except sa.exc.ProgrammingError:  # not migrated yet
            return []

    def leases(self) -> dict[str, int]:
        query = (
            "SELECT claimed_by, count(*) FROM feeds WHERE lease_until > now() AT TIME ZONE 'UTC' "
            "GROUP BY claimed_by"
        )
        return {str(owner): int(count) for owner, count in map(tuple, self.rows(query))}

    def alert_ids(self) -> set[str]:
        return {str(row[0]) for row in self.rows("SELECT id FROM alerts")}

    def delivered(self) -> int:
        return len(self.rows("SELECT id FROM deliveries WHERE state = 'delivered'"))


@pytest.fixture
def database(postgresql_url: str) -> Iterator[Database]:
    database = Database(postgresql_url)
    yield database
    database.engine.dispose()


def _start_two(config: Path) -> tuple[Daemon, Daemon]:
    """Two replicas started at once (each start waits for its start line); if one cannot
    start, the other is stopped before the error is raised."""
    with ThreadPoolExecutor(2) as pool:
        starts = [pool.submit(Daemon.start, config, env=ENV) for _ in range(2)]
    problems = [start.exception() for start in starts]
    if any(problems):
        for start, problem in zip(starts, problems, strict=True):
            if problem is None:
                start.result().kill()
        raise next(p for p in problems if p is not None)
    return starts[0].result(), starts[1].result()


def test_two_replicas_share_the_feeds_poll_each_once_per_interval_and_alert_once(
    tmp_path: Path, postgresql_url: str, database: Database, farm: Farm, hooks: GatedReceiver
) -> None:
    config = _config(tmp_path, postgresql_url, farm, hooks)
    hooks.gate.set()
    first, second = _start_two(config)
    try:
        # the feed server holds every poll: each replica claims what it can start, and no more
        _wait(lambda: sum(database.leases().values()) == FEEDS, 20, "every feed claimed")
        leases = database.leases()
        assert len(leases) == 2, leases  # both replicas hold feeds, none holds one twice
        status = run_cli("status", "--json", "--config", str(config), cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert [r["state"] for r in report["replicas"]] == ["live", "live"]
        assert sum(r["feeds_held"] for r in report["replicas"]) == FEEDS

        farm.gate.set()
        expected = FEEDS * ALERTS_PER_FEED
        _wait(lambda: len(hooks.deliveries) >= expected, 30, f"{expected} alerts delivered")
        _wait(lambda: min(farm.polls().values()) >= 2, 30, "two polls of every feed")
    finally:
        codes = [first.stop()[0], second.stop()[0]]
    assert codes == [0, 0]

    assert len(farm.polls()) == FEEDS
    # between them, once per interval: a poll counts its interval from its start, which may
    # be a little before its request arrives here on a loaded machine; a double poll is ~0 s
    for path, times in farm.times.items():
        gaps = [later - earlier for earlier, later in pairwise(times)]
        assert min(gaps) > INTERVAL / 2, (path, gaps)
    ids = hooks.ids()
    assert max(ids.values()) == 1  # each alert delivered once
    assert set(ids) == database.alert_ids()
    assert len(ids) == FEEDS * ALERTS_PER_FEED
    assert all(delivery.valid_signature for delivery in hooks.deliveries)
    # a clean stop frees what each held and removes its heartbeat row
    assert database.rows("SELECT id FROM replicas") == []
    assert database.leases() == {}


def test_a_replica_killed_mid_cycle_has_its_feeds_and_deliveries_taken_over(
    tmp_path: Path, postgresql_url: str, database: Database, farm: Farm, hooks: GatedReceiver
) -> None:
    config = _config(tmp_path, postgresql_url, farm, hooks)
    doomed = Daemon.start(config, env=ENV)
    survivor: Daemon | None = None
    try:
        # half the feeds answer at once (their alerts reach the receiver and wait there), the
        # other half are held: `doomed` is mid-cycle with polls and deliveries in flight
        for index in range(FEEDS // 2):
            farm.server.route(f"/feed/{index}.xml", _open(farm, index))
        _wait(lambda: len(hooks.attempts()) >= 1, 20, "a delivery in flight")
        _wait(lambda: sum(database.leases().values()) > 0, 20, "feeds held by the doomed one")
        survivor = Daemon.start(config, env=ENV)
        in_flight = len(hooks.attempts())  # deliveries the doomed one has sent, unanswered
        doomed.kill()  # SIGKILL: no goodbye, its leases run for minutes
        killed = time.monotonic()
        farm.gate.set()
        hooks.gate.set()

        expected = FEEDS * ALERTS_PER_FEED
        _wait(lambda: len(hooks.ids()) >= expected, 60, f"{expected} distinct alerts delivered")
        _wait(lambda: database.delivered() >= expected, 20, "every delivery recorded")
        taken_over_in = time.monotonic() - killed
        line = survivor.wait_for_log("stopped sending heartbeats", timeout=5)
        assert "freed its claims" in line
        status = run_cli("status", "--json", "--config", str(config), cwd=tmp_path)
        states = Counter(r["state"] for r in json.loads(status.stdout)["replicas"])
        assert (status.returncode, states) == (0, Counter(live=1, dead=1))
    finally:
        doomed.kill()
        if survivor is not None:
            assert survivor.stop()[0] == 0

    assert taken_over_in < 60
    assert min(farm.polls().values()) >= 1
    assert len(farm.polls()) == FEEDS
    ids = hooks.ids()
    assert set(ids) == database.alert_ids()
    assert len(ids) == expected
    # duplicates, each under its alert's webhook-id, only of what was in flight at the kill
    assert sum(count - 1 for count in ids.values()) <= in_flight
    assert all(delivery.valid_signature for delivery in hooks.deliveries)


def _open(farm: Farm, index: int) -> Callable[[RecordedRequest], Reply]:
    body = _document(index)

    def handle(request: RecordedRequest) -> Reply:
        with farm._lock:
            farm.times.setdefault(request.path, []).append(time.monotonic())
        return Reply(200, body, {"Content-Type": "application/rss+xml"})

    return handle


def test_the_compose_replicas_profile_shares_postgresql_and_publishes_no_port() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    replica, daemon = services["replica"], services["monitor"]
    assert replica["profiles"] == ["replicas"]
    assert replica["environment"]["MONITOR_STORAGE"].startswith("${MONITOR_STORAGE:-postgresql://")
    assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "ports" not in replica  # several containers cannot share one host port
    assert replica["command"] == daemon["command"]
    assert replica["volumes"] == daemon["volumes"][:2]  # the same config and rules, no data


def test_a_bad_heartbeat_setting_stops_the_daemon_at_start_with_the_reason(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "config", feeds=[])
    result = run_cli("run", "--config", str(config), cwd=tmp_path, env={"MONITOR_HEARTBEAT": "9m"})
    assert result.returncode == 1
    assert "cannot start: MONITOR_HEARTBEAT=9m: must be between 1s and 5m" in result.stderr
