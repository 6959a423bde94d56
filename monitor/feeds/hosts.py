"""Politeness per host: at most N requests to one host at once, and a minimum spacing between
the starts of two requests to it. Feeds of one publisher share its server; hundreds of feeds on
one host must not arrive as a burst.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from urllib.parse import urlsplit

DEFAULT_PER_HOST = 4


def host_key(url: str) -> str:
    """The host whose limits a request to `url` counts against."""
    return urlsplit(url).hostname or ""  # lower-cased by urlsplit


class HostLimiter:
    def __init__(self, per_host: int = DEFAULT_PER_HOST, spacing: timedelta = timedelta(0)) -> None:
        self.per_host = per_host
        self.spacing = spacing.total_seconds()
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._starts: dict[str, asyncio.Lock] = {}
        self._next_start: dict[str, float] = {}

    def configured_as(self, per_host: int, spacing: timedelta) -> bool:
        return self.per_host == per_host and self.spacing == spacing.total_seconds()

    @asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        """Hold one of the host's slots (waiting for the spacing) while the body runs."""
        host = host_key(url)
        slots = self._slots.setdefault(host, asyncio.Semaphore(self.per_host))
        async with slots:
            if self.spacing > 0:
                await self._wait_turn(host)
            yield

    async def _wait_turn(self, host: str) -> None:
        loop = asyncio.get_running_loop()
        async with self._starts.setdefault(host, asyncio.Lock()):
            delay = self._next_start.get(host, 0.0) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next_start[host] = loop.time() + self.spacing
