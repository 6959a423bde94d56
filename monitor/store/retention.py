"""Retention: the text of old items is forgotten, in short transactions.

`retention.item_text` says how long an item's summary, content and tags are kept; what makes it
unique (its dedupe key) stays for good, so an item is never seen as new again.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.store.engine import begin
from monitor.store.tables import items

PRUNE_BATCH = 2000  # rows per transaction, so pruning never holds a long write lock


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
