"""The store over SQLite and PostgreSQL: one suite, both backends (the `storage_url` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from monitor.models import Item
from monitor.store import DELIVERED, FAILED, PENDING, AttemptRecord, NewAlert, SeenItem, Store
from monitor.store.engine import MIGRATIONS, SCHEMA_REVISION
from monitor.store.store import PollRecord
from monitor.store.tables import feeds, metadata

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


@pytest.fixture
def store(storage_url: str) -> Iterator[Store]:
    opened = Store.open(storage_url)
    yield opened
    opened.close()


def _alert(alert_id: str, webhooks: tuple[str, ...] = ("hook",)) -> NewAlert:
    return NewAlert(alert_id, "rule-a", "high", 93.5, {"data": {"id": alert_id}}, webhooks)


def _poll(store: Store, feed_id: int, seen: list[SeenItem], now: datetime = NOW) -> tuple[int, int]:
    result = store.record_poll(
        feed_id,
        now,
        next_check_at=now + timedelta(minutes=10),
        etag='"v1"',
        last_modified="Sun, 01 Mar 2026 11:00:00 GMT",
        title="Feed",
        seen=seen,
    )
    return result.new_items, result.alerts_created


def test_open_applies_migrations_and_is_idempotent(empty_storage_url: str) -> None:
    Store.open(empty_storage_url).close()
    again = Store.open(empty_storage_url)  # a second start finds the schema current
    with again.engine.connect() as db:
        tables = set(sa.inspect(db).get_table_names())
        version = db.scalar(sa.text("SELECT version_num FROM alembic_version"))
    again.close()
    assert {"feeds", "items", "alerts", "deliveries", "delivery_attempts"} <= tables
    assert version == _head_revision() == SCHEMA_REVISION


def _head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def test_sync_feeds_adds_updates_and_deactivates(store: Store) -> None:
    store.sync_feeds([("http://a/1", "One"), ("http://a/2", None)], NOW)
    store.sync_feeds([("http://a/2", "Two"), ("http://a/3", None)], NOW)
    feeds = {f.url: f for f in store.feeds()}
    assert sorted(feeds) == ["http://a/2", "http://a/3"]
    assert feeds["http://a/2"].name == "Two"
    store.sync_feeds([("http://a/1", "One")], NOW)  # a feed put back keeps its history
    assert [f.url for f in store.feeds()] == ["http://a/1"]


def test_a_claimed_feed_is_not_claimed_again_until_its_lease_ends(store: Store) -> None:
    store.sync_feeds([("http://a/1", None)], NOW)
    assert [f.url for f in store.claim_feeds(NOW, LEASE)] == ["http://a/1"]
    assert store.claim_feeds(NOW + timedelta(minutes=1), LEASE) == []
    later = NOW + LEASE + timedelta(seconds=1)
    assert [f.url for f in store.claim_feeds(later, LEASE)] == ["http://a/1"]


def test_due_only_claims_feeds_whose_time_has_come(store: Store) -> None:
    store.sync_feeds([("http://a/1", None)], NOW)
    (feed,) = store.claim_feeds(NOW, LEASE)
    _poll(store, feed.id, [])  # next check in 10 minutes, lease released
    assert store.claim_feeds(NOW + timedelta(minutes=1), LEASE) == []
    assert len(store.claim_feeds(NOW + timedelta(minutes=1), LEASE, due_only=False)) == 1


def test_record_poll_keeps_validators_and_resets_errors(store: Store) -> None:
    store.sync_feeds([("http://a/1", None)], NOW)
    (feed,) = store.claim_feeds(NOW, LEASE)
    store.record_poll_failure(feed.id, NOW, error="HTTP 503", next_check_at=NOW)
    store.record_poll_failure(feed.id, NOW, error="HTTP 503 again", next_check_at=NOW)
    (failing,) = store.feeds()
    assert (failing.error_count, failing.last_error) == (2, "HTTP 503 again")
    _poll(store, feed.id, [])
    (ok,) = store.feeds()
    assert (ok.error_count, ok.last_error, ok.etag) == (0, None, '"v1"')
    assert ok.last_modified == "Sun, 01 Mar 2026 11:00:00 GMT"
    assert ok.first_polled_at == NOW
    assert ok.next_check_at == NOW + timedelta(minutes=10)


def test_identities_are_found_by_guid_link_or_text_within_the_feed(store: Store) -> None:
    store.sync_feeds([("http://a/1", None), ("http://a/2", None)], NOW)
    first, second = store.claim_feeds(NOW, LEASE)
    by_link = Item(title="By link", link="http://a/1/by-link", feed_url="http://a/1")
    by_text = Item(title="By text only", feed_url="http://a/1")
    _poll(store, first.id, [SeenItem(by_link), SeenItem(by_text)])
    _poll(store, second.id, [SeenItem(Item(title="Elsewhere", link="http://a/2/x"))])
    assert store.item_identities(first.id, [], ["http://a/1/by-link", "http://a/2/x"], []) == [
        (None, "http://a/1/by-link", by_link.content_hash())
    ]
    assert store.item_identities(first.id, ["no-such-guid"], [], [by_text.content_hash()]) == [
        (None, None, by_text.content_hash())
    ]
    assert store.item_identities(second.id, [], [], [by_text.content_hash()]) == []
    assert store.item_identities(first.id, [], [], []) == []


def test_an_item_is_seen_once_and_its_alert_created_once(store: Store) -> None:
    store.sync_feeds([("http://a/1", None)], NOW)
    (feed,) = store.claim_feeds(NOW, LEASE)
    item = Item(title="Lavrov in Havana", guid="g-1", feed_url="http://a/1")
    assert _poll(store, feed.id, [SeenItem(item, (_alert("alrt_1"),))]) == (1, 1)
    found = store.item_identities(feed.id, guids=["g-1", "g-2"], links=[], hashes=[])
    assert found == [("g-1", None, item.content_hash())]
    # the same item again (a second writer, or a re-poll) records nothing and alerts nothing
    assert _poll(store, feed.id, [SeenItem(item, (_alert("alrt_2"),))]) == (0, 0)
    assert [row.alert_id for row in store.outbox.recent_alerts()] == ["alrt_1"]


def test_deliveries_are_claimed_once_and_follow_their_state(store: Store) -> None:
    store.sync_feeds([("http://a/1", None)], NOW)
    (feed,) = store.claim_feeds(NOW, LEASE)
    seen = [SeenItem(Item(title=f"t{i}", guid=f"g{i}"), (_alert(f"alrt_{i}"),)) for i in range(3)]
    _poll(store, feed.id, seen)
    assert store.outbox.claim_deliveries(NOW, LEASE, {"other-hook": 100}) == []
    due = store.outbox.claim_deliveries(NOW, LEASE, {"hook": 100})
    assert sorted(d.alert_id for d in due) == ["alrt_0", "alrt_1", "alrt_2"]
    assert all(d.payload.startswith("{") and d.attempts == 0 for d in due)
    assert store.outbox.claim_deliveries(NOW, LEASE, {"hook": 100}) == []  # leased

    ok = AttemptRecord("delivered", 200, None, 12)
    retry = AttemptRecord("transient", 503, "HTTP 503 Service Unavailable", 9)
    store.outbox.record_attempt(due[0].id, NOW, ok, state=DELIVERED, next_attempt_at=None)
    store.outbox.record_attempt(due[1].id, NOW, retry, state=PENDING, next_attempt_at=NOW + LEASE)
    store.outbox.record_attempt(due[2].id, NOW, retry, state=FAILED, next_attempt_at=None)
    assert store.outbox.delivery_counts() == {DELIVERED: 1, PENDING: 1, FAILED: 1}
    assert store.outbox.next_delivery_at(["hook"]) == NOW + LEASE
    (again,) = store.outbox.claim_deliveries(NOW + LEASE, LEASE, {"hook": 100})
    assert (again.id, again.attempts) == (due[1].id, 1)


def test_a_delivery_held_by_a_dead_worker_is_taken_over(store: Store) -> None:
    store.sync_feeds([("http://a/1", None)], NOW)
    (feed,) = store.claim_feeds(NOW, LEASE)
    _poll(store, feed.id, [SeenItem(Item(title="t", guid="g"), (_alert("alrt_x"),))])
    hook = {"hook": 1}
    assert len(store.outbox.claim_deliveries(NOW, LEASE, hook)) == 1  # the worker dies here
    assert store.outbox.claim_deliveries(NOW + LEASE - timedelta(seconds=1), LEASE, hook) == []
    assert len(store.outbox.claim_deliveries(NOW + LEASE + timedelta(seconds=1), LEASE, hook)) == 1


def test_datetimes_come_back_aware_utc_and_naive_ones_are_refused(store: Store) -> None:
    store.sync_feeds([("http://a/1", None)], NOW)
    (feed,) = store.feeds()
    assert feed.next_check_at == NOW
    assert feed.next_check_at.tzinfo is not None
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        store.sync_feeds([("http://a/2", None)], datetime(2026, 1, 1))


def test_downgrading_and_upgrading_again_keeps_the_data(empty_storage_url: str) -> None:
    # SQLite batch migrations rebuild a table by dropping it; dropping `feeds` that way would
    # cascade into items (caught in 0004's and 0007's downgrades)
    store = Store.open(empty_storage_url)
    store.sync_feeds([("http://a/1", None)], NOW)
    feed_id = store.feeds()[0].id
    assert _poll(store, feed_id, [SeenItem(Item(title="kept", guid="k"))]) == (1, 0)
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")
    store.close()
    again = Store.open(empty_storage_url)  # upgrades to the head again
    with again.engine.connect() as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(sa.table("items"))) == 1
    assert again.feeds()[0].etag == '"v1"'
    again.close()


def test_migrations_build_exactly_the_schema_the_code_declares(empty_storage_url: str) -> None:
    store = Store.open(empty_storage_url)
    with store.engine.connect() as db:
        context = MigrationContext.configure(db, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    store.close()
    assert differences == []


def test_renewing_leases_extends_only_those_the_owner_still_holds(store: Store) -> None:
    store.sync_feeds([(f"http://a/{n}", None) for n in range(4)], NOW)
    mine = store.claim_feeds(NOW, LEASE, due_only=False, limit=3, owner="run-a")
    (theirs,) = store.claim_feeds(NOW, LEASE, due_only=False, owner="run-b")
    polled = mine[0]
    store.record_polls(
        [PollRecord(polled.id, NOW, NOW + timedelta(minutes=10), None, None, None, owner="run-a")]
    )
    later = NOW + timedelta(minutes=4)

    assert store.renew_leases("run-a", later, LEASE) == 2

    with store.engine.connect() as db:
        leases = {row.id: row.lease_until for row in db.execute(sa.select(feeds))}
    assert {leases[f.id] for f in mine[1:]} == {later + LEASE}
    assert leases[polled.id] is None  # its poll ended its lease: not taken again
    assert leases[theirs.id] == NOW + LEASE
    # a lease already over is not revived either
    assert store.renew_leases("run-b", NOW + LEASE + timedelta(seconds=1), LEASE) == 0
