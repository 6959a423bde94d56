"""Fixtures for the fetch and parse stages: a real local server, the real client, small limits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from monitor.feeds.fetcher import FetchLimits, MiB, make_client
from tests.support.servers import LocalServer

DATA = Path(__file__).resolve().parent.parent / "data" / "feeds"


def feed_file(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer(poll_interval=0.02) as local:
        yield local


@pytest.fixture
def limits() -> FetchLimits:
    """Small enough that every hostile case ends within about a second."""
    return FetchLimits(
        max_bytes=1 * MiB, deadline=1.0, connect_timeout=1.0, read_timeout=1.0, max_redirects=5
    )


@pytest.fixture
async def client(server: LocalServer, limits: FetchLimits) -> AsyncIterator[httpx.AsyncClient]:
    # Depends on `server` so it closes first: the server joins its handler threads on close,
    # and a kept-alive connection holds one until the client lets go.
    async with make_client(limits=limits) as shared:
        yield shared
