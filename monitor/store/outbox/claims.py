"""Claims: due deliveries leased to one process, their attempts recorded, what is due next.

A claim is a lease (`lease_until`) and its holder (`claimed_by`, monitor.store.owners). An
outcome is recorded only while the claim stands; a holder that died is released by whoever
notices (monitor.delivery.coordination), one elsewhere loses its claims when the lease ends.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.store.engine import begin, lease_free
from monitor.store.outbox.states import (
    ALERT_CREATED,
    DELIVERED,
    DIGEST_EVENT,
    DIGESTED,
    HELD,
    PENDING,
)
from monitor.store.tables import alerts, deliveries, delivery_attempts


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """One claimed delivery: what to send (`payload`), as which `webhook-id` (`message_id`), to
    which webhook."""

    id: int
    alert_id: str | None
    webhook: str
    attempts: int
    payload: str
    event_id: str | None = None  # the id of an event that is no alert's (a digest, a feed event)
    event: str = ALERT_CREATED
    reply_to: str | None = None  # the target's id of the message an update may edit

    @property
    def message_id(self) -> str:
        """The `webhook-id` of every attempt: the event's own id, else the alert's."""
        return self.event_id or self.alert_id or f"delivery_{self.id}"


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """The outcome of one delivery attempt, as the store keeps it."""

    outcome: str  # delivered | transient | permanent | gone
    status_code: int | None
    error: str | None
    duration_ms: int


class Claims:
    """Claiming, releasing and recording (part of `Outbox`)."""

    engine: Engine

    def claim_deliveries(
        self,
        now: datetime,
        lease: timedelta,
        wanted: Mapping[str, int],
        *,
        owner: str | None = None,
        routed_only: Collection[str] = (),
        due_by: datetime | None = None,
    ) -> list[DueDelivery]:
        """Lease up to `wanted[name]` due deliveries of each webhook `name`, the longest due
        first, to `owner`. For the webhooks in `routed_only` (those with groups, digests or
        quiet hours) only rows already routed (monitor.delivery.noise) are taken. With
        `due_by`, only rows due by then are (a pass of `run --once` keeping its deadline)."""
        counts = {name: count for name, count in wanted.items() if count > 0}
        if not counts:
            return []
        due_at = now if due_by is None else min(now, due_by)
        with begin(self.engine) as db:
            ids: list[int] = [
                i
                for name, count in counts.items()
                for i in db.scalars(_due(name, due_at, now, name in routed_only).limit(count)).all()
            ]
            if not ids:
                return []
            due = _read(db, _lease(db, ids, now, now + lease, owner))
            return [due[i] for i in ids if i in due]

    def leases_held(self, now: datetime, webhooks: Iterable[str]) -> dict[str, int]:
        """Owners holding unexpired leases on pending deliveries of `webhooks`, with counts."""
        names = list(webhooks)
        if not names:
            return {}
        query = (
            sa.select(deliveries.c.claimed_by, sa.func.count())
            .where(
                deliveries.c.state == PENDING,
                deliveries.c.webhook.in_(names),
                deliveries.c.lease_until >= now,
                deliveries.c.claimed_by.is_not(None),
            )
            .group_by(deliveries.c.claimed_by)
        )
        with self.engine.connect() as db:
            return {str(owner): int(count) for owner, count in db.execute(query)}

    def release(self, owner: str, delivery_ids: Sequence[int] | None = None) -> int:
        """End the leases `owner` holds (all, or those of `delivery_ids`): the work is due again."""
        query = sa.update(deliveries).where(
            deliveries.c.claimed_by == owner, deliveries.c.state == PENDING
        )
        if delivery_ids is not None:
            query = query.where(deliveries.c.id.in_(list(delivery_ids)))
        with begin(self.engine) as db:
            return int(db.execute(query.values(lease_until=None, claimed_by=None)).rowcount)

    def record_attempt(
        self,
        delivery_id: int,
        now: datetime,
        attempt: AttemptRecord,
        *,
        state: str,
        next_attempt_at: datetime | None,
        remote_id: str | None = None,
        owner: str | None = None,
        counted: bool = True,
    ) -> bool:
        """Record one attempt and the delivery's new state; `remote_id` is the target's id of
        the message sent (kept, so later updates of its story can edit it). A digest delivered
        marks the deliveries it carried delivered too. `counted=False` (a rate limit) leaves
        the retry budget (`attempts`) as it was.

        The state changes only if the row is still as it was claimed: `pending` and claimed by
        `owner`. An outcome arriving after the claim ended (the lease ran out and another
        process claimed it, it was routed again, released, replayed) is kept in the attempts'
        history only, and False returned: the row belongs to whoever holds it now."""
        with begin(self.engine) as db:
            db.execute(
                sa.insert(delivery_attempts).values(
                    delivery_id=delivery_id,
                    attempted_at=now,
                    status_code=attempt.status_code,
                    outcome=attempt.outcome,
                    error=attempt.error,
                    duration_ms=attempt.duration_ms,
                )
            )
            changed = db.execute(
                sa.update(deliveries)
                .where(
                    deliveries.c.id == delivery_id,
                    deliveries.c.state == PENDING,
                    deliveries.c.claimed_by.is_not_distinct_from(owner),
                )
                .values(
                    state=state,
                    attempts=deliveries.c.attempts + (1 if counted else 0),
                    next_attempt_at=next_attempt_at,
                    lease_until=None,
                    claimed_by=None,
                    last_error=attempt.error,
                    delivered_at=now if state == DELIVERED else None,
                    **({"remote_id": remote_id[:100]} if remote_id else {}),
                )
            ).rowcount
            if not changed:
                return False
            if state == DELIVERED:
                _deliver_digested(db, delivery_id, now)
        return True

    def rate_limited_since(self, delivery_id: int) -> datetime | None:
        """When the delivery's latest run of 429 answers began (None: its last attempt was not
        a 429): a rate limit costs no retry, for a while (monitor.delivery.policy)."""
        made = delivery_attempts.c
        with self.engine.connect() as db:
            other = db.scalar(
                sa.select(sa.func.max(made.attempted_at)).where(
                    made.delivery_id == delivery_id,
                    made.status_code.is_distinct_from(429),
                )
            )
            query = sa.select(sa.func.min(made.attempted_at)).where(
                made.delivery_id == delivery_id, made.status_code == 429
            )
            if other is not None:
                query = query.where(made.attempted_at > other)
            value = db.scalar(query)
            return value if isinstance(value, datetime) else None

    def next_delivery_at(self, webhooks: Iterable[str]) -> datetime | None:
        times = [t for t in self.next_delivery_times(webhooks).values() if t is not None]
        return min(times, default=None)

    def next_delivery_times(self, webhooks: Iterable[str]) -> dict[str, datetime]:
        """Per webhook, when its next pending delivery may be claimed (due and lease ended), or
        its next held one released (a digest window or quiet hours ending)."""
        names = list(webhooks)
        if not names:
            return {}
        ready = sa.case(
            (
                sa.and_(
                    deliveries.c.lease_until.is_not(None),
                    deliveries.c.lease_until > deliveries.c.next_attempt_at,
                ),
                deliveries.c.lease_until,
            ),
            else_=deliveries.c.next_attempt_at,
        )
        query = (
            sa.select(deliveries.c.webhook, sa.func.min(ready))
            .where(deliveries.c.state.in_((PENDING, HELD)), deliveries.c.webhook.in_(names))
            .group_by(deliveries.c.webhook)
        )
        with self.engine.connect() as db:
            result: dict[str, datetime] = {}
            for name, value in db.execute(query):
                if isinstance(value, datetime):  # UTCDateTime: the CASE keeps the column type
                    result[str(name)] = value
            return result


def _due(webhook: str, due: datetime, now: datetime, routed: bool) -> sa.Select[Any]:
    query = (
        sa.select(deliveries.c.id)
        .where(
            deliveries.c.state == PENDING,
            deliveries.c.next_attempt_at <= due,
            deliveries.c.webhook == webhook,
            lease_free(deliveries.c.lease_until, now),
        )
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        # PostgreSQL: replicas claiming together take disjoint rows (SQLite ignores it)
        .with_for_update(skip_locked=True)
    )
    return query.where(deliveries.c.routed_at.is_not(None)) if routed else query


def _lease(
    db: Connection, ids: list[int], now: datetime, until: datetime, owner: str | None
) -> set[int]:
    """Lease the rows `ids` still free; the ids leased."""
    # the lease check is repeated: on SQLite another writer may have leased since our read
    return set(
        db.scalars(
            sa.update(deliveries)
            .where(
                deliveries.c.id.in_(ids),
                deliveries.c.state == PENDING,
                lease_free(deliveries.c.lease_until, now),
            )
            .values(lease_until=until, claimed_by=owner)
            .returning(deliveries.c.id)
        ).all()
    )


def _read(db: Connection, taken: set[int]) -> dict[int, DueDelivery]:
    """What to send for each delivery of `taken`: its body (its own, else its alert's), and for
    a story update the target's id of its group's first message, which the update may edit."""
    first = deliveries.alias("first")
    query = (
        sa.select(
            deliveries.c.id,
            deliveries.c.alert_id,
            deliveries.c.webhook,
            deliveries.c.attempts,
            deliveries.c.message_id,
            deliveries.c.event,
            sa.func.coalesce(deliveries.c.payload, alerts.c.payload).label("body"),
            first.c.remote_id.label("reply_to"),
        )
        .outerjoin(alerts, alerts.c.id == deliveries.c.alert_id)
        .outerjoin(
            first,
            sa.and_(
                deliveries.c.group_id.is_not(None),
                first.c.alert_id == deliveries.c.group_id,
                first.c.webhook == deliveries.c.webhook,
                first.c.id != deliveries.c.id,
            ),
        )
        .where(deliveries.c.id.in_(taken))
    )
    return {
        row.id: DueDelivery(
            row.id,
            row.alert_id,
            row.webhook,
            row.attempts,
            row.body or "{}",
            row.message_id,
            row.event,
            row.reply_to,
        )
        for row in db.execute(query)
    }


def _deliver_digested(db: Connection, delivery_id: int, now: datetime) -> None:
    """A digest delivered: the deliveries it carried are delivered too."""
    carrier = (
        sa.select(deliveries.c.webhook, deliveries.c.message_id, deliveries.c.event)
        .where(deliveries.c.id == delivery_id)
        .subquery()
    )
    row = db.execute(sa.select(carrier)).first()
    if row is not None and row.event == DIGEST_EVENT and row.message_id:
        db.execute(
            sa.update(deliveries)
            .where(
                deliveries.c.webhook == row.webhook,
                deliveries.c.digest_id == row.message_id,
                deliveries.c.state == DIGESTED,
            )
            .values(state=DELIVERED, delivered_at=now)
        )
