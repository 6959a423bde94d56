"""The outbox as `monitor alerts` and the metrics show it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.store.outbox.states import HELD, PENDING
from monitor.store.tables import alerts, deliveries, delivery_attempts, items


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
    severity: str = ""
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


class Listing:
    """Reading alerts and counts (part of `Outbox`)."""

    engine: Engine

    def recent_alerts(
        self, limit: int = 50, *, rule_id: str | None = None, state: str | None = None
    ) -> list[AlertRow]:
        """The latest alerts, one row per (alert, webhook); `attempts` counts every attempt."""
        made = (
            sa.select(sa.func.count())
            .where(delivery_attempts.c.delivery_id == deliveries.c.id)
            .scalar_subquery()
        )
        query = (
            sa.select(
                alerts.c.id,
                alerts.c.rule_id,
                alerts.c.severity,
                alerts.c.created_at,
                items.c.title,
                deliveries.c.webhook,
                deliveries.c.state,
                made.label("made"),
                deliveries.c.last_error,
                deliveries.c.next_attempt_at,
                deliveries.c.delivered_at,
            )
            .join(items, items.c.id == alerts.c.item_id)
            .outerjoin(deliveries, deliveries.c.alert_id == alerts.c.id)
            .order_by(alerts.c.created_at.desc(), alerts.c.id.desc(), deliveries.c.webhook)
            .limit(limit)
        )
        if rule_id is not None:
            query = query.where(alerts.c.rule_id == rule_id)
        if state is not None:
            query = query.where(deliveries.c.state == state)
        with self.engine.connect() as db:
            return [
                AlertRow(
                    row.id,
                    row.rule_id,
                    row.webhook,
                    row.state,
                    int(row.made or 0),
                    row.created_at,
                    row.title,
                    row.last_error,
                    row.severity,
                    row.next_attempt_at if row.state in (PENDING, HELD) else None,
                    row.delivered_at,
                )
                for row in db.execute(query)
            ]

    def delivery_counts(self) -> dict[str, int]:
        with self.engine.connect() as db:
            rows = db.execute(
                sa.select(deliveries.c.state, sa.func.count()).group_by(deliveries.c.state)
            )
            return {state: int(count) for state, count in rows}
