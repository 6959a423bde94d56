"""Replicas: one row per running daemon, kept alive by its heartbeat; a dead one's claims freed.

Several `monitor run` daemons may share one PostgreSQL database. Each registers a row in
`replicas` under its claim owner (monitor.store.owners: host, boot, pid namespace, pid, start
time) and refreshes it every heartbeat (10 s; `MONITOR_HEARTBEAT` changes it), writing
`expires_at` = now + 3 heartbeats and what it is doing. Feed and delivery claims record that same
owner in `claimed_by`.

A replica whose `expires_at` has passed is dead: at each heartbeat every live replica frees the
claims a dead one still holds (feeds and pending deliveries whose lease has not ended), so its
work is taken over about 3-4 heartbeats after its last one (40 s at most with the default), not
when the leases (5 min for feeds, at least 2 min for deliveries) run out. Claimants without a
heartbeat (`run --once`) are checked as processes instead (`release_dead_processes`): one on
this machine that provably died (monitor.store.owners) has its feed leases ended by the next
`run --once` or the next heartbeat of a daemon here; elsewhere, leases stay the backstop. A
clean stop deletes the row and frees whatever the replica still holds; rows of dead replicas
are shown by `monitor status` and pruned after a day.

Clocks: `expires_at` is written by one machine and read by others, as leases already are, so
replicas need clocks kept in step (NTP); a skew of a few seconds only shifts the takeover.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor import __version__
from monitor.durations import parse_duration
from monitor.store import owners as claimants
from monitor.store.engine import begin
from monitor.store.outbox import FAILED, PENDING
from monitor.store.tables import deliveries, feeds, replicas

log = logging.getLogger(__name__)
HEARTBEAT = timedelta(seconds=10)
MISSED = 3  # heartbeats a replica may miss before it counts as dead
PRUNE_AFTER = timedelta(days=1)  # rows of dead replicas are kept this long, for `monitor status`
HEARTBEAT_ENV = "MONITOR_HEARTBEAT"


def heartbeat_interval(environ: Mapping[str, str] | None = None) -> timedelta:
    """The heartbeat: `MONITOR_HEARTBEAT` (a duration, 1s to 5m) or 10 s; ValueError if invalid."""
    text = (os.environ if environ is None else environ).get(HEARTBEAT_ENV, "").strip()
    if not text:
        return HEARTBEAT
    value = parse_duration(text)
    if not timedelta(seconds=1) <= value <= timedelta(minutes=5):
        raise ValueError(f"{HEARTBEAT_ENV}={text}: must be between 1s and 5m")
    return value


@dataclass(frozen=True, slots=True)
class Activity:
    """What a replica reports at each heartbeat."""

    in_flight: int = 0
    polls: int = 0
    deliveries: int = 0


@dataclass(frozen=True, slots=True)
class Released:
    """Claims freed because their replica's heartbeat stopped."""

    replica_id: str
    host: str
    pid: int
    feeds: int
    deliveries: int


@dataclass(frozen=True, slots=True)
class ReplicaRow:
    id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    in_flight: int
    polls: int
    deliveries: int
    feeds_held: int
    deliveries_held: int

    def alive(self, now: datetime) -> bool:
        return self.expires_at >= now


@dataclass(frozen=True, slots=True)
class Queue:
    """The shared work: feeds active, due now and leased; deliveries pending, due now, failed."""

    feeds: int
    feeds_due: int
    feeds_leased: int
    pending: int
    pending_due: int
    failed: int


