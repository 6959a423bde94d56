"""Where feeds are parsed: off the event loop, in a thread, and a large document in a worker.

feedparser is pure Python, so parses in threads take turns on one core (the GIL). A document of
LARGE_BODY or more parses in a worker process (started from a fork server that has only the
parser imported; results, ParsedFeed and Items, pickle): the memory its parse takes goes away
with the worker instead of staying in this process's heap. The pool stops once idle, so a
daemon holds no workers between large documents; starting one again costs a fork, not an
interpreter's start.

Workers once also took every parse while parses queued up, to parse on every core. That bought
a daemon's first cycle over many feeds little (the main process, which matches and writes,
stayed the bottleneck) and later cycles nothing, as a changed feed parses only its new entries
(monitor.feeds.entries), at the cost of two more processes during every burst of polls and the
fork server and resource tracker for good (docs/operations.md, "Processes"). `run --once`
parses on every core by splitting its feeds between processes instead (monitor.runtime.split).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial

from monitor.feeds.parser import ParsedFeed, ParseFailed, parse_feed
from monitor.processes import forkserver

# Below this many feeds, threads only: a fork server and a worker are not worth it.
POOL_MIN_FEEDS = 50
# A document this large parses in a worker whenever workers may be used: the memory its parse
# takes goes away with the worker instead of staying in the daemon's heap.
LARGE_BODY = 1 << 20
IDLE_SECONDS = 60.0  # a pool that parsed nothing for this long is stopped

Parse = Callable[[], ParsedFeed | ParseFailed]
log = logging.getLogger(__name__)


def _worker_signals() -> None:
    """Ctrl-C reaches the whole process group: the daemon stops its workers, they do not."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Parsers:
    """Threads, and a pool of worker processes for large documents, stopped once idle."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        idle_seconds: float = IDLE_SECONDS,
        workers: int | None = None,
    ) -> None:
        self._clock = clock
        self._idle_seconds = idle_seconds
        self._workers = workers or os.cpu_count() or 2
        self._pool: ProcessPoolExecutor | None = None
        self._in_pool = 0
        self._idle_since = 0.0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def pool_running(self) -> bool:
        return self._pool is not None

    async def parse(self, call: Parse, *, size: int, processes: bool) -> ParsedFeed | ParseFailed:
        """Run `call` (a picklable parse of a `size`-byte body) in a worker process when
        `processes` allows it and the body is large, else in a thread."""
        if processes and size >= LARGE_BODY:
            try:
                return await self._in_worker(call)
            except BrokenProcessPool:  # a worker died (killed, out of memory): in a thread
                pass
        return await asyncio.to_thread(call)

    async def _in_worker(self, call: Parse) -> ParsedFeed | ParseFailed:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers, mp_context=forkserver(), initializer=_worker_signals
            )
        loop, pool = asyncio.get_running_loop(), self._pool
        self._in_pool += 1
        try:
            return await loop.run_in_executor(pool, call)
        except BrokenProcessPool:
            # every parse that was in the broken pool ends here: only the first one stops it,
            # never a pool started since by another parse
            if self._pool is pool:
                log.warning("a parsing process died; starting new ones")
                self.stop()
            raise
        finally:
            self._in_pool -= 1
            if not self._in_pool:
                self._idle_since = self._clock()
                self._check_later(loop)

    def _check_later(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(self._idle_seconds, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self.stop_if_idle() and self._pool is not None and not self._in_pool:
            self._check_later(asyncio.get_running_loop())  # the clock says not yet: look again

    def stop_if_idle(self) -> bool:
        """Stop the workers if none has parsed anything for `idle_seconds`; True if stopped."""
        if self._pool is None or self._in_pool:
            return False
        if self._clock() - self._idle_since < self._idle_seconds:
            return False
        log.debug("no feed parsed for %.0f s: stopping the parsing processes", self._idle_seconds)
        self.stop()
        return True

    def stop(self) -> None:
        """Stop the workers (the next parse that needs them starts new ones)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None


_parsers = Parsers()  # one per process: the daemon's parses share its workers


def use_processes(feed_count: int) -> bool:
    return feed_count >= POOL_MIN_FEEDS and (os.cpu_count() or 1) > 1


async def parse_off_loop(
    body: bytes,
    *,
    url: str,
    base_url: str,
    headers: Mapping[str, str],
    feed_name: str,
    processes: bool,
    parsers: Parsers | None = None,
    known: bytes = b"",
) -> ParsedFeed | ParseFailed:
    """`parse_feed` in a thread or a worker process (`known`: the digests of the entries the
    last document had, which are not parsed again)."""
    call = partial(
        parse_feed,
        body,
        url=url,
        base_url=base_url,
        headers=dict(headers),
        feed_name=feed_name,
        known=known,
    )
    return await (parsers or _parsers).parse(call, size=len(body), processes=processes)
