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
ones after 5 s, httpx's own expiry): a GET or HEAD that fails on a *reused* connection before
its answer is sent once more, as browsers do, after every idle connection's check is forgotten
(several may have closed at once). A request that failed on a connection of its own is not sent
again. The TLS context (~90 ms to load the CA bundle) is made for the first https connection,
so plain-HTTP runs never pay it.

httpcore 1.0's pass that hands queued requests to connections, run on every request and every
response end, is quadratic in the pool's connections and hands one idle connection to several
requests at once (all but one fail and queue again): `_Pool` does it in one pass (~30 % less
CPU per conditional GET on the farm).

Proxies from the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`) are httpx's
business: with any of them set, `make_client` leaves this transport out (`environment_proxies`).

A request that carries an address policy (monitor.http.guard: redirects and hubs a feed chose)
resolves its host here, checks every address it may connect to, and connects to the first one the
policy allows, by address: what was checked is what is reached. A proxy from the environment
connects on our behalf, so there the policy cannot be applied (docs/operations.md says so).

A request that names a proxy (`via_proxy`: a feed's own `proxy:`) goes through one of httpcore's
proxy pools, one per proxy URL, over the same backend: plain http through it as a forward
request, https through a CONNECT tunnel. The proxy is the operator's choice, like a feed's URL,
so the connection to it is never checked. A steered request through it still has its target's
address checked, as far as monitor can: the host is resolved here and refused when the policy
refuses what it resolves to, but the proxy resolves the name again for itself, so DNS
rebinding, and names only the proxy can resolve, are the proxy's own rules to enforce.

Errors are httpx's, as with httpx's own transport: callers catch httpx exceptions only.
"""

# ruff: noqa: ASYNC109 - the timeouts are parameters of httpcore's stream and backend interface

from __future__ import annotations

import asyncio
import ipaddress
import select
import socket
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator, Iterable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import httpcore
import httpx

from monitor.http.guard import EXTENSION, AddressPolicy, RefusedAddress

PROXY_EXTENSION = "monitor.proxy"  # the httpx request extension that names a proxy URL

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
_IDEMPOTENT = frozenset(("GET", "HEAD"))

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

    def __init__(self, inner: httpcore.AsyncNetworkStream, backend: _Backend) -> None:
        self._inner = inner
        self._backend = backend
        self._socket: socket.socket | None = inner.get_extra_info("socket")
        self._open_until = 0.0  # monotonic time until which the last check still stands
        self._checked_in = 0  # the backend's generation at that check

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
        upgraded = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        return _Stream(upgraded, self._backend)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            now = time.monotonic()
            if now < self._open_until and self._checked_in == self._backend.generation:
                return False
            if socket_readable(self._socket):
                return True
            self._open_until = now + RECHECK_AFTER
            self._checked_in = self._backend.generation
            return False
        return self._inner.get_extra_info(info)


@dataclass
class _Attempt:
    """One try of a request: did it open a connection of its own, and where may it connect?"""

    connected: bool = False
    policy: AddressPolicy | None = None


# the request being tried in this task: httpcore opens a request's connection in its own task
_attempt: ContextVar[_Attempt | None] = ContextVar("_attempt", default=None)


def _connecting() -> AddressPolicy | None:
    attempt = _attempt.get()
    if attempt is None:
        return None
    attempt.connected = True
    return attempt.policy


async def allowed_address(host: str, port: int, policy: AddressPolicy) -> str:
    """The first address of `host` the policy lets us connect to; RefusedAddress if none."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as error:  # as anyio reports it when it resolves: a connect error
            raise httpcore.ConnectError(str(error)) from error
        candidates = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in found))
    else:
        candidates = [literal]
    refusals = []
    for address in candidates:
        kind = policy.refusal(address)
        if kind is None:
            return str(address)
        refusals.append((address, kind))
    address, kind = refusals[0]
    raise RefusedAddress(host, str(address), kind)


class _Backend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()
        self.generation = 0  # bumped to make every stream ask its socket again

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        policy = _connecting()
        if policy is not None:  # a steered request: connect to the very address checked
            async with asyncio.timeout(timeout):
                host = await allowed_address(host, port, policy)
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(stream, self)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        _connecting()
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options), self)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Pool(httpcore.AsyncConnectionPool):
    """httpcore's pool, its TLS context made for the first https connection, and its
    assignment of requests to connections done in one pass (`_assign_requests_to_connections`).
    """

    def __init__(self, limits: httpx.Limits, backend: _Backend) -> None:
        super().__init__(
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )
        self._keepalive_expiry_s = limits.keepalive_expiry
        self._backend = backend
        self._tls: ssl.SSLContext | None = None

    def create_connection(self, origin: httpcore.Origin) -> httpcore.AsyncConnectionInterface:
        if origin.scheme == b"https" and self._tls is None:
            self._tls = httpx.create_ssl_context()
        return httpcore.AsyncHTTPConnection(
            origin=origin,
            ssl_context=self._tls,
            keepalive_expiry=self._keepalive_expiry_s,
            network_backend=self._backend,
        )

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        """httpcore's pass, rewritten: drop closed connections, close expired ones and idle
        ones beyond the keep-alive limit, then give each queued request a connection.

        httpcore 1.0's pass, run on every request and every response end, looks at every
        connection once per idle connection and once more per queued request, and hands one
        idle connection to several queued requests, all but one of which then fail, queue
        again and run another pass (encode/httpcore#1035, pydantic/httpx2#1075). Here each
        connection is looked at once per pass, and a connection promised to a request (not yet
        started on it) is not promised again nor closed to make room (one that expired or
        that its server closed is, and the request queues again). A connection that is neither
        idle nor held by a request was promised to one cancelled before it started: httpcore
        keeps it forever, a pool slot lost for good; here it is closed. Measured on the feed
        farm (1,000 conditional GETs, one host, 10 connections, a task per fetch): 1.05 s ->
        0.72 s of CPU. HTTP/1.1 only, as this transport: one request per connection at a time.
        """
        if not _POOL_INTERNALS:  # an httpcore whose pool we do not know: its own pass
            return super()._assign_requests_to_connections()
        promised = {id(r.connection) for r in self._requests if r.connection is not None}
        closing: list[httpcore.AsyncConnectionInterface] = []
        kept: list[httpcore.AsyncConnectionInterface] = []
        for connection in self._connections:
            if connection.is_closed():
                continue
            if connection.has_expired():
                closing.append(connection)
            elif id(connection) in promised or connection.is_idle():
                kept.append(connection)
            else:  # its request was cancelled between being promised it and starting on it
                closing.append(connection)
        idle = [c for c in kept if id(c) not in promised and c.is_idle()]
        surplus = idle[: max(len(idle) - self._max_keepalive_connections, 0)]
        closing += surplus
        self._connections = [c for c in kept if c not in surplus]
        idle = idle[len(surplus) :]
        for request in [r for r in self._requests if r.is_queued()]:
            origin = request.request.url.origin
            chosen = _take_available(idle, origin)
            if chosen is None:
                if len(self._connections) >= self._max_connections:
                    if not idle:
                        continue  # all busy: a later request may find one to its own host
                    spare = idle.pop(0)  # an idle connection to another host makes room
                    self._connections.remove(spare)
                    closing.append(spare)
                chosen = self.create_connection(origin)
                self._connections.append(chosen)
            request.assign_to_connection(chosen)
        return closing


def _take_available(
    idle: list[httpcore.AsyncConnectionInterface], origin: httpcore.Origin
) -> httpcore.AsyncConnectionInterface | None:
    """The first idle connection that can take a request to `origin`, taken out of `idle`."""
    for index, connection in enumerate(idle):
        if connection.can_handle_request(origin) and connection.is_available():
            return idle.pop(index)
    return None


_POOL_REQUEST_API = ("connection", "is_queued", "assign_to_connection")


def _knows_pool_internals() -> bool:
    """Whether httpcore's pool keeps what `_Pool._assign_requests_to_connections` reads."""
    pool = httpcore.AsyncConnectionPool()
    names = ("_connections", "_requests", "_max_connections", "_max_keepalive_connections")
    requests = getattr(import_module("httpcore._async.connection_pool"), "AsyncPoolRequest", None)
    request = requests(httpcore.Request("GET", "http://pool.invalid/")) if requests else None
    return (
        all(hasattr(pool, name) for name in names)
        and hasattr(httpcore.AsyncConnectionPool, "_assign_requests_to_connections")
        and all(hasattr(request, name) for name in _POOL_REQUEST_API)
    )


_POOL_INTERNALS = _knows_pool_internals()


def environment_proxies() -> bool:
    """Whether the environment names a proxy (what httpx reads when it makes its transports).
    `NO_PROXY` alone names none: it must not turn our transport, and its address checks, off."""
    return any(scheme != "no" for scheme in urllib.request.getproxies())


def via_proxy(proxy: str) -> dict[str, object]:
    """Request extensions that send this request through `proxy` (PooledTransport only)."""
    return {PROXY_EXTENSION: proxy}


def _proxy_pool(proxy: str, limits: httpx.Limits, backend: _Backend) -> httpcore.AsyncHTTPProxy:
    """httpcore's proxy pool for `proxy`, its credentials (if any) sent as Proxy-Authorization."""
    url = httpx.URL(proxy)
    auth = (url.username, url.password) if url.username or url.password else None
    plain = url.copy_with(username=None, password=None)
    return httpcore.AsyncHTTPProxy(
        proxy_url=httpcore.URL(
            scheme=plain.raw_scheme, host=plain.raw_host, port=plain.port, target=b"/"
        ),
        proxy_auth=auth,
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=backend,
    )


def pooled_transport(limits: httpx.Limits) -> PooledTransport | None:
    """A client's transport: ours, or None (httpx's own) when the environment names a proxy."""
    return None if environment_proxies() else PooledTransport(limits)


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
    """HTTP/1.1 over httpcore's connection pool, see the module's docstring."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._backend = _Backend()
        self._limits = limits
        self._pool = _Pool(limits, self._backend)
        # Steered requests never share a connection with the others: one opened for the
        # operator's own internal origin, kept alive, would carry a stranger's redirect there
        # without the address ever being checked. One pool per policy in force (a reload may
        # change it), every connection in it opened after the check.
        self._steered: dict[AddressPolicy, _Pool] = {}
        self._proxied: dict[str, httpcore.AsyncHTTPProxy] = {}

    def _pool_for(self, policy: AddressPolicy | None) -> _Pool:
        if policy is None:
            return self._pool
        if policy not in self._steered:
            self._steered[policy] = _Pool(self._limits, self._backend)
        return self._steered[policy]

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
        policy = request.extensions.get(EXTENSION)
        proxy = request.extensions.get(PROXY_EXTENSION)
        first = _Attempt(policy=policy)
        with _httpx_errors(request):
            if proxy is not None:
                return await self._through_proxy(request, core_request, proxy, policy)
            try:
                response = await self._try(core_request, first)
            except _STALE_CONNECTION:
                if request.method not in _IDEMPOTENT or first.connected:
                    raise
                self._backend.generation += 1  # other idle connections may have closed too
                response = await self._try(core_request, _Attempt(policy=policy))
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseBody(response.stream, request),
            extensions=response.extensions,
        )

    async def _through_proxy(
        self,
        request: httpx.Request,
        core_request: httpcore.Request,
        proxy: str,
        policy: AddressPolicy | None,
    ) -> httpx.Response:
        """The request through the operator's proxy; a steered one's target checked first."""
        if policy is not None:
            port = request.url.port or {"http": 80, "https": 443}.get(request.url.scheme, 443)
            await allowed_address(request.url.host, port, policy)
        if proxy not in self._proxied:
            self._proxied[proxy] = _proxy_pool(proxy, self._limits, self._backend)
        token = _attempt.set(_Attempt())  # the proxy itself is the operator's: unchecked
        try:
            response = await self._proxied[proxy].handle_async_request(core_request)
        finally:
            _attempt.reset(token)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseBody(response.stream, request),
            extensions=response.extensions,
        )

    async def _try(self, request: httpcore.Request, attempt: _Attempt) -> httpcore.Response:
        token = _attempt.set(attempt)
        try:
            return await self._pool_for(attempt.policy).handle_async_request(request)
        finally:
            _attempt.reset(token)

    async def aclose(self) -> None:
        for pool in (self._pool, *self._steered.values(), *self._proxied.values()):
            await pool.aclose()
