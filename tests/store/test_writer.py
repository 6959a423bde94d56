"""PollWriter: polls finishing together share a transaction; one bad poll fails only itself."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest

from monitor.models import Item
from monitor.store import NewAlert, PollResult, SeenItem, Store
from monitor.store import store as store_module
from monitor.store import writer as writer_module
from monitor.store.store import PollFailure, PollRecord
from monitor.store.writer import PollWriter

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class CountingStore(Store):
    """The real store, counting the transactions `record_polls` opens; `hold_first` makes the
    first one wait (its first event set when it starts, the second awaited before writing)."""

    transactions = 0
    hold_first: tuple[threading.Event, threading.Event] | None = None

    def record_polls(self, polls: Sequence[PollRecord | PollFailure]) -> list[PollResult | None]:
        self.transactions += 1
        if self.hold_first is not None and self.transactions == 1:
            started, go_on = self.hold_first
            started.set()
            assert go_on.wait(10)
        return super().record_polls(polls)


@pytest.fixture
def store(storage_url: str) -> Iterator[CountingStore]:
    Store.open(storage_url).close()  # migrate
    opened = CountingStore(Store.open(storage_url).engine)
    yield opened
    opened.close()


def _feeds(store: Store, count: int) -> dict[str, int]:
    store.sync_feeds([(f"http://feeds.test/{n}", None) for n in range(count)], NOW)
    return {feed.url: feed.id for feed in store.feeds()}


def _poll(feed_id: int, *items: Item, alerts: tuple[NewAlert, ...] = ()) -> PollRecord:
    return PollRecord(
        feed_id,
        NOW,
        next_check_at=NOW + timedelta(minutes=10),
        etag=f'"{feed_id}"',
        last_modified=None,
        title=f"Feed {feed_id}",
        seen=tuple(SeenItem(item, alerts) for item in items),
        status=200,
    )


async def test_concurrent_polls_share_transactions(store: CountingStore) -> None:
    ids = _feeds(store, 40)
    writer = PollWriter(store, max_batch=16)
    polls = [_poll(i, Item(title=f"News {i}", guid=f"g{i}")) for i in ids.values()]
    failures = [PollFailure(i, NOW, "HTTP 500", NOW + timedelta(minutes=5)) for i in ids.values()]
    results = await asyncio.gather(
        *(writer.record(poll) for poll in polls[:30]),
        *(writer.record_failure(failure) for failure in failures[30:]),
    )
    assert results[:30] == [PollResult(1, 0)] * 30
    assert results[30:] == [None] * 10
    # everything arrived in one loop iteration: ceil(40 / 16) transactions, not 40
    assert store.transactions == 3
    states = {feed.id: feed for feed in store.feeds()}
    assert all(states[i].etag == f'"{i}"' for i in list(ids.values())[:30])
    assert all(states[i].error_count == 1 for i in list(ids.values())[30:])


async def test_a_failing_poll_fails_alone(store: CountingStore) -> None:
    ids = list(_feeds(store, 3).values())
    writer = PollWriter(store)
    unserializable = NewAlert("a1", "rule", "high", 90.0, {"bad": object()}, ("hook",))
    good_before, bad, good_after = await asyncio.gather(
        writer.record(_poll(ids[0], Item(title="one", guid="1"))),
        writer.record(_poll(ids[1], Item(title="two", guid="2"), alerts=(unserializable,))),
        writer.record(_poll(ids[2], Item(title="three", guid="3"))),
        return_exceptions=True,
    )
    assert good_before == PollResult(1, 0)
    assert good_after == PollResult(1, 0)
    assert isinstance(bad, TypeError)
    states = {feed.id: feed for feed in store.feeds()}
    assert states[ids[0]].last_success_at is not None
    assert states[ids[1]].last_success_at is None  # its transaction rolled back, item too
    assert states[ids[2]].last_success_at is not None
    seen = store.item_identities(ids[1], ["2"], [], [])
    assert seen == []


async def test_polls_arriving_together_share_one_transaction(store: CountingStore) -> None:
    ids = list(_feeds(store, 6).values())
    writer = PollWriter(store)
    results = await asyncio.gather(*(writer.record(_poll(i)) for i in ids))
    assert results == [PollResult(0, 0)] * 6
    assert store.transactions == 1


async def test_a_batch_waits_a_moment_for_polls_arriving_just_after(
    store: CountingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fewer, larger batches: each is a worker-thread trip competing with the event loop
    monkeypatch.setattr(writer_module, "LINGER", 0.5)  # generous against a loaded machine
    ids = list(_feeds(store, 2).values())
    writer = PollWriter(store)
    first = asyncio.ensure_future(writer.record(_poll(ids[0])))
    await asyncio.sleep(0.01)  # the flush has started and is waiting
    await asyncio.gather(first, writer.record(_poll(ids[1])))
    assert store.transactions == 1


async def test_polls_arriving_while_writing_join_the_next_transaction(
    store: CountingStore,
) -> None:
    ids = list(_feeds(store, 6).values())
    started, go_on = threading.Event(), threading.Event()
    store.hold_first = (started, go_on)
    writer = PollWriter(store)
    first = asyncio.ensure_future(writer.record(_poll(ids[0])))
    assert await asyncio.to_thread(started.wait, 10)  # the first batch is being written
    rest = [asyncio.ensure_future(writer.record(_poll(i))) for i in ids[1:]]
    await asyncio.sleep(0)
    go_on.set()
    await asyncio.gather(first, *rest)
    assert store.transactions == 2


async def test_a_finished_poll_waits_for_room_while_too_many_outcomes_are_unwritten(
    store: CountingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the store is slower than the feeds, polls stop piling outcomes up in memory."""
    monkeypatch.setattr(writer_module, "MAX_PENDING", 3)
    ids = list(_feeds(store, 4).values())
    started, go_on = threading.Event(), threading.Event()
    store.hold_first = (started, go_on)
    writer = PollWriter(store)
    first = asyncio.ensure_future(writer.record(_poll(ids[0])))
    assert await asyncio.to_thread(started.wait, 10)  # one outcome in a transaction held up
    await writer.make_room()  # one pending of three: room at once
    queued = [asyncio.ensure_future(writer.record(_poll(i))) for i in ids[1:3]]
    room = asyncio.ensure_future(writer.make_room())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not room.done()  # three unwritten: the next poll waits
    go_on.set()
    await asyncio.wait_for(room, 10)
    await asyncio.gather(first, *queued)


