"""Queries for operations: counts for /metrics, recent items for backtests, text retention,
and the lease and schedule adjustments the daemon makes on stop and reload.

Functions over the engine (SQLAlchemy Core, portable SQL), beside `Store` rather than in it, so
the operational queries read in one place.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.models import Item
from monitor.store.engine import begin
from monitor.store.outbox import PENDING
from monitor.store.tables import alerts, deliveries, feeds, items

PRUNE_BATCH = 2000  # rows per transaction, so pruning never holds a long write lock


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


# backtests -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item as the store kept it, with the rules it alerted on when it was first seen."""

    id: int
    item: Item
    first_seen_at: datetime
    has_text: bool  # False once retention pruned its summary/content/tags
    alerted: dict[str, str]  # rule id -> alert id


def count_items(engine: Engine, since: datetime) -> int:
    with engine.connect() as db:
        return int(
            db.scalar(
                sa.select(sa.func.count()).select_from(items).where(items.c.first_seen_at >= since)
            )
            or 0
        )


def items_since(engine: Engine, since: datetime, batch: int = 500) -> Iterator[StoredItem]:
    """Items first seen at or after `since`, oldest first, in batches (keyset pagination)."""
    last_id = 0
    query = (
        sa.select(items, feeds.c.url.label("feed_url"), feeds.c.name.label("feed_name"))
        .join(feeds, feeds.c.id == items.c.feed_id)
        .where(items.c.first_seen_at >= since)
        .order_by(items.c.id)
        .limit(batch)
    )
    while True:
        with engine.connect() as db:
            rows = db.execute(query.where(items.c.id > last_id)).all()
            if not rows:
                return
            ids = [row.id for row in rows]
            alerted: dict[int, dict[str, str]] = {}
            for item_id, rule_id, alert_id in db.execute(
                sa.select(alerts.c.item_id, alerts.c.rule_id, alerts.c.id).where(
                    alerts.c.item_id.in_(ids)
                )
            ):
                alerted.setdefault(item_id, {})[rule_id] = alert_id
        for row in rows:
            yield _stored_item(row, alerted.get(row.id, {}))
        last_id = ids[-1]


def _stored_item(row: sa.Row[tuple[object, ...]], alerted: dict[str, str]) -> StoredItem:
    tags = tuple(json.loads(row.tags)) if row.tags else ()
    item = Item(
        title=row.title,
        summary=row.summary or "",
        content=row.content or "",
        link=row.link,
        guid=row.guid,
        published=row.published_at,
        tags=tags,
        lang=row.lang,
        feed_url=row.feed_url,
        feed_name=row.feed_name or "",
    )
    has_text = row.summary is not None or row.content is not None or row.tags is not None
    return StoredItem(row.id, item, row.first_seen_at, has_text, alerted)


# retention -----------------------------------------------------------------------------------


def prune_item_text(engine: Engine, before: datetime) -> int:
    """Forget summary, content and tags of items first seen before `before`; keep the rest.

    The dedupe key, title, link and dates stay, so an old item is never seen as new again and
    alerts still name what they were about. Returns how many items were pruned.
    """
    has_text = sa.or_(
        items.c.summary.is_not(None), items.c.content.is_not(None), items.c.tags.is_not(None)
    )
    pruned = 0
    while True:
        with begin(engine) as db:
            ids = db.scalars(
                sa.select(items.c.id)
                .where(items.c.first_seen_at < before, has_text)
                .limit(PRUNE_BATCH)
            ).all()
            if not ids:
                return pruned
            db.execute(
                sa.update(items)
                .where(items.c.id.in_(ids))
                .values(summary=None, content=None, tags=None)
            )
        pruned += len(ids)


# lifecycle and reload ------------------------------------------------------------------------


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
