"""monitor.http.transport's connection pool: real requests through it, and its assignment pass.

(Keep-alive checks, the retry on a reused connection, proxies and TLS: tests/feeds/test_fetcher.py.)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpcore
import httpx
import pytest

from monitor.http import transport
from monitor.http.transport import PooledTransport
from tests.support.servers import LocalServer, Reply

pytestmark = pytest.mark.skipif(
    not transport._POOL_INTERNALS, reason="this httpcore's pool is not the one we rewrite a pass of"
)


async def test_many_requests_at_once_share_the_pools_connections() -> None:
    """60 GETs at once through a pool of 4: every one answered, never more than 4 connections
    opened, and those kept alive for all of them."""
    with LocalServer(poll_interval=0.02) as server:
        server.route("/n", lambda request: Reply(200, request.path.encode()))
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
        async with httpx.AsyncClient(transport=PooledTransport(limits)) as client:
            paths = [f"/n?{n}" for n in range(60)]
            answers = await asyncio.gather(*(client.get(server.url(path)) for path in paths))
        assert [answer.text for answer in answers] == paths
        assert server.connections == 4


async def test_a_full_pool_closes_an_idle_connection_for_another_host() -> None:
    with LocalServer(poll_interval=0.02) as server:
        server.static("/feed", b"<rss/>")
        limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
        async with httpx.AsyncClient(transport=PooledTransport(limits)) as client:
            same_host = [client.get(server.url("/feed")) for _ in range(2)]
            assert [r.status_code for r in await asyncio.gather(*same_host)] == [200, 200]
            other_host = server.url("/feed").replace("127.0.0.1", "localhost")
            assert (await client.get(other_host)).status_code == 200
        assert server.connections == 3  # two to 127.0.0.1, then one of them closed for localhost


async def test_a_request_cancelled_before_starting_on_its_new_connection_loses_no_slot() -> None:
    """A queued request is given a new connection as another's response ends, and is cancelled
    before it starts on it: httpcore kept that connection forever, the pool's one slot lost
    and every later request timed out waiting for it."""
    with LocalServer(poll_interval=0.02) as server:
        server.static("/feed", b"<rss/>")
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        pool_timeout = httpx.Timeout(5.0, pool=1.0)
        async with httpx.AsyncClient(
            transport=PooledTransport(limits), timeout=pool_timeout
        ) as client:
            pooled = client._transport._pool  # type: ignore[attr-defined]
            other_host = server.url("/feed").replace("127.0.0.1", "localhost")
            async with client.stream("GET", server.url("/feed")):
                waiting = asyncio.create_task(client.get(other_host))
                while not any(request.is_queued() for request in pooled._requests):  # noqa: ASYNC110 - the pool has no event to await; sleep(0) only yields
                    await asyncio.sleep(0)  # until it waits for the pool's one connection
            # the response ended: the waiting request was promised a new connection, unstarted
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            later = await client.get(server.url("/feed"))
        assert later.status_code == 200


# -- the assignment pass alone, over stand-ins for httpcore's connections and pool requests --


@dataclass(eq=False)
class _Connection:
    host: bytes
    idle: bool = True
    expired: bool = False
    closed: bool = False

    def can_handle_request(self, origin: httpcore.Origin) -> bool:
        return origin.host == self.host

    def is_available(self) -> bool:
        return self.idle

    def is_idle(self) -> bool:
        return self.idle

    def has_expired(self) -> bool:
        return self.expired

    def is_closed(self) -> bool:
        return self.closed


@dataclass
class _Request:
    url: str
    connection: _Connection | None = None
    request: httpcore.Request = field(init=False)

    def __post_init__(self) -> None:
        self.request = httpcore.Request("GET", self.url)

    def is_queued(self) -> bool:
        return self.connection is None

    def assign_to_connection(self, connection: _Connection) -> None:
        self.connection = connection


def _pool(
    connections: list[_Connection], requests: list[_Request], *, most: int, kept_alive: int
) -> transport._Pool:
    pool = transport._Pool(
        httpx.Limits(max_connections=most, max_keepalive_connections=kept_alive),
        transport._Backend(),
    )
    pool._connections = connections  # type: ignore[assignment]
    pool._requests = requests  # type: ignore[assignment]
    pool.create_connection = lambda origin: _Connection(origin.host, idle=False)  # type: ignore[method-assign,assignment,return-value]
    return pool


def test_a_connection_promised_to_a_request_is_neither_promised_again_nor_closed() -> None:
    promised, spare = _Connection(b"a.test"), _Connection(b"a.test")
    waiting = _Request("http://a.test/1", connection=promised)  # assigned, not started yet
    queued = _Request("http://a.test/2")
    pool = _pool([promised, spare], [waiting, queued], most=2, kept_alive=2)
    closing = pool._assign_requests_to_connections()
    assert queued.connection is spare
    assert closing == []
    # no idle connection is to be kept alive: the spare goes, never the promised one
    pool._requests = [waiting]  # type: ignore[assignment]
    pool._max_keepalive_connections = 0
    assert pool._assign_requests_to_connections() == [spare]
    assert pool._connections == [promised]


def test_the_pass_drops_closed_and_expired_connections_and_leaves_requests_waiting() -> None:
    gone, stale, busy, orphan = (
        _Connection(b"a.test", closed=True),
        _Connection(b"a.test", expired=True),
        _Connection(b"a.test", idle=False),
        _Connection(b"a.test", idle=False),  # promised to a request cancelled before it started
    )
    working = _Request("http://a.test/0", connection=busy)
    first, second = _Request("http://a.test/1"), _Request("http://a.test/2")
    pool = _pool([gone, stale, busy, orphan], [working, first, second], most=2, kept_alive=2)
    assert pool._assign_requests_to_connections() == [stale, orphan]
    assert first.connection is not None
    assert first.connection not in (gone, stale, busy)
    assert second.connection is None  # the pool is full of busy connections: it waits
    assert pool._connections == [busy, first.connection]
