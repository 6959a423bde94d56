"""`run --once` on every core: the feeds split between processes forked once the config is loaded.

One process polls on one core at most: fetching, parsing, matching and writing share the GIL.
A cycle over many feeds is split instead: the first process forks the others after the modules,
the config and the compiled rules are loaded (they share those pages), and each polls its share
of the feeds with its share of `fetch.per_host`, so a host never sees more requests at once than
configured. The others report each feed polled through a pipe; the first adds them to its
summary and, once they have all exited, checks feed health and delivers, alone.

The first process claims every feed before the fork, as a `run --once` in one process does,
and deals them out (`deal`): a child's feeds are leased by the first process, which polls again
what a child that died did not report, and if the first process dies its leases are a dead
process's, which the next run releases.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TypeVar

from monitor.config.settings import LoadedConfig
from monitor.processes import can_fork, fork

# Below this many feeds, one process: the fork and a second store and HTTP client cost about
# what polling a few dozen unchanged feeds does.
SPLIT_MIN_FEEDS = 100

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Share:
    """Process `index` of `count`."""

    index: int
    count: int

    def of(self, total: int) -> int:
        """This process's part of `total` slots: the parts add up to `total`."""
        return total // self.count + (1 if self.index < total % self.count else 0)


@dataclass(frozen=True, slots=True)
class Child:
    pid: int
    reports: int  # the read end of the pipe it writes a line to per feed polled


def cores() -> int:
    """The cores this process may run on (a container's CPU set, taskset): Linux only, as the
    split is."""
    return len(os.sched_getaffinity(0))


def processes_for(config: LoadedConfig, requested: int | None) -> int:
    """How many processes poll: `requested`, else one per core once there are SPLIT_MIN_FEEDS
    feeds; never more than `fetch.per_host` (each needs a request to a host of its own) nor
    than the feeds; one when requests to a host must be spaced (`fetch.host_spacing`: one
    process keeps the turns), off Linux (macOS's system libraries do not survive a fork without
    an exec), or when threads run (monitor.processes.can_fork)."""
    fetch = config.settings.fetch
    feeds = sum(1 for feed in config.settings.feeds if feed.enabled)
    if fetch.host_spacing > timedelta(0) or not can_fork():
        return 1
    if requested is None:
        requested = cores() if feeds >= SPLIT_MIN_FEEDS else 1
    return max(1, min(requested, fetch.per_host, feeds))


def deal(feeds: Sequence[T], count: int, host: Callable[[T], str]) -> list[list[T]]:
    """`feeds` dealt into `count` parts like cards, host by host: each part gets its share of
    every host's feeds (give or take one), in their order, as it gets its share of the host's
    connections."""
    by_host: dict[str, list[T]] = {}
    for feed in feeds:
        by_host.setdefault(host(feed), []).append(feed)
    host_by_host = [feed for same_host in by_host.values() for feed in same_host]
    return [host_by_host[index::count] for index in range(count)]


def share_config(config: LoadedConfig, share: Share) -> LoadedConfig:
    """`config` with the share's part of `fetch.per_host` (feed and article hosts alike)."""
    fetch = config.settings.fetch
    settings = config.settings.model_copy(
        update={"fetch": fetch.model_copy(update={"per_host": share.of(fetch.per_host)})}
    )
    return dataclasses.replace(config, settings=settings)


def fork_children(count: int, body: Callable[[int, int], int]) -> tuple[Child, ...]:
    """Fork `count` children; child `n` (1-based) runs `body(n, fd)` and exits with what it
    returns, `fd` being its end of the pipe. Call with no other thread running."""
    children: list[Child] = []
    for number in range(1, count + 1):
        read, write = os.pipe()
        inherited = [read, *(child.reports for child in children)]
        pid = fork(partial(_child, body, number, write, inherited))
        os.close(write)
        children.append(Child(pid, read))
    return tuple(children)


def _child(
    body: Callable[[int, int], int], number: int, write: int, inherited: list[int]
) -> int:  # pragma: no cover - runs in the child
    for fd in inherited:
        os.close(fd)
    try:
        return body(number, write)
    except KeyboardInterrupt:  # the parent reports it (monitor.processes.fork: 130)
        raise
    except BaseException:
        log.exception("polling process %d failed", number)
        return 1


async def follow(child: Child, on_line: Callable[[str], None]) -> int:
    """Hand each line `child` writes to `on_line` until it closes its end; then its exit code
    (negative: the signal that killed it)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(child.reports, "rb", buffering=0)
    )
    try:
        while line := await reader.readline():
            on_line(line.decode("ascii", "replace").strip())
    finally:
        transport.close()
    _, status = await asyncio.to_thread(os.waitpid, child.pid, 0)
    return os.waitstatus_to_exitcode(status)
