"""Deliveries made due again: replayed by hand, or orphaned by a webhook removed from the
config (kept, listed, replayable; revived when a replica's config still has the webhook)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.store.engine import begin, lease_free
from monitor.store.outbox.states import FAILED, HELD, ORPHANED, PENDING
from monitor.store.tables import alerts, deliveries


class Requeue:
    """Replays and orphans (part of `Outbox`)."""

    engine: Engine

    def orphan(self, configured: Collection[str], now: datetime) -> dict[str, int]:
        """Mark `orphaned` the pending and held deliveries (not in flight) of every webhook not
        in `configured`; per webhook, how many. Nothing is deleted."""
        query = (
            sa.update(deliveries)
            .where(
                deliveries.c.state.in_((PENDING, HELD)),
                deliveries.c.webhook.not_in(list(configured)),
                lease_free(deliveries.c.lease_until, now),
            )
            .values(
                state=ORPHANED,
                next_attempt_at=now,
                lease_until=None,
                claimed_by=None,
                last_error=f"orphaned: its webhook is not in the config "
                f"(since {now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}); put it back, then replay",
            )
            .returning(deliveries.c.webhook)
        )
        with begin(self.engine) as db:
            counts: dict[str, int] = {}
            for name in db.scalars(query):
                counts[name] = counts.get(name, 0) + 1
            return counts

    def revive_orphans(
        self, webhooks: Collection[str], since: datetime, now: datetime
    ) -> dict[str, int]:
        """Make due again the deliveries of `webhooks` orphaned at or after `since` (by a
        process whose config lacked a webhook this one has); per webhook, how many."""
        names = list(webhooks)
        if not names:
            return {}
        recent = sa.and_(
            deliveries.c.state == ORPHANED,
            deliveries.c.next_attempt_at >= since,
            deliveries.c.webhook.in_(names),
        )
        with self.engine.connect() as db:  # a read first: nearly always there is nothing
            if db.scalar(sa.select(deliveries.c.id).where(recent).limit(1)) is None:
                return {}
        with begin(self.engine) as db:
            counts: dict[str, int] = {}
            for name in db.scalars(
                sa.update(deliveries)
                .where(recent)
                .values(state=PENDING, next_attempt_at=now, last_error=None)
                .returning(deliveries.c.webhook)
            ):
                counts[name] = counts.get(name, 0) + 1
            return counts

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
            query = query.where(
                sa.or_(
                    deliveries.c.alert_id.in_(list(alert_ids)),
                    deliveries.c.message_id.in_(list(alert_ids)),  # digests, feed events
                )
            )
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
        """Which of `alert_ids` name an alert, or an event in the outbox (digest, feed event)."""
        ids = list(alert_ids)
        with self.engine.connect() as db:
            known = set(db.scalars(sa.select(alerts.c.id).where(alerts.c.id.in_(ids))))
            return known | {
                str(i)
                for i in db.scalars(
                    sa.select(deliveries.c.message_id).where(deliveries.c.message_id.in_(ids))
                )
            }
