"""The store's operational queries over SQLite and PostgreSQL: counts for /metrics
(monitor.store.counts), items read back for backtests (stored_items), retention, and schedule
changes made outside a poll (schedule)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from monitor.models import Item
from monitor.store import NewAlert, SeenItem, Store
from monitor.store.counts import store_counts
from monitor.store.retention import prune_item_text
from monitor.store.schedule import check_sooner, release_feed_leases
from monitor.store.stored_items import items_since
from monitor.store.tables import items

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(storage_url: str) -> Iterator[Store]:
    opened = Store.open(storage_url)
    yield opened
    opened.close()


def _fill(store: Store) -> int:
    """One feed: an old item with tags, a recent one that alerted for rule-a."""
    store.sync_feeds([("http://a/feed", "A")], NOW)
    (feed,) = store.feeds()
    alert = NewAlert("alrt_1", "rule-a", "high", 90.0, {"data": {}}, ("hook",))
    for when, item, alerts in (
        (NOW - timedelta(days=40), Item("Old", "old summary", guid="g1", tags=("x", "y")), ()),
        (NOW - timedelta(hours=1), Item("New", "new summary", guid="g2"), (alert,)),
    ):
        store.record_poll(
            feed.id,
            when,
            next_check_at=when + timedelta(minutes=10),
            etag=None,
            last_modified=None,
            title="Feed A",
            seen=[SeenItem(item, alerts)],
        )
    return feed.id


def test_counts_for_metrics(store: Store) -> None:
    feed_id = _fill(store)
    store.record_poll_failure(feed_id, NOW, error="boom", next_check_at=NOW)
    counts = store_counts(store.engine)
    assert counts.alerts_by_rule == {"rule-a": 1}
    assert counts.deliveries_by_state == {"pending": 1}
    assert counts.outbox_depth == 1
    assert (counts.feeds, counts.feeds_in_backoff) == (1, 1)


def test_items_since_reads_text_feed_and_alerts(store: Store) -> None:
    _fill(store)
    everything = list(items_since(store.engine, NOW - timedelta(days=60), batch=1))
    assert [s.item.title for s in everything] == ["Old", "New"]
    old, new = everything
    assert old.item.tags == ("x", "y")
    assert old.item.feed_url == "http://a/feed"
    assert old.item.feed_name == "A"
    assert old.alerted == {}
    assert new.alerted == {"rule-a": "alrt_1"}
    assert new.item.summary == "new summary"
    assert [s.item.title for s in items_since(store.engine, NOW - timedelta(days=1))] == ["New"]


def test_pruning_forgets_old_text_only(store: Store) -> None:
    _fill(store)
    assert prune_item_text(store.engine, NOW - timedelta(days=30)) == 1
    assert prune_item_text(store.engine, NOW - timedelta(days=30)) == 0
    with store.engine.connect() as db:
        rows = db.execute(
            sa.select(items.c.title, items.c.dedupe_key, items.c.summary, items.c.tags).order_by(
                items.c.id
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("Old", "guid:g1", None, None),
        ("New", "guid:g2", "new summary", None),
    ]
    (old, _new) = items_since(store.engine, NOW - timedelta(days=60))
    assert not old.has_text


def test_leases_given_back_and_checks_brought_forward(store: Store) -> None:
    store.sync_feeds([("http://a/1", None), ("http://a/2", None)], NOW)
    claimed = store.claim_feeds(NOW, timedelta(minutes=5), due_only=False)
    assert len(claimed) == 2
    release_feed_leases(store.engine, [claimed[0].id])
    again = store.claim_feeds(NOW + timedelta(seconds=1), timedelta(minutes=5), due_only=False)
    assert [f.id for f in again] == [claimed[0].id]
    later = NOW + timedelta(hours=1)
    for feed in claimed:
        store.record_poll(
            feed.id, NOW, next_check_at=later, etag=None, last_modified=None, title=None
        )
    soon = NOW + timedelta(minutes=1)
    assert check_sooner(store.engine, ["http://a/1"], soon) == 1
    assert check_sooner(store.engine, ["http://a/1"], later) == 0  # never pushed back
    checks = {f.url: f.next_check_at for f in store.feeds()}
    assert checks == {"http://a/1": soon, "http://a/2": later}
