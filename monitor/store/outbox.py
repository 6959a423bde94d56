"""The outbox: deliveries due, claimed with a lease, their attempts and states.

Rows are written by `Store.record_poll` in the transaction that records an item as seen; from
then on this module owns them: claim what is due (recording who claimed it), record each attempt,
release the claims of a process that died, requeue failed deliveries, keep the state of each
webhook (disabled after a 410) and answer what is next.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.store.engine import begin, lease_free
from monitor.store.tables import alerts, deliveries, delivery_attempts, items, webhook_states

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATES = (PENDING, DELIVERED, FAILED)


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

    outcome: str  # delivered | transient | permanent | gone
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
    severity: str = ""
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WebhookState:
    name: str
    disabled_at: datetime | None
    disabled_reason: str | None
    url_digest: str | None
    counts: Mapping[str, int]


class Outbox:
    """Deliveries: one row per (alert, webhook), `pending` until `delivered` or `failed`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # claiming ------------------------------------------------------------------------------

    def claim_deliveries(
        self,
        now: datetime,
        lease: timedelta,
        webhooks: Iterable[str] | Mapping[str, int],
        limit: int = 100,
        *,
        owner: str | None = None,
    ) -> list[DueDelivery]:
        """Lease due deliveries: up to `limit` in all, or per webhook when given a mapping."""
        wanted = dict(webhooks) if isinstance(webhooks, Mapping) else dict.fromkeys(webhooks, limit)
        wanted = {name: count for name, count in wanted.items() if count > 0}
        if not wanted:
            return []
        with begin(self.engine) as db:
            if isinstance(webhooks, Mapping):
                ids = [
                    i
                    for name, count in wanted.items()
                    for i in db.scalars(self._due([name], now).limit(count)).all()
                ]
            else:
                ids = list(db.scalars(self._due(list(wanted), now).limit(limit)).all())
            if not ids:
                return []
            # the lease check is repeated: on SQLite another writer may have leased since our read
            taken = set(
                db.scalars(
                    sa.update(deliveries)
                    .where(
                        deliveries.c.id.in_(ids),
                        deliveries.c.state == PENDING,
                        lease_free(deliveries.c.lease_until, now),
                    )
                    .values(lease_until=now + lease, claimed_by=owner)
                    .returning(deliveries.c.id)
                ).all()
            )
            rows = {
                row.id: row
                for row in db.execute(
                    sa.select(deliveries, alerts.c.payload)
                    .join(alerts, alerts.c.id == deliveries.c.alert_id)
                    .where(deliveries.c.id.in_(taken))
                )
            }
            return [
                DueDelivery(row.id, row.alert_id, row.webhook, row.attempts, row.payload)
                for row in (rows[i] for i in ids if i in rows)
            ]

    @staticmethod
    def _due(names: list[str], now: datetime) -> sa.Select[tuple[int]]:
        return (
            sa.select(deliveries.c.id)
            .where(
                deliveries.c.state == PENDING,
                deliveries.c.next_attempt_at <= now,
                deliveries.c.webhook.in_(names),
                lease_free(deliveries.c.lease_until, now),
            )
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            # PostgreSQL: replicas claiming together take disjoint rows (SQLite ignores it)
            .with_for_update(skip_locked=True)
        )

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
                    claimed_by=None,
                    last_error=attempt.error,
                    delivered_at=now if state == DELIVERED else None,
                )
            )

    def next_delivery_at(self, webhooks: Iterable[str]) -> datetime | None:
        times = [t for t in self.next_delivery_times(webhooks).values() if t is not None]
        return min(times, default=None)

    def next_delivery_times(self, webhooks: Iterable[str]) -> dict[str, datetime]:
        """Per webhook, when its next pending delivery may be claimed (due and lease ended)."""
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
            .where(deliveries.c.state == PENDING, deliveries.c.webhook.in_(names))
            .group_by(deliveries.c.webhook)
        )
        with self.engine.connect() as db:
            result: dict[str, datetime] = {}
            for name, value in db.execute(query):
                if isinstance(value, datetime):  # UTCDateTime: the CASE keeps the column type
                    result[str(name)] = value
            return result

    # requeue -------------------------------------------------------------------------------

    def requeue(
        self,
        now: datetime,
        *,
        alert_ids: Sequence[str] = (),
        failed: bool = False,
        webhook: str | None = None,
    ) -> int:
        """Make deliveries due now with a fresh retry budget: of `alert_ids` (any state but
        in flight), or every `failed` one; only to `webhook` when given. Returns how many."""
        query = sa.update(deliveries).where(lease_free(deliveries.c.lease_until, now))
        if failed:
            query = query.where(deliveries.c.state == FAILED)
        if alert_ids:
            query = query.where(deliveries.c.alert_id.in_(list(alert_ids)))
        elif not failed:
            return 0
        if webhook is not None:
            query = query.where(deliveries.c.webhook == webhook)
        with begin(self.engine) as db:
            result = db.execute(
                query.values(
                    state=PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    delivered_at=None,
                    lease_until=None,
                    claimed_by=None,
                )
            )
            return int(result.rowcount)

    def known_alerts(self, alert_ids: Sequence[str]) -> set[str]:
        with self.engine.connect() as db:
            return set(db.scalars(sa.select(alerts.c.id).where(alerts.c.id.in_(list(alert_ids)))))

    # webhook states ------------------------------------------------------------------------

    def disable_webhook(self, name: str, now: datetime, reason: str, url_digest: str) -> None:
        values = {"disabled_at": now, "disabled_reason": reason[:2000], "url_digest": url_digest}
        with begin(self.engine) as db:
            done = db.execute(
                sa.update(webhook_states)
                .where(webhook_states.c.name == name)
                .values(updated_at=now, **values)
            )
            if done.rowcount == 0:
                db.execute(sa.insert(webhook_states).values(name=name, updated_at=now, **values))

    def enable_webhook(self, name: str, now: datetime) -> bool:
        """Re-enable a disabled webhook; False when it was not disabled."""
        with begin(self.engine) as db:
            done = db.execute(
                sa.update(webhook_states)
                .where(webhook_states.c.name == name, webhook_states.c.disabled_at.is_not(None))
                .values(disabled_at=None, disabled_reason=None, url_digest=None, updated_at=now)
            )
            return bool(done.rowcount)

    def disabled_webhooks(self) -> dict[str, tuple[str | None, str | None]]:
        """Disabled webhooks: name -> (reason, digest of the URL that was disabled)."""
        with self.engine.connect() as db:
            rows = db.execute(
                sa.select(
                    webhook_states.c.name,
                    webhook_states.c.disabled_reason,
                    webhook_states.c.url_digest,
                ).where(webhook_states.c.disabled_at.is_not(None))
            )
            return {row.name: (row.disabled_reason, row.url_digest) for row in rows}

    def webhook_states(self) -> dict[str, WebhookState]:
        """Every webhook the store knows (by state row or deliveries), with delivery counts."""
        with self.engine.connect() as db:
            counts: dict[str, dict[str, int]] = {}
            for name, state, count in db.execute(
                sa.select(deliveries.c.webhook, deliveries.c.state, sa.func.count()).group_by(
                    deliveries.c.webhook, deliveries.c.state
                )
            ):
                counts.setdefault(name, {})[state] = int(count)
            result = {
                name: WebhookState(name, None, None, None, by_state)
                for name, by_state in counts.items()
            }
            for row in db.execute(sa.select(webhook_states)):
                result[row.name] = WebhookState(
                    row.name,
                    row.disabled_at,
                    row.disabled_reason,
                    row.url_digest,
                    counts.get(row.name, {}),
                )
            return result

    # listing -------------------------------------------------------------------------------

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
                    row.next_attempt_at if row.state == PENDING else None,
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