def _quiet(feed_id: int, owner: str | None, **changes: object) -> PollRecord:
    values: dict[str, object] = {
        "next_check_at": NOW + timedelta(minutes=10),
        "etag": '"same"',
        "last_modified": "Sun, 01 Mar 2026 11:00:00 GMT",
        "title": None,
        "status": 304,
        "owner": owner,
    }
    values.update(changes)
    return PollRecord(feed_id, NOW, **values)  # type: ignore[arg-type]


def test_quiet_polls_written_together_keep_what_they_do_not_change(store: CountingStore) -> None:
    ids = list(_feeds(store, 3).values())
    first = store.record_polls([_poll(ids[0], Item(title="One", guid="g1"))])
    assert first == [PollResult(1, 0)]
    before = {feed.id: feed for feed in store.feeds()}
    later = NOW + timedelta(hours=1)
    polls = [
        PollRecord(ids[0], later, later + timedelta(minutes=7), '"e0"', None, None, status=304),
        PollRecord(
            ids[1],
            later,
            later + timedelta(minutes=8),
            None,
            "lm",
            "New title",
            status=200,
            content_digest="abc",
            moved_to="http://moved.test/1",
        ),
        PollFailure(ids[2], later, "HTTP 503", later + timedelta(minutes=9), status=503),
    ]
    assert store.record_polls(polls) == [PollResult(0, 0), PollResult(0, 0), None]
    after = {feed.id: feed for feed in store.feeds()}
    kept = after[ids[0]]
    assert (kept.etag, kept.last_modified, kept.last_status) == ('"e0"', None, 304)
    assert kept.title == before[ids[0]].title == f"Feed {ids[0]}"  # no title: the old one stays
    assert kept.first_polled_at == NOW  # set by the first poll, never moved
    assert kept.last_checked_at == kept.last_success_at == later
    assert kept.next_check_at == later + timedelta(minutes=7)
    assert kept.last_new_item_at == NOW
    changed = after[ids[1]]
    assert (changed.title, changed.content_digest, changed.moved_to) == (
        "New title",
        "abc",
        "http://moved.test/1",
    )
    assert changed.first_polled_at == later
    assert changed.last_new_item_at is None
    failed = after[ids[2]]
    assert (failed.error_count, failed.last_error, failed.last_status) == (1, "HTTP 503", 503)
    # a success after failures clears them, quiet or not
    store.record_polls([_quiet(ids[2], None)])
    recovered = next(feed for feed in store.feeds() if feed.id == ids[2])
    assert (recovered.error_count, recovered.last_error, recovered.failing_since) == (0, None, None)


@pytest.mark.parametrize("kind", ["quiet", "with items", "failure"])
def test_a_poll_ends_only_the_lease_its_own_replica_holds(store: CountingStore, kind: str) -> None:
    # replica A stalls mid-poll, is taken for dead, B claims the feed again; A's late write must
    # not end B's lease, or a third poll could start while B's is under way
    (feed_id,) = _feeds(store, 1).values()
    lease = timedelta(minutes=5)
    assert [f.id for f in store.claim_feeds(NOW, lease, owner="replica-b")] == [feed_id]
    late: PollRecord | PollFailure
    if kind == "quiet":
        late = _quiet(feed_id, "replica-a")
    elif kind == "with items":
        late = PollRecord(
            feed_id,
            NOW,
            NOW,
            None,
            None,
            None,
            (SeenItem(Item(title="x", guid="x"), ()),),
            owner="replica-a",
        )
    else:
        late = PollFailure(feed_id, NOW, "HTTP 500", NOW, owner="replica-a")
    store.record_polls([late])
    assert store.claim_feeds(NOW, lease, due_only=False, owner="replica-c") == []
    own = _quiet(feed_id, "replica-b")
    if kind == "failure":
        own = PollFailure(feed_id, NOW, "HTTP 500", NOW, owner="replica-b")  # type: ignore[assignment]
    store.record_polls([own])
    assert [f.id for f in store.claim_feeds(NOW, lease, due_only=False, owner="replica-c")] == [
        feed_id
    ]


