"""Our HTTP transport: httpcore's connection pool, cheaper to keep, safer to reuse.

Before reusing (or while keeping) an idle keep-alive connection, httpcore asks every connection
of the pool whether the server closed it (`get_extra_info("is_readable")`), on every request
and every response end. Through anyio that question rebuilds the socket's attribute table each
time, `getpeername()` included: profiled on the feed farm (1,000 conditional GETs, one host,
10 connections, ~40 checks per request), it was 14 % of a whole `run --once`'s CPU. Here each
stream keeps its socket and answers with one `poll()`; everything else is httpcore's, through
its public backend interface. Saves ~1 s of CPU per 1,000 feeds polled (bench/peer.py). A
connection found open stays so for `RECHECK_AFTER` before its socket is asked again: the pool
asks ~10 times per millisecond at 10 connections, and each poll is a system call.

Reusing a keep-alive connection races with the server closing it (Apache and Node close idle
ones after 5 s, httpx's own expiry): a GET or HEAD that fails on a connection before any answer
arrives is sent once more, as browsers do. The TLS context (~90 ms to load the CA bundle) is
made on the first https request, so plain-HTTP runs never pay it.

Errors are httpx's, as with httpx's own transport: callers catch httpx exceptions only.
"""

# ruff: noqa: ASYNC109 - the timeouts are parameters of httpcore's stream and backend interface

from __future__ import annotations

import select
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

# httpcore's errors and the httpx errors they become, most specific first
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


RECHECK_AFTER = 0.005  # seconds

# what a request on a connection the server had closed fails with, before any answer
_STALE_CONNECTION = (httpcore.RemoteProtocolError, httpcore.ReadError, httpcore.WriteError)


@contextmanager
def _httpx_errors(request: httpx.Request) -> Any:
    try:
        yield
    except httpx.HTTPError:
        raise
    except Exception as error:
        for core, mapped in _ERRORS:
            if isinstance(error, core):
                raise mapped(str(error), request=request) from error  # type: ignore[call-arg]
        raise


def socket_readable(sock: socket.socket | None) -> bool:
    """True when a read would not block: on an idle keep-alive connection, the server closed it."""
    if sock is None or sock.fileno() < 0:
        return True
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    """An httpcore stream that remembers its socket for the idle-connection check."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")
        self._open_until = 0.0  # monotonic time until which the last check still stands

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            now = time.monotonic()
            if now < self._open_until:
                return False
            if socket_readable(self._socket):
                return True
            self._open_until = now + RECHECK_AFTER
            return False
        return self._inner.get_extra_info(info)


class _Backend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _ResponseBody(httpx.AsyncByteStream):
    def __init__(self, stream: Any, request: httpx.Request) -> None:
        self._stream = stream  # httpcore's: an async iterable of bytes with aclose()
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors(self._request):
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        with _httpx_errors(self._request):
            await self._stream.aclose()


class PooledTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over httpcore's connection pools (one for http, one for https, made when needed)."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._limits = limits
        self._pools: dict[bytes, httpcore.AsyncConnectionPool] = {}

    def _pool(self, scheme: bytes) -> httpcore.AsyncConnectionPool:
        pool = self._pools.get(scheme)
        if pool is None:
            pool = httpcore.AsyncConnectionPool(
                ssl_context=httpx.create_ssl_context() if scheme == b"https" else None,
                max_connections=self._limits.max_connections,
                max_keepalive_connections=self._limits.max_keepalive_connections,
                keepalive_expiry=self._limits.keepalive_expiry,
                network_backend=_Backend(),
            )
            self._pools[scheme] = pool
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        pool = self._pool(request.url.raw_scheme)
        with _httpx_errors(request):
            try:
                response = await pool.handle_async_request(core_request)
            except _STALE_CONNECTION:
                if request.method not in ("GET", "HEAD"):
                    raise
                response = await pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseBody(response.stream, request),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()
