"""PollWriter: polls finishing together share a transaction; one bad poll fails only itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from monitor.models import Item
from monitor.store import NewAlert, PollResult, SeenItem, Store
from monitor.store.store import PollFailure, PollRecord
from monitor.store.writer import PollWriter

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class CountingStore(Store):
    """The real store, counting the transactions `record_polls` opens."""

    transactions = 0

    def record_polls(self, polls: Sequence[PollRecord | PollFailure]) -> list[PollResult | None]:
        self.transactions += 1
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


async def test_polls_arriving_while_writing_join_the_next_transaction(
    store: CountingStore,
) -> None:
    ids = list(_feeds(store, 6).values())
    writer = PollWriter(store)
    first = asyncio.ensure_future(writer.record(_poll(ids[0])))
    await asyncio.sleep(0)  # the flush has started with one poll
    rest = [writer.record(_poll(i)) for i in ids[1:]]
    await asyncio.gather(first, *rest)
    assert store.transactions == 2
