"""Storage: SQLAlchemy Core tables, Alembic migrations, the `Store` (feeds, items, alerts) and
its `Outbox` (deliveries)."""

from monitor.store.outbox import (
    DELIVERED,
    FAILED,
    PENDING,
    AlertRow,
    AttemptRecord,
    DueDelivery,
    Outbox,
)
from monitor.store.store import FeedState, NewAlert, PollResult, SeenItem, Store

__all__ = [
    "DELIVERED",
    "FAILED",
    "PENDING",
    "AlertRow",
    "AttemptRecord",
    "DueDelivery",
    "FeedState",
    "NewAlert",
    "Outbox",
    "PollResult",
    "SeenItem",
    "Store",
]