class Replicas:
    """The `replicas` table and the claims that hang on it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(self, replica_id: str, now: datetime, interval: timedelta) -> None:
        """Announce a replica (again, after a restart with the same id: its old row goes)."""
        with begin(self.engine) as db:
            db.execute(sa.delete(replicas).where(replicas.c.id == replica_id))
            db.execute(
                sa.insert(replicas).values(
                    id=replica_id,
                    host=socket.gethostname()[:255],
                    pid=os.getpid(),
                    version=__version__,
                    started_at=now,
                    last_seen_at=now,
                    expires_at=now + interval * MISSED,
                    in_flight=0,
                    polls=0,
                    deliveries=0,
                )
            )

    def beat(self, replica_id: str, now: datetime, interval: timedelta, activity: Activity) -> bool:
        """Refresh a replica's row; False when it had been taken for dead (its row expired, or
        gone: pruned or removed, and re-added), so its claims may have been taken over."""
        values = {
            "last_seen_at": now,
            "expires_at": now + interval * MISSED,
            "in_flight": activity.in_flight,
            "polls": activity.polls,
            "deliveries": activity.deliveries,
        }
        with begin(self.engine) as db:
            alive = db.execute(
                sa.update(replicas)
                .where(replicas.c.id == replica_id, replicas.c.expires_at >= now)
                .values(**values)
            )
            if alive.rowcount:
                return True
            expired = db.execute(
                sa.update(replicas).where(replicas.c.id == replica_id).values(**values)
            )
            if expired.rowcount:
                return False
        self.register(replica_id, now, interval)
        self.beat(replica_id, now, interval, activity)
        return False

    def remove(self, replica_id: str, now: datetime) -> None:
        """A clean stop: free what the replica still holds and delete its row."""
        with begin(self.engine) as db:
            _free(db, [replica_id], now)
            db.execute(sa.delete(replicas).where(replicas.c.id == replica_id))

    def release_dead(self, now: datetime) -> list[Released]:
        """Free the claims of replicas whose heartbeat stopped; one notice per replica freed."""
        with begin(self.engine) as db:
            dead = {
                row.id: row
                for row in db.execute(
                    sa.select(replicas.c.id, replicas.c.host, replicas.c.pid).where(
                        replicas.c.expires_at < now
                    )
                )
            }
            if not dead:
                return []
            freed = _free(db, _holding(db, list(dead), now), now)
        return [
            Released(owner, dead[owner].host, dead[owner].pid, *counts)
            for owner, counts in sorted(freed.items())
        ]

    def release_dead_processes(self, now: datetime) -> list[Released]:
        """End the feed leases of processes on this machine that provably died and have no
        heartbeat row: a `run --once` killed while polling. (Their deliveries are the
        dispatcher's to release, monitor.delivery.coordination.)"""
        with begin(self.engine) as db:
            # a daemon's claims end with its heartbeat row (`release_dead`), logged as such
            daemons = set(db.scalars(sa.select(replicas.c.id)))
            held = [owner for owner in _held(db, feeds, now) if owner not in daemons]
            dead = sorted(owner for owner in held if claimants.is_dead(owner))
            released = []
            for owner in dead:
                freed = db.execute(
                    sa.update(feeds)
                    .where(feeds.c.claimed_by == owner, feeds.c.lease_until >= now)
                    .values(lease_until=None)
                ).rowcount
                parsed = claimants.Owner.parse(owner)
                host, pid = (parsed.host, parsed.pid) if parsed else ("?", 0)
                released.append(Released(owner, host, pid, int(freed or 0), 0))
        return released

    def feeds_held_by_others(self, now: datetime, me: str) -> int:
        """Feeds whose lease another claimant than `me` holds now: skipped by this poll."""
        with self.engine.connect() as db:
            return sum(count for owner, count in _held(db, feeds, now).items() if owner != me)

    def prune(self, now: datetime, older_than: timedelta = PRUNE_AFTER) -> int:
        """Delete the rows of replicas dead for longer than `older_than`."""
        with begin(self.engine) as db:
            done = db.execute(sa.delete(replicas).where(replicas.c.expires_at < now - older_than))
            return int(done.rowcount or 0)

    def report(self, now: datetime) -> list[ReplicaRow]:
        """Every known replica, live first, with the feeds and deliveries it holds now."""
        with self.engine.connect() as db:
            feeds_held = _held(db, feeds, now)
            deliveries_held = _held(db, deliveries, now, deliveries.c.state == PENDING)
            rows = db.execute(sa.select(replicas).order_by(replicas.c.started_at, replicas.c.id))
            found = [
                ReplicaRow(
                    row.id,
                    row.host,
                    row.pid,
                    row.version,
                    row.started_at,
                    row.last_seen_at,
                    row.expires_at,
                    row.in_flight,
                    row.polls,
                    row.deliveries,
                    feeds_held.get(row.id, 0),
                    deliveries_held.get(row.id, 0),
                )
                for row in rows
            ]
        return sorted(found, key=lambda r: not r.alive(now))

    def queue(self, now: datetime) -> Queue:
        """Queue depth and due work, for `monitor status`."""
        with self.engine.connect() as db:
            feed_row = db.execute(
                sa.select(
                    sa.func.count(),
                    _count_where(feeds.c.next_check_at <= now, feeds.c.gone_at.is_(None)),
                    _count_where(feeds.c.lease_until >= now),
                ).where(feeds.c.active)
            ).one()
            outbox_row = db.execute(
                sa.select(
                    _count_where(deliveries.c.state == PENDING),
                    _count_where(
                        deliveries.c.state == PENDING, deliveries.c.next_attempt_at <= now
                    ),
                    _count_where(deliveries.c.state == FAILED),
                )
            ).one()
        return Queue(*(int(value or 0) for value in (*feed_row, *outbox_row)))


def _count_where(*conditions: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((sa.and_(*conditions), 1), else_=0)), 0)


