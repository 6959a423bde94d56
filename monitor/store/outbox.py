"""The outbox: deliveries due, claimed with a lease, their attempts and states.

Rows are written by `Store.record_poll` in the transaction that records an item as seen; from
then on this module owns them: claim what is due, record each attempt, answer what is next.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.store.engine import begin, lease_free
from monitor.store.tables import alerts, deliveries, delivery_attempts, items

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True, slots=True)
class DueDelivery:
    id: int
    alert_id: str
    webhook: str
    attempts: int
    payload: str


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """The outcome of one delivery attempt, as the store keeps it."""

    outcome: str  # delivered | transient | permanent
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class AlertRow:
    alert_id: str
    rule_id: str
    webhook: str | None
    state: str | None
    attempts: int
    created_at: datetime
    title: str
    last_error: str | None


class Outbox:
    """Deliveries: one row per (alert, webhook), `pending` until `delivered` or `failed`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim_deliveries(
        self, now: datetime, lease: timedelta, webhooks: Iterable[str], limit: int = 100
    ) -> list[DueDelivery]:
        names = list(webhooks)
        if not names:
            return []
        query = (
            sa.select(deliveries.c.id)
            .where(
                deliveries.c.state == PENDING,
                deliveries.c.next_attempt_at <= now,
                deliveries.c.webhook.in_(names),
                lease_free(deliveries.c.lease_until, now),
            )
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(limit)
        )
        claimed = []
        with begin(self.engine) as db:
            for delivery_id in db.scalars(query).all():
                taken = db.execute(
                    sa.update(deliveries)
                    .where(
                        deliveries.c.id == delivery_id,
                        deliveries.c.state == PENDING,
                        lease_free(deliveries.c.lease_until, now),
                    )
                    .values(lease_until=now + lease)
                )
                if taken.rowcount != 1:
                    continue
                row = db.execute(
                    sa.select(deliveries, alerts.c.payload)
                    .join(alerts, alerts.c.id == deliveries.c.alert_id)
                    .where(deliveries.c.id == delivery_id)
                ).one()
                claimed.append(
                    DueDelivery(row.id, row.alert_id, row.webhook, row.attempts, row.payload)
                )
        return claimed

    def record_attempt(
        self,
        delivery_id: int,
        now: datetime,
        attempt: AttemptRecord,
        *,
        state: str,
        next_attempt_at: datetime | None,
    ) -> None:
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
            db.execute(
                sa.update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(
                    state=state,
                    attempts=deliveries.c.attempts + 1,
                    next_attempt_at=next_attempt_at,
                    lease_until=None,
                    last_error=attempt.error,
                    delivered_at=now if state == DELIVERED else None,
                )
            )

    def next_delivery_at(self, webhooks: Iterable[str]) -> datetime | None:
        names = list(webhooks)
        if not names:
            return None
        with self.engine.connect() as db:
            value: datetime | None = db.scalar(
                sa.select(sa.func.min(deliveries.c.next_attempt_at)).where(
                    deliveries.c.state == PENDING, deliveries.c.webhook.in_(names)
                )
            )
            return value

    def recent_alerts(self, limit: int = 50) -> list[AlertRow]:
        query = (
            sa.select(
                alerts.c.id,
                alerts.c.rule_id,
                alerts.c.created_at,
                items.c.title,
                deliveries.c.webhook,
                deliveries.c.state,
                deliveries.c.attempts,
                deliveries.c.last_error,
            )
            .join(items, items.c.id == alerts.c.item_id)
            .outerjoin(deliveries, deliveries.c.alert_id == alerts.c.id)
            .order_by(alerts.c.created_at.desc(), alerts.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as db:
            return [
                AlertRow(
                    row.id,
                    row.rule_id,
                    row.webhook,
                    row.state,
                    row.attempts or 0,
                    row.created_at,
                    row.title,
                    row.last_error,
                )
                for row in db.execute(query)
            ]

    def delivery_counts(self) -> dict[str, int]:
        with self.engine.connect() as db:
            rows = db.execute(
                sa.select(deliveries.c.state, sa.func.count()).group_by(deliveries.c.state)
            )
            return {state: int(count) for state, count in rows}
