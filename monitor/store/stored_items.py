"""Items as the store kept them, read back with the alerts they raised (for backtests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.models import Item
from monitor.store.tables import alerts, feeds, items


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
