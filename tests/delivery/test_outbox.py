"""The outbox's delivery queries on every backend (SQLite and PostgreSQL): claims with owners,
releasing a dead owner's claims, next due times, requeue, webhook states, listing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from monitor.store import DELIVERED, FAILED, PENDING, AttemptRecord, Store
from monitor.store.outbox import ORPHANED
from monitor.store.tables import deliveries
from tests.delivery.support import store_with_alerts

LEASE = timedelta(minutes=2)
FAIL = AttemptRecord("transient", 503, "HTTP 503 Service Unavailable", 5)
OK = AttemptRecord("delivered", 200, None, 5)


@pytest.fixture
def store(storage_url: str) -> Iterator[Store]:
    opened = Store.open(storage_url)
    store_with_alerts(None, 3, ("a", "b"), store=opened)
    yield opened
    opened.close()


def test_claims_per_webhook_limit_and_record_their_owner(store: Store) -> None:
    now = datetime.now(UTC)
    claimed = store.outbox.claim_deliveries(now, LEASE, {"a": 2, "b": 0}, owner="me|1")
    assert [d.webhook for d in claimed] == ["a", "a"]
    assert store.outbox.leases_held(now, ["a", "b"]) == {"me|1": 2}
    assert store.outbox.release("someone-else") == 0
    assert store.outbox.release("me|1", [claimed[0].id]) == 1
    assert store.outbox.leases_held(now, ["a"]) == {"me|1": 1}
    assert store.outbox.release("me|1") == 1
    assert store.outbox.leases_held(now, ["a"]) == {}


def test_next_delivery_times_wait_for_leases_and_retries(store: Store) -> None:
    now = datetime.now(UTC)
    times = store.outbox.next_delivery_times(["a", "b"])
    assert set(times) == {"a", "b"}
    assert all(t <= now for t in times.values())
    store.outbox.claim_deliveries(now, LEASE, {"a": 100}, owner="x")
    leased = store.outbox.next_delivery_times(["a"])["a"]
    assert now + LEASE - timedelta(seconds=1) <= leased <= now + LEASE + timedelta(seconds=1)
    assert store.outbox.next_delivery_at(["a", "b"]) == times["b"]


def test_requeue_failed_or_by_id_with_a_fresh_budget(store: Store) -> None:
    now = datetime.now(UTC)
    due = store.outbox.claim_deliveries(now, LEASE, {"a": 100, "b": 100})
    for delivery in due:
        state = FAILED if delivery.webhook == "a" else DELIVERED
        store.outbox.record_attempt(
            delivery.id, now, FAIL if state == FAILED else OK, state=state, next_attempt_at=None
        )
    assert store.outbox.requeue(now) == 0
    assert store.outbox.requeue(now, failed=True, webhook="b") == 0
    assert store.outbox.requeue(now, failed=True) == 3
    assert store.outbox.delivery_counts() == {PENDING: 3, DELIVERED: 3}
    assert store.outbox.requeue(now, alert_ids=["alrt_0"], webhook="b") == 1
    rows = store.outbox.recent_alerts(50, state=PENDING)
    assert len(rows) == 4
    assert all(r.attempts == 1 for r in rows)  # attempts made, history kept
    assert store.outbox.known_alerts(["alrt_0", "alrt_x"]) == {"alrt_0"}


def test_webhook_states_disable_and_enable(store: Store) -> None:
    now = datetime.now(UTC)
    store.outbox.disable_webhook("a", now, "HTTP 410 Gone", "digest1")
    store.outbox.disable_webhook("a", now, "HTTP 410 Gone again", "digest2")
    assert store.outbox.disabled_webhooks() == {"a": ("HTTP 410 Gone again", "digest2")}
    states = store.outbox.webhook_states()
    assert states["a"].disabled_at is not None
    assert states["b"].disabled_at is None
    assert states["a"].counts == {PENDING: 3}
    assert store.outbox.enable_webhook("a", now)
    assert not store.outbox.enable_webhook("a", now)
    assert store.outbox.disabled_webhooks() == {}


def test_recent_alerts_filter_by_rule_and_state(store: Store) -> None:
    assert len(store.outbox.recent_alerts(50, rule_id="russia-cuba-contacts")) == 6
    assert store.outbox.recent_alerts(50, rule_id="other") == []
    assert store.outbox.recent_alerts(50, state=FAILED) == []
    assert len(store.outbox.recent_alerts(2)) == 2


def test_a_late_outcome_never_overwrites_a_row_claimed_again_or_rerouted(store: Store) -> None:
    now = datetime.now(UTC)
    (first,) = store.outbox.claim_deliveries(now, LEASE, {"a": 1}, owner="slow")
    later = now + LEASE + timedelta(seconds=1)  # the slow owner's lease ran out: taken over
    (again,) = store.outbox.claim_deliveries(later, LEASE, {"a": 1}, owner="fast")
    assert again.id == first.id
    assert not store.outbox.record_attempt(
        first.id, later, FAIL, state=FAILED, next_attempt_at=None, owner="slow"
    )
    assert store.outbox.leases_held(later, ["a"]) == {"fast": 1}  # still the new owner's
    assert store.outbox.record_attempt(
        first.id, later, OK, state=DELIVERED, next_attempt_at=None, owner="fast"
    )
    assert not store.outbox.record_attempt(  # a row no longer pending is not changed either
        first.id, later, FAIL, state=PENDING, next_attempt_at=later, owner="fast"
    )
    (row,) = [r for r in store.outbox.recent_alerts(50) if r.state == DELIVERED]
    assert (row.alert_id, row.webhook, row.attempts) == (first.alert_id, "a", 3)  # history kept


def test_deliveries_of_webhooks_not_configured_are_orphaned_kept_and_replayable(
    store: Store,
) -> None:
    now = datetime.now(UTC)
    (leased,) = store.outbox.claim_deliveries(now, LEASE, {"b": 1}, owner="busy")
    assert store.outbox.orphan(["a"], now) == {"b": 2}  # the one in flight is left to its owner
    assert store.outbox.delivery_counts() == {PENDING: 4, ORPHANED: 2}
    orphans = store.outbox.recent_alerts(50, state=ORPHANED)
    assert {r.webhook for r in orphans} == {"b"}
    assert all("not in the config" in (r.last_error or "") for r in orphans)
    assert store.outbox.next_delivery_times(["b"]) == {"b": leased_until(store, leased.id)}

    later = now + timedelta(minutes=11)
    assert store.outbox.revive_orphans(["b"], later - timedelta(minutes=10), later) == {}
    assert store.outbox.revive_orphans(["a"], now, now) == {}  # only the webhooks given
    assert store.outbox.requeue(later, alert_ids=[orphans[0].alert_id], webhook="b") == 1
    assert store.outbox.revive_orphans(["b"], now, later) == {"b": 1}  # orphaned recently
    assert store.outbox.delivery_counts() == {PENDING: 6}


def leased_until(store: Store, delivery_id: int) -> datetime:
    with store.engine.connect() as db:
        value = db.scalar(sa.select(deliveries.c.lease_until).where(deliveries.c.id == delivery_id))
    assert isinstance(value, datetime)
    return value


def test_a_claim_due_by_a_deadline_leaves_retries_due_after_it(store: Store) -> None:
    now = datetime.now(UTC)
    first, second, third = store.outbox.claim_deliveries(now, LEASE, {"a": 3}, owner="me")
    for delivery, retry_at in ((first, now + timedelta(seconds=1)), (second, now)):
        store.outbox.record_attempt(
            delivery.id, now, FAIL, state=PENDING, next_attempt_at=retry_at, owner="me"
        )
    store.outbox.release("me", [third.id])
    later = now + timedelta(seconds=5)  # every row is due by now; a pass began at `now`
    taken = store.outbox.claim_deliveries(later, LEASE, {"a": 3}, owner="me", due_by=now)
    assert sorted(d.id for d in taken) == sorted([second.id, third.id])
    rest = store.outbox.claim_deliveries(later, LEASE, {"a": 3}, owner="me")
    assert [d.id for d in rest] == [first.id]  # without a deadline, due now
