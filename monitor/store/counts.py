"""What /metrics reads from the store: alerts per rule, deliveries per state, feed health."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.store.outbox import PENDING
from monitor.store.tables import alerts, deliveries, feeds


@dataclass(frozen=True, slots=True)
class StoreCounts:
    alerts_by_rule: dict[str, int] = field(default_factory=dict)
    deliveries_by_state: dict[str, int] = field(default_factory=dict)
    feeds: int = 0
    feeds_in_backoff: int = 0

    @property
    def outbox_depth(self) -> int:
        return self.deliveries_by_state.get(PENDING, 0)


def store_counts(engine: Engine) -> StoreCounts:
    """What /metrics reads from the store: alerts per rule, deliveries per state, feed health."""
    with engine.connect() as db:
        by_rule = db.execute(
            sa.select(alerts.c.rule_id, sa.func.count()).group_by(alerts.c.rule_id)
        )
        by_state = db.execute(
            sa.select(deliveries.c.state, sa.func.count()).group_by(deliveries.c.state)
        )
        feed_row = db.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(sa.case((feeds.c.error_count > 0, 1), else_=0)), 0),
            ).where(feeds.c.active)
        ).one()
        return StoreCounts(
            alerts_by_rule={rule: int(count) for rule, count in by_rule},
            deliveries_by_state={state: int(count) for state, count in by_state},
            feeds=int(feed_row[0]),
            feeds_in_backoff=int(feed_row[1]),
        )
