"""Group commit for poll outcomes: the polls finishing together share one transaction.

Why (measured on the shared nginx farm, 1,000 feeds answering 304): with one transaction per
feed, opened from several worker threads at once, SQLite's writers queue on its file lock and
its busy handler sleeps between tries; the warm cycle spent most of its time there. Here one
writer takes everything that accumulated while it last wrote and records it in one transaction,
so a cycle of 1,000 polls costs a handful of commits instead of 1,000 contended ones.

Nothing changes for a single poll's guarantees: its result is known once the transaction holding
it has committed. If a shared transaction fails, its polls are retried one by one, so one poll's
bad data cannot fail the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from monitor.store.store import PollFailure, PollRecord, PollResult, Store

log = logging.getLogger(__name__)
MAX_BATCH = 256  # polls per transaction; bounds how long one transaction holds the write lock
# How long a batch waits for more polls before it is written. Each batch is a trip to a worker
# thread whose SQLAlchemy code competes with the event loop for the GIL; on the farm's warm
# cycle (1,000 polls in ~2 s) writing as soon as a poll arrived made ~10x more batches and cost
# ~0.6 s more CPU (median of 6 runs each, bench/peer.py). A poll's outcome is recorded (and
# its alerts sent) at most this much later.
LINGER = 0.02  # seconds
# Outcomes waiting to be written (queued or in the transaction under way) before a poll that
# finished waits to hand its own over, still holding its slot: when the store is slower than the
# feeds (a cold `run --once` over thousands of feeds, a remote PostgreSQL), parsed items pile
# up no further than this.
MAX_PENDING = 2 * MAX_BATCH

Poll = PollRecord | PollFailure
Written = PollResult | None | Exception


class PollWriter:
    """Records poll outcomes for the event loop, batching those that arrive together."""

    def __init__(self, store: Store, max_batch: int = MAX_BATCH) -> None:
        self._store = store
        self._max_batch = max_batch
        self._queue: list[tuple[Poll, asyncio.Future[PollResult | None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._writing = 0  # outcomes in the transaction under way
        self._room = asyncio.Event()  # set when a transaction ends

    async def make_room(self) -> None:
        """Wait while `MAX_PENDING` outcomes or more wait to be written."""
        while len(self._queue) + self._writing >= MAX_PENDING:
            self._room.clear()
            await self._room.wait()

    async def record(self, poll: PollRecord) -> PollResult:
        result = await self._submit(poll)
        assert result is not None
        return result

    async def record_failure(self, failure: PollFailure) -> None:
        await self._submit(failure)

    async def _submit(self, poll: Poll) -> PollResult | None:
        future: asyncio.Future[PollResult | None] = asyncio.get_running_loop().create_future()
        self._queue.append((poll, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="poll-writer")
        # shielded: a poll cancelled while its outcome is being written still gets it written
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._queue:
            await asyncio.sleep(LINGER)
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            self._writing = len(batch)
            try:
                outcomes = await asyncio.to_thread(self._write, [poll for poll, _ in batch])
            finally:
                self._writing = 0
                self._room.set()
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def _write(self, polls: Sequence[Poll]) -> list[Written]:
        outcomes = self._write_all(polls)
        failures = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
        if len(failures) == len(outcomes) and failures:  # not one poll could be written
            self._store.writes.failed(failures[-1])
        else:
            self._store.writes.succeeded()
        return outcomes

    def _write_all(self, polls: Sequence[Poll]) -> list[Written]:
        try:
            return list(self._store.record_polls(polls))
        except Exception as exc:
            if len(polls) == 1:
                return [exc]
            log.warning(
                "writing %d polls together failed (%s); writing them one by one", len(polls), exc
            )
        outcomes: list[Written] = []
        for poll in polls:
            try:
                outcomes.extend(self._store.record_polls([poll]))
            except Exception as exc:  # this poll's own failure, reported to its refresh
                outcomes.append(exc)
        return outcomes
