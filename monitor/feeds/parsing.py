"""Where feeds are parsed: off the event loop, and on every core when there are many feeds.

feedparser is pure Python, so parses in threads take turns on one core (the GIL). With many
feeds, a pool of worker processes (one per core, started on first use from a fork server that
has only the parser imported) parses in parallel; results (ParsedFeed, Items) pickle. With few feeds
the pool is not worth its start-up, and a worker thread is used.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial

from monitor.feeds.parser import ParsedFeed, ParseFailed, parse_feed
from monitor.processes import forkserver

# Below this many feeds, a worker thread: the pool's start-up (~0.3 s) is not worth it. Above,
# measured on the 1,000-feed farm (../shared/bench) on 2 loaded cores: cold cycle 31.6 s and
# 32.8 s with threads, 25.9 s and 28.8 s with processes.
POOL_MIN_FEEDS = 50
_pool: ProcessPoolExecutor | None = None
log = logging.getLogger(__name__)


def _process_pool() -> ProcessPoolExecutor:
    global _pool  # noqa: PLW0603 - one pool per process, started on first use
    if _pool is None:
        context = forkserver()  # monitor.processes: it imports only the parser
        _pool = ProcessPoolExecutor(
            max_workers=os.cpu_count() or 2, mp_context=context, initializer=_worker_signals
        )
    return _pool


def _worker_signals() -> None:
    """Ctrl-C reaches the whole process group: the daemon stops its workers, they do not."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
) -> ParsedFeed | ParseFailed:
    call = partial(
        parse_feed, body, url=url, base_url=base_url, headers=dict(headers), feed_name=feed_name
    )
    if processes:
        try:
            return await asyncio.get_running_loop().run_in_executor(_process_pool(), call)
        except BrokenProcessPool:  # a worker died (killed, out of memory): start afresh
            log.warning("a parsing process died; starting new ones")
            _discard_pool()
    return await asyncio.to_thread(call)


def _discard_pool() -> None:
    global _pool  # noqa: PLW0603
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
    _pool = None
