"""Feed schedule changes made outside a poll: leases given back when the daemon stops,
next checks brought forward when a reload shortens an interval or a WebSub lease lapses."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.store.engine import begin
from monitor.store.tables import feeds


def release_feed_leases(engine: Engine, feed_ids: Collection[int]) -> None:
    """Give back the leases of feeds whose refresh was cancelled, so the next run takes them."""
    if not feed_ids:
        return
    with begin(engine) as db:
        db.execute(sa.update(feeds).where(feeds.c.id.in_(list(feed_ids))).values(lease_until=None))


def check_sooner(engine: Engine, urls: Collection[str], latest: datetime) -> int:
    """Bring the next check of these feeds forward to `latest` where it is later (a shortened
    interval takes effect now, not after the old one runs out). Returns the feeds moved."""
    if not urls:
        return 0
    with begin(engine) as db:
        moved = db.execute(
            sa.update(feeds)
            .where(feeds.c.url.in_(list(urls)), feeds.c.next_check_at > latest)
            .values(next_check_at=latest)
        )
        return int(moved.rowcount or 0)
