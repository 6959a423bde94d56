"""Storage: SQLAlchemy Core tables, Alembic migrations, and the `Store` that holds every query."""

from monitor.store.store import (
    DELIVERED,
    FAILED,
    PENDING,
    AlertRow,
    AttemptRecord,
    DueDelivery,
    FeedState,
    NewAlert,
    PollResult,
    SeenItem,
    Store,
)

__all__ = [
    "DELIVERED",
    "FAILED",
    "PENDING",
    "AlertRow",
    "AttemptRecord",
    "DueDelivery",
    "FeedState",
    "NewAlert",
    "PollResult",
    "SeenItem",
    "Store",
]