def _held(
    db: sa.Connection, table: sa.Table, now: datetime, *where: sa.ColumnElement[bool]
) -> dict[str, int]:
    query = (
        sa.select(table.c.claimed_by, sa.func.count())
        .where(table.c.claimed_by.is_not(None), table.c.lease_until >= now, *where)
        .group_by(table.c.claimed_by)
    )
    return {str(owner): int(count) for owner, count in db.execute(query)}


def _holding(db: sa.Connection, owners: list[str], now: datetime) -> list[str]:
    """Those of `owners` holding a claim whose lease has not ended."""
    held = sa.union(
        sa.select(feeds.c.claimed_by).where(
            feeds.c.claimed_by.in_(owners), feeds.c.lease_until >= now
        ),
        sa.select(deliveries.c.claimed_by).where(
            deliveries.c.claimed_by.in_(owners),
            deliveries.c.state == PENDING,
            deliveries.c.lease_until >= now,
        ),
    )
    return sorted(str(owner) for owner in db.scalars(sa.select(held.subquery().c[0])))


def _free(db: sa.Connection, owners: list[str], now: datetime) -> dict[str, tuple[int, int]]:
    """End the leases `owners` hold on feeds and pending deliveries: (feeds, deliveries) freed
    per owner that held any. `feeds.claimed_by` stays (who polled last); deliveries lose theirs."""
    freed: dict[str, tuple[int, int]] = {}
    for owner in owners:
        feed_count = db.execute(
            sa.update(feeds)
            .where(feeds.c.claimed_by == owner, feeds.c.lease_until >= now)
            .values(lease_until=None)
        ).rowcount
        delivery_count = db.execute(
            sa.update(deliveries)
            .where(
                deliveries.c.claimed_by == owner,
                deliveries.c.state == PENDING,
                deliveries.c.lease_until >= now,
            )
            .values(lease_until=None, claimed_by=None)
        ).rowcount
        if feed_count or delivery_count:
            freed[owner] = (int(feed_count or 0), int(delivery_count or 0))
    return freed


class Heartbeat:
    """One daemon's side: register on start, beat (and free dead replicas' claims), remove."""

    def __init__(self, engine: Engine, replica_id: str, interval: timedelta = HEARTBEAT) -> None:
        self.replicas = Replicas(engine)
        self.replica_id = replica_id
        self.interval = interval

    def start(self, now: datetime) -> list[Released]:
        self.replicas.register(self.replica_id, now, self.interval)
        return self._take_over(now)

    def beat(self, now: datetime, activity: Activity) -> list[Released]:
        if not self.replicas.beat(self.replica_id, now, self.interval, activity):
            log.warning(
                "heartbeat: this replica had been taken for dead (no heartbeat for %s); its "
                "claims may have been taken over, which can repeat a poll or a delivery",
                self.interval * MISSED,
            )
        released = self._take_over(now)
        self.replicas.prune(now)
        return released

    def stop(self, now: datetime) -> None:
        self.replicas.remove(self.replica_id, now)

    def _take_over(self, now: datetime) -> list[Released]:
        released = self.replicas.release_dead(now)
        for dead in released:
            log.warning(
                "replica pid %d on %s stopped sending heartbeats: freed its claims on %d feeds "
                "and %d deliveries for the live replicas",
                dead.pid,
                dead.host,
                dead.feeds,
                dead.deliveries,
            )
        killed = self.replicas.release_dead_processes(now)
        log_released_processes(killed)
        return released + killed


def log_released_processes(released: list[Released]) -> None:
    """One warning per dead process (a killed `run --once`) whose feed leases were ended."""
    for dead in released:
        log.warning(
            "released %d feeds claimed by process %d, which died; polling them now",
            dead.feeds,
            dead.pid,
        )
