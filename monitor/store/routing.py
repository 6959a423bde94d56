"""The store side of noise control: story groups, held deliveries, digests (monitor.delivery.noise).

Routing runs per webhook in one transaction that first takes the webhook's lock — an UPDATE of
its `webhook_states` row, a row lock on PostgreSQL and the write lock on SQLite — so replicas
route one webhook in turn: two deliveries of one story can never both become `alert.created`,
and a group's sources are appended one writer at a time. Inside it: the webhook's deliveries
not yet routed, its open story groups, what its budgeted rules sent lately, the held
deliveries whose time has come and the digest that carries them.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.store.engine import begin, lease_free
from monitor.store.outbox import ALERT_CREATED, DIGEST_EVENT, DIGESTED, HELD, PENDING
from monitor.store.tables import (
    UTCDateTime,
    alerts,
    deliveries,
    items,
    story_groups,
    webhook_states,
)
from monitor.store.upsert import conflict_insert

MAX_TEXTS = 4  # texts a group keeps to compare new items with: its first, one per language


@dataclass(frozen=True, slots=True)
class Unrouted:
    """A pending alert delivery not yet routed, with what routing needs of its alert."""

    id: int
    alert_id: str
    rule_id: str
    severity: str
    created_at: datetime
    payload: str  # the alert's stored alert.created
    lang: str | None


@dataclass(slots=True)
class StoryGroup:
    id: str
    rule_id: str
    opened_at: datetime
    closes_at: datetime
    count: int
    sources: list[dict[str, Any]]
    texts: list[list[str | None]]  # [title, summary, lang]: the first source's, then the first
    # of each other language, MAX_TEXTS at most (monitor.delivery.noise)
    stored: bool = True
    changed: bool = False


@dataclass(frozen=True, slots=True)
class Routed:
    """What routing decided for one delivery: the event it is, its body, its group, its hold."""

    id: int
    event: str
    payload: str | None
    group_id: str | None
    held_until: datetime | None


@dataclass(frozen=True, slots=True)
class HeldDelivery:
    id: int
    alert_id: str | None
    group_id: str | None
    severity: str
    routed_at: datetime | None
    created_at: datetime
    held_until: datetime
    payload: str  # the alert's alert.created


@dataclass(slots=True)
class Digest:
    id: str
    payload: str
    members: list[int] = field(default_factory=list)


def has_work(engine: Engine, webhook: str, now: datetime) -> bool:
    """Whether the webhook has deliveries to route or held ones due: read without the lock, so
    an idle webhook costs one read a pass, not a write."""
    new = sa.select(deliveries.c.id).where(
        deliveries.c.webhook == webhook,
        deliveries.c.state == PENDING,
        deliveries.c.routed_at.is_(None),
        lease_free(deliveries.c.lease_until, now),
    )
    with engine.connect() as db:
        return db.scalar(new.limit(1)) is not None or db.scalar(_due_held(webhook, now)) is not None


def with_due_held(engine: Engine, webhooks: Collection[str], now: datetime) -> set[str]:
    """Which of `webhooks` have held deliveries due, in one read: asked of webhooks without
    groups, digests or quiet hours, whose held deliveries were held under an earlier config."""
    query = (
        sa.select(deliveries.c.webhook)
        .where(
            deliveries.c.webhook.in_(list(webhooks)),
            deliveries.c.state == HELD,
            deliveries.c.next_attempt_at <= now,
        )
        .distinct()
    )
    with engine.connect() as db:
        return set(db.scalars(query))


def routed_by_others(engine: Engine, webhooks: Collection[str], since: datetime) -> set[str]:
    """Which of `webhooks` (plain in the asking process's config) another process routes with
    noise settings: a story group opened, or a delivery held, since `since`."""
    names = list(webhooks)
    if not names:
        return set()
    grouped = sa.select(story_groups.c.webhook).where(
        story_groups.c.webhook.in_(names), story_groups.c.opened_at >= since
    )
    held = sa.select(deliveries.c.webhook).where(
        deliveries.c.state == HELD,
        deliveries.c.webhook.in_(names),
        deliveries.c.routed_at >= since,
    )
    with engine.connect() as db:
        return {str(name) for name in db.scalars(sa.union(grouped, held))}


def _due_held(webhook: str, now: datetime) -> sa.Select[tuple[int]]:
    return (
        sa.select(deliveries.c.id)
        .where(
            deliveries.c.webhook == webhook,
            deliveries.c.state == HELD,
            deliveries.c.next_attempt_at <= now,
        )
        .limit(1)
    )


@contextmanager
def locked(engine: Engine, webhook: str, now: datetime) -> Iterator[Connection]:
    """A transaction holding `webhook`'s routing lock until it ends."""
    with begin(engine) as db:
        db.execute(
            conflict_insert(db.dialect.name, webhook_states)
            .values(name=webhook, updated_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        db.execute(
            sa.update(webhook_states).where(webhook_states.c.name == webhook).values(updated_at=now)
        )
        yield db


def unrouted(db: Connection, webhook: str, now: datetime, limit: int = 500) -> list[Unrouted]:
    """The webhook's pending alert deliveries not yet routed, oldest alert first; not those in
    flight (claimed unrouted by a process whose config has no noise settings for the webhook:
    routing them now would turn a row being sent into a held one). PostgreSQL: the rows read
    are locked until routing commits, so no claim takes one meanwhile (claims skip locked
    rows); SQLite: the routing lock is the write lock, claims wait for it."""
    query = (
        sa.select(
            deliveries.c.id,
            alerts.c.id.label("alert_id"),
            alerts.c.rule_id,
            alerts.c.severity,
            alerts.c.created_at,
            alerts.c.payload,
            items.c.lang,
        )
        .join(alerts, alerts.c.id == deliveries.c.alert_id)
        .join(items, items.c.id == alerts.c.item_id)
        .where(
            deliveries.c.webhook == webhook,
            deliveries.c.state == PENDING,
            deliveries.c.routed_at.is_(None),
            lease_free(deliveries.c.lease_until, now),
        )
        .order_by(alerts.c.created_at, deliveries.c.id)
        .limit(limit)
        .with_for_update(of=deliveries, skip_locked=True)
    )
    return [
        Unrouted(r.id, r.alert_id, r.rule_id, r.severity, r.created_at, r.payload, r.lang)
        for r in db.execute(query)
    ]


def open_groups(db: Connection, webhook: str, after: datetime) -> list[StoryGroup]:
    """The webhook's groups still open after `after`, oldest first, whatever their rule."""
    query = (
        sa.select(story_groups)
        .where(story_groups.c.webhook == webhook, story_groups.c.closes_at > after)
        .order_by(story_groups.c.opened_at, story_groups.c.id)
    )
    return [
        StoryGroup(
            r.id,
            r.rule_id,
            r.opened_at,
            r.closes_at,
            int(r._mapping["count"]),  # `r.count` is the Row method
            json.loads(r.sources),
            json.loads(r.texts),
        )
        for r in db.execute(query)
    ]


def sent_since(
    db: Connection, webhook: str, rule_id: str, since: datetime
) -> tuple[int, datetime | None]:
    """How many alerts of the rule routing let through to the webhook one by one since `since`
    (not held, not carried by a digest), and when the first of them was routed."""
    row = db.execute(
        sa.select(sa.func.count(), sa.func.min(deliveries.c.routed_at))
        .select_from(deliveries.join(alerts, alerts.c.id == deliveries.c.alert_id))
        .where(
            deliveries.c.webhook == webhook,
            alerts.c.rule_id == rule_id,
            deliveries.c.routed_at >= since,
            deliveries.c.state.not_in([HELD, DIGESTED]),
            deliveries.c.digest_id.is_(None),
        )
    ).one()
    first = row[1]
    return int(row[0]), first if isinstance(first, datetime) else None


def save_groups(db: Connection, webhook: str, groups: Iterable[StoryGroup]) -> None:
    for group in groups:
        values = {
            "count": group.count,
            "sources": json.dumps(group.sources, ensure_ascii=False),
            "texts": json.dumps(group.texts[:MAX_TEXTS], ensure_ascii=False),
        }
        if not group.stored:
            db.execute(
                sa.insert(story_groups).values(
                    webhook=webhook,
                    id=group.id,
                    rule_id=group.rule_id,
                    opened_at=group.opened_at,
                    closes_at=group.closes_at,
                    **values,
                )
            )
        elif group.changed:
            db.execute(
                sa.update(story_groups)
                .where(story_groups.c.webhook == webhook, story_groups.c.id == group.id)
                .values(**values)
            )
        group.stored, group.changed = True, False


def mark_routed(db: Connection, routed: Sequence[Routed], now: datetime) -> None:
    """Record what routing decided, in one executemany."""
    if not routed:
        return
    statement = (
        sa.update(deliveries)
        .where(
            deliveries.c.id == sa.bindparam("b_id"),
            deliveries.c.state == PENDING,
            lease_free(deliveries.c.lease_until, now),
        )
        .values(
            routed_at=now,
            # an earlier claim (whose lease ended) no longer owns the row: its late outcome
            # must not be recorded over what routing decided (Outbox.record_attempt)
            claimed_by=None,
            lease_until=None,
            event=sa.bindparam("b_event"),
            group_id=sa.bindparam("b_group"),
            payload=sa.func.coalesce(
                sa.bindparam("b_payload", type_=sa.Text), deliveries.c.payload
            ),
            state=sa.bindparam("b_state"),
            next_attempt_at=sa.func.coalesce(
                sa.bindparam("b_until", type_=UTCDateTime), deliveries.c.next_attempt_at
            ),
        )
    )
    db.execute(
        statement,
        [
            {
                "b_id": row.id,
                "b_event": row.event,
                "b_group": row.group_id,
                "b_payload": row.payload,
                "b_state": PENDING if row.held_until is None else HELD,
                "b_until": row.held_until,
            }
            for row in routed
        ],
    )


def release_firsts(db: Connection, webhook: str, group_ids: Collection[str | None]) -> int:
    """Send now the held `alert.created` of these story groups (an urgent update of each is
    sent at once): due from when it was queued, so it is claimed before its updates."""
    wanted = [g for g in group_ids if g is not None]
    if not wanted:
        return 0
    result = db.execute(
        sa.update(deliveries)
        .where(
            deliveries.c.webhook == webhook,
            deliveries.c.state == HELD,
            deliveries.c.event == ALERT_CREATED,
            deliveries.c.group_id.in_(wanted),
        )
        .values(state=PENDING, next_attempt_at=deliveries.c.created_at)
    )
    return int(result.rowcount)


def open_window(db: Connection, webhook: str, now: datetime) -> datetime | None:
    """When the webhook's held deliveries are released next, if any are held past `now`."""
    value = db.scalar(
        sa.select(sa.func.min(deliveries.c.next_attempt_at)).where(
            deliveries.c.webhook == webhook,
            deliveries.c.state == HELD,
            deliveries.c.next_attempt_at > now,
        )
    )
    return value if isinstance(value, datetime) else None


def due_held(db: Connection, webhook: str, now: datetime) -> list[HeldDelivery]:
    """The webhook's held deliveries whose release time has come, oldest alert first."""
    query = (
        sa.select(
            deliveries.c.id,
            deliveries.c.alert_id,
            deliveries.c.group_id,
            deliveries.c.routed_at,
            deliveries.c.next_attempt_at,
            alerts.c.severity,
            alerts.c.created_at,
            alerts.c.payload,
        )
        .join(alerts, alerts.c.id == deliveries.c.alert_id)
        .where(
            deliveries.c.webhook == webhook,
            deliveries.c.state == HELD,
            deliveries.c.next_attempt_at <= now,
        )
        .order_by(alerts.c.created_at, deliveries.c.id)
    )
    return [
        HeldDelivery(
            r.id,
            r.alert_id,
            r.group_id,
            r.severity,
            r.routed_at,
            r.created_at,
            r.next_attempt_at,
            r.payload,
        )
        for r in db.execute(query)
    ]


def group_counts(db: Connection, webhook: str, ids: Iterable[str]) -> dict[str, int]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = db.execute(
        sa.select(story_groups.c.id, story_groups.c.count).where(
            story_groups.c.webhook == webhook, story_groups.c.id.in_(wanted)
        )
    )
    return {str(i): int(n) for i, n in rows}


def add_digest(db: Connection, webhook: str, digest: Digest, now: datetime) -> None:
    """The digest as an outbox row of its own (retried, signed, one webhook-id); its members
    `digested` into it."""
    db.execute(
        sa.insert(deliveries).values(
            alert_id=None,
            webhook=webhook,
            state=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            event=DIGEST_EVENT,
            message_id=digest.id,
            payload=digest.payload,
            routed_at=now,
        )
    )
    db.execute(
        sa.update(deliveries)
        .where(deliveries.c.id.in_(digest.members), deliveries.c.state == HELD)
        .values(state=DIGESTED, digest_id=digest.id, next_attempt_at=None)
    )


def prune_groups(engine: Engine, closed_before: datetime) -> int:
    """Forget story groups that closed before `closed_before` (no new alert can join them)."""
    with begin(engine) as db:
        return db.execute(
            sa.delete(story_groups).where(story_groups.c.closes_at < closed_before)
        ).rowcount
