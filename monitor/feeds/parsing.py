"""Where feeds are parsed: off the event loop, and on every core while parses queue up.

feedparser is pure Python, so parses in threads take turns on one core (the GIL). When parses
queue up in a config of many feeds (a cold start, a burst of changed feeds), a pool of worker
processes (one per core, started from a fork server that has only the parser imported) parses
in parallel; results (ParsedFeed, Items) pickle. Each worker holds the parser and the memory of
its largest document, so the pool is stopped once it has been idle for a while: a daemon whose
feeds change now and then parses them in a thread and holds no workers between bursts. Starting
workers again from the fork server costs a fork each, not an interpreter's start.
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

# Below this many feeds, threads only: the pool's start-up (~0.3 s) is not worth it. Above,
# measured on the 1,000-feed farm (../shared/bench) on 2 loaded cores: cold cycle 31.6 s and
# 32.8 s with threads, 25.9 s and 28.8 s with processes.
POOL_MIN_FEEDS = 50
# Parses already running in threads when one more starts the pool: two share a core with the
# event loop; a third means the parsing outruns one core.
BACKLOG = 2
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
    """Threads while parsing is light, a pool of worker processes while it is not."""

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
        self._in_threads = 0
        self._in_pool = 0
        self._idle_since = 0.0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def pool_running(self) -> bool:
        return self._pool is not None

    async def parse(self, call: Parse, *, size: int, processes: bool) -> ParsedFeed | ParseFailed:
        """Run `call` (a picklable parse of a `size`-byte body) in a worker process when
        `processes` allows it and the pool is running, parses queue up or the body is large;
        else in a thread."""
        busy = self._pool is not None or self._in_threads >= BACKLOG or size >= LARGE_BODY
        if processes and busy:
            try:
                return await self._in_worker(call)
            except BrokenProcessPool:  # a worker died (killed, out of memory): in a thread
                pass
        self._in_threads += 1
        try:
            return await asyncio.to_thread(call)
        finally:
            self._in_threads -= 1

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
