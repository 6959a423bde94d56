"""Feed health in the store: which feeds may have changed health, their usual cadence, and the
state change written together with its events (monitor.pipeline.health decides).

A feed's `unhealthy_since` is set by a conditional UPDATE in the transaction that queues its
`feed.unhealthy` events (and cleared with `feed.recovered`), so each change is announced once even
with several replicas checking at the same time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from itertools import pairwise
from statistics import median

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.store.engine import begin
from monitor.store.outbox import Outbox
from monitor.store.store import FeedState, feed_state_from_row
from monitor.store.tables import feeds, items

CADENCE_SAMPLE = 10  # gaps between the last polls that brought new items, for the usual cadence


def health_candidates(
    engine: Engine, now: datetime, failing_after: timedelta | None, silent_min: timedelta | None
) -> list[FeedState]:
    """Feeds that are unhealthy, or that may have become so: failing or quiet for long enough."""
    conditions: list[sa.ColumnElement[bool]] = [feeds.c.unhealthy_since.is_not(None)]
    if failing_after is not None:
        conditions.append(feeds.c.failing_since <= now - failing_after)
    if silent_min is not None:
        last_news = sa.func.coalesce(feeds.c.last_new_item_at, feeds.c.first_polled_at)
        conditions.append(last_news <= now - silent_min)
    query = sa.select(feeds).where(feeds.c.active, feeds.c.gone_at.is_(None), sa.or_(*conditions))
    with begin(engine) as db:
        return [feed_state_from_row(row) for row in db.execute(query)]


def usual_gap(engine: Engine, feed_id: int) -> timedelta | None:
    """The median time between the feed's last polls that brought new items; None below 3."""
    query = (
        sa.select(items.c.first_seen_at)
        .where(items.c.feed_id == feed_id)
        .group_by(items.c.first_seen_at)
        .order_by(items.c.first_seen_at.desc())
        .limit(CADENCE_SAMPLE + 1)
    )
    with begin(engine) as db:
        seen = list(db.scalars(query))
    gaps = [newer - older for newer, older in pairwise(seen)]
    if len(gaps) < 3:
        return None
    middle: timedelta = median(gaps)
    return middle


def record_health_change(
    engine: Engine,
    feed_id: int,
    now: datetime,
    *,
    reason: str | None,
    event: Mapping[str, object],
    webhooks: Iterable[str],
    checked_at: datetime | None,
    since: datetime | None = None,
) -> bool:
    """Mark the feed unhealthy for `reason` since `since` (when its trouble began; default `now`)
    and queue `feed.unhealthy`, or with `reason` None
    healthy again with `feed.recovered`; False when it already was (another replica's doing), or
    when the feed was polled since `checked_at` (its last poll as the diagnosis read it): then
    the diagnosis is stale and the next check decides."""
    unchanged = (
        feeds.c.last_checked_at.is_(None)
        if checked_at is None
        else feeds.c.last_checked_at == checked_at
    )
    if reason is not None:
        change = sa.update(feeds).where(
            feeds.c.id == feed_id, feeds.c.unhealthy_since.is_(None), unchanged
        )
        change = change.values(unhealthy_since=since or now, unhealthy_reason=reason)
    else:
        change = sa.update(feeds).where(feeds.c.id == feed_id, feeds.c.unhealthy_since.is_not(None))
        change = change.values(unhealthy_since=None, unhealthy_reason=None)
    event_type = "feed.unhealthy" if reason is not None else "feed.recovered"
    with begin(engine) as db:
        changed = db.execute(change).rowcount == 1
        if changed:
            Outbox(engine).enqueue_event(event_type, event, webhooks, now, db=db)
    return changed