def test_a_poll_without_an_owner_ends_a_lease_taken_without_one(store: CountingStore) -> None:
    (feed_id,) = _feeds(store, 1).values()
    (claimed,) = store.claim_feeds(NOW, timedelta(minutes=5), due_only=False)
    assert claimed.claimed_by is None
    store.record_polls([_quiet(feed_id, claimed.claimed_by)])
    assert len(store.claim_feeds(NOW, timedelta(minutes=5), due_only=False)) == 1


def test_times_in_another_zone_are_stored_as_the_same_moment(store: CountingStore) -> None:
    ids = list(_feeds(store, 2).values())
    moscow = NOW.astimezone(timezone(timedelta(hours=3)))
    with_items = PollRecord(
        ids[0], moscow, moscow, None, None, None, (SeenItem(Item(title="x", guid="x"), ()),)
    )
    failure = PollFailure(ids[1], moscow, "HTTP 500", moscow)
    store.record_polls([with_items, failure])
    stored = {feed.id: feed for feed in store.feeds()}
    assert stored[ids[0]].first_polled_at == NOW
    assert stored[ids[1]].failing_since == NOW


def _alert(alert_id: str, *hooks: str) -> NewAlert:
    return NewAlert(alert_id, "rule", "high", 90.0, {"id": alert_id}, hooks)


def test_a_batch_of_polls_with_items_counts_each_poll_on_its_own(store: CountingStore) -> None:
    # the items, alerts and outbox rows of all the polls go in together: each poll must still
    # be told its own counts, with failures among them, in any order of feeds
    ids = list(_feeds(store, 4).values())
    store.record_polls([_poll(ids[1], Item(title="Old", guid="old"))])
    later = NOW + timedelta(hours=1)
    polls: list[PollRecord | PollFailure] = [
        _poll(ids[3], Item(title="A", guid="a"), Item(title="B", guid="b")),
        PollFailure(ids[2], later, "HTTP 503", later + timedelta(minutes=9), status=503),
        PollRecord(
            ids[1],
            later,
            later + timedelta(minutes=10),
            None,
            None,
            None,
            (
                SeenItem(Item(title="Old", guid="old"), (_alert("x1", "hook"),)),  # stored
                SeenItem(Item(title="New", guid="new"), (_alert("x2", "hook", "other"),)),
            ),
            status=200,
        ),
        _poll(ids[0]),
    ]
    assert store.record_polls(polls) == [PollResult(2, 0), None, PollResult(1, 1), PollResult(0, 0)]
    assert store.outbox.delivery_counts() == {"pending": 2}  # x2's two webhooks; x1 never made
    states = {feed.id: feed for feed in store.feeds()}
    assert states[ids[3]].last_new_item_at == NOW
    assert states[ids[1]].last_new_item_at == later
    assert states[ids[1]].last_success_at == later
    assert states[ids[0]].last_new_item_at is None
    assert states[ids[2]].error_count == 1


def test_an_item_two_polls_of_a_batch_bring_is_the_first_ones(store: CountingStore) -> None:
    (feed_id,) = _feeds(store, 1).values()
    item = Item(title="Same", guid="same")
    first = _poll(feed_id, item, alerts=(_alert("y1", "hook"),))
    second = _poll(feed_id, item, alerts=(_alert("y2", "hook"),))
    assert store.record_polls([first, second]) == [PollResult(1, 1), PollResult(0, 0)]
    assert store.outbox.delivery_counts() == {"pending": 1}


def test_a_batch_larger_than_one_statement_is_written_whole(
    store: CountingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "ROWS_PER_STATEMENT", 3)
    ids = list(_feeds(store, 4).values())
    polls: list[PollRecord | PollFailure] = [
        _poll(ids[0], *(Item(title=f"A{n}", guid=f"a{n}") for n in range(2))),
        _poll(ids[1], *(Item(title=f"B{n}", guid=f"b{n}") for n in range(5))),  # over, alone
        _poll(ids[2], Item(title="C", guid="c"), alerts=(_alert("z1", "hook"),)),
        _poll(ids[3], Item(title="D", guid="d"), alerts=(_alert("z2", "hook"),)),
    ]
    assert store.record_polls(polls) == [
        PollResult(2, 0),
        PollResult(5, 0),
        PollResult(1, 1),
        PollResult(1, 1),
    ]
    assert store.transactions == 1
    assert store.outbox.delivery_counts() == {"pending": 2}
    assert len(store.item_identities(ids[1], [f"b{n}" for n in range(5)], [], [])) == 5
