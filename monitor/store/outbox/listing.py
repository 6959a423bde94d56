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


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One webhook's delivery of an alert, as `monitor alerts` summarises it."""

    webhook: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None  # pending: next attempt; held: release; else None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class AlertSummary:
    """An alert with every delivery of it, by webhook name."""

    alert_id: str
    rule_id: str
    severity: str
    created_at: datetime
    title: str
    deliveries: tuple[DeliveryRow, ...]


class AlertListing:
    """`monitor alerts`: one entry per alert, newest first, with all its deliveries (part of
    `Outbox`). Filters choose alerts; an alert chosen is shown with every delivery it has."""

    engine: Engine

    def alert_summaries(
        self,
        limit: int = 20,
        *,
        rule_id: str | None = None,
        state: str | None = None,
        webhook: str | None = None,
        since: datetime | None = None,
    ) -> list[AlertSummary]:
        """The latest `limit` alerts of `rule_id`, created at or after `since`, that have a
        delivery to `webhook` in `state` (each filter only when given)."""
        query = (
            sa.select(
                alerts.c.id, alerts.c.rule_id, alerts.c.severity, alerts.c.created_at, items.c.title
            )
            .join(items, items.c.id == alerts.c.item_id)
            .order_by(alerts.c.created_at.desc(), alerts.c.id.desc())
            .limit(limit)
        )
        if rule_id is not None:
            query = query.where(alerts.c.rule_id == rule_id)
        if since is not None:
            query = query.where(alerts.c.created_at >= since)
        if state is not None or webhook is not None:
            wanted = [deliveries.c.alert_id == alerts.c.id]
            if state is not None:
                wanted.append(deliveries.c.state == state)
            if webhook is not None:
                wanted.append(deliveries.c.webhook == webhook)
            query = query.where(sa.exists().where(*wanted))
        with self.engine.connect() as db:
            chosen = list(db.execute(query))
            sent = _deliveries_of(db, [row.id for row in chosen])
        return [
            AlertSummary(
                row.id,
                row.rule_id,
                row.severity,
                row.created_at,
                row.title,
                tuple(sent.get(row.id, ())),
            )
            for row in chosen
        ]

    def stored_names(self) -> tuple[set[str], set[str]]:
        """The rule ids of stored alerts and the webhooks of stored deliveries: names a filter
        may use although the config no longer has them."""
        with self.engine.connect() as db:
            rule_ids = set(db.scalars(sa.select(alerts.c.rule_id).distinct()))
            webhooks = set(db.scalars(sa.select(deliveries.c.webhook).distinct()))
        return rule_ids, webhooks


def _deliveries_of(db: sa.Connection, alert_ids: list[str]) -> dict[str, list[DeliveryRow]]:
    if not alert_ids:
        return {}
    made = (
        sa.select(sa.func.count())
        .where(delivery_attempts.c.delivery_id == deliveries.c.id)
        .scalar_subquery()
    )
    query = (
        sa.select(
            deliveries.c.alert_id,
            deliveries.c.webhook,
            deliveries.c.state,
            made.label("made"),
            deliveries.c.last_error,
            deliveries.c.next_attempt_at,
            deliveries.c.delivered_at,
        )
        .where(deliveries.c.alert_id.in_(alert_ids))
        .order_by(deliveries.c.webhook)
    )
    found: dict[str, list[DeliveryRow]] = {}
    for row in db.execute(query):
        found.setdefault(row.alert_id, []).append(
            DeliveryRow(
                row.webhook,
                row.state,
                int(row.made or 0),
                row.last_error,
                row.next_attempt_at if row.state in (PENDING, HELD) else None,
                row.delivered_at,
            )
        )
    return found
