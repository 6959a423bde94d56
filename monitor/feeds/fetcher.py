"""One polite, bounded HTTP GET of a feed: conditional, capped, and never raising.

    fetch_feed(client, url, validators, limits)
      ├── 304 ─────────────────────────────────────> NotModified
      ├── 2xx ── body streamed under max_bytes, raw and decoded ──> Fetched
      ├── 301/302/303/307/308 ── followed by hand (loops and chains bounded; 301/308 remembered)
      └── 4xx, 5xx, timeout, refused, too large, bad encoding ───> FetchFailed(Transient|Permanent)

`limits.deadline` bounds the whole exchange, redirects included: read timeouts alone never stop
a server that drips a byte a second. Redirects are followed here, not by httpx, so a loop can
be told from a long chain and the stored URL updated only for a run of permanent redirects.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import httpx

from monitor import __version__
from monitor.errors import FeedError, PermanentFeedError, TransientFeedError
from monitor.feeds.compression import BodyTooLarge, Decoder
from monitor.http.cookies import BoundedCookieJar, JarClient
from monitor.http.guard import AddressPolicy, Origin, RefusedAddress, origin, steered
from monitor.http.headers import cache_hint, retry_after
from monitor.http.transport import environment_proxies, pooled_transport, via_proxy

__all__ = [  # cache_hint and retry_after live in caching.py and are part of this interface
    "ACCEPT_ENCODING",
    "USER_AGENT",
    "FetchFailed",
    "FetchLimits",
    "Fetched",
    "MiB",
    "NotModified",
    "Validators",
    "cache_hint",
    "fetch_feed",
    "format_size",
    "make_client",
    "retry_after",
]

MiB = 1024 * 1024
USER_AGENT = f"monitor/{__version__} (+https://github.com/monitor-project/monitor)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
# Only what compression.Decoder can undo under a cap; br and zstd decoders cannot be capped
# the same way with the packages we depend on, so they are not advertised.
ACCEPT_ENCODING = "gzip, deflate"
_REDIRECTS = frozenset((301, 302, 303, 307, 308))
_PERMANENT_REDIRECTS = frozenset((301, 308))
_TRANSIENT_4XX = frozenset((408, 425, 429))
PROXY_CONFLICT = (
    "feeds[].proxy is not used while the environment names a proxy (HTTP_PROXY, HTTPS_PROXY, "
    "ALL_PROXY): unset those, or remove this feed's proxy"
)


@dataclass(frozen=True)
class Validators:
    etag: str | None = None
    last_modified: str | None = None


DRAIN_LIMIT = 64 * 1024  # bytes of an unused body read so its connection can be reused
DRAIN_TIMEOUT = 1.0  # seconds; past that the connection is dropped instead


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 16 * MiB  # on the wire and again after decompression
    deadline: float = 30.0  # seconds for the whole fetch, redirects and body included
    connect_timeout: float = 10.0
    read_timeout: float = 20.0  # between two reads
    max_redirects: int = 5
    max_connections: int = 20  # the shared client's pool
    max_keepalive_connections: int = 10
    # where a redirect to another origin than the configured URL's may lead (monitor.http.guard)
    address_policy: AddressPolicy = field(default_factory=AddressPolicy)


@dataclass(frozen=True)
class Fetched:
    url: str  # final URL, after redirects
    status: int
    body: bytes  # decoded (Content-Encoding undone)
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    validators: Validators
    permanent_redirect: str | None  # where a leading run of 301/308 led: the feed's new URL
    elapsed: float  # seconds

    @property
    def digest(self) -> str:
        """SHA-256 of the body: skip parsing a body identical to the last one (no validators)."""
        return hashlib.sha256(self.body).hexdigest()


@dataclass(frozen=True)
class NotModified:
    url: str
    headers: dict[str, str]
    validators: Validators  # the response's, else the ones sent
    elapsed: float
    permanent_redirect: str | None = None


@dataclass(frozen=True)
class FetchFailed:
    error: FeedError  # TransientFeedError or PermanentFeedError; str() is for users
    status: int | None  # the HTTP status, when a response arrived
    retry_after: timedelta | None  # Retry-After on 429/503, as a delay from now
    headers: dict[str, str]
    elapsed: float
    url: str = ""  # the URL that failed (after redirects)
    permanent_redirect: str | None = None

    @property
    def transient(self) -> bool:
        return isinstance(self.error, TransientFeedError)


def make_client(
    *, user_agent: str | None = None, limits: FetchLimits = FetchLimits()
) -> httpx.AsyncClient:
    """The one client every fetch shares: pooled, timed, identified, never following redirects.

    fetch_feed follows redirects itself; other callers that want httpx to follow them can pass
    follow_redirects=True per request and still get `limits.max_redirects`.
    """
    pool_limits = httpx.Limits(
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
    )
    return JarClient(
        jar=BoundedCookieJar(),  # a feed's cookies are kept, within bounds (cookies.py)
        timeout=_timeout(limits),
        headers={
            "User-Agent": user_agent or USER_AGENT,
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
        },
        limits=pool_limits,
        # httpx's own transports when the environment names a proxy (it honours NO_PROXY too)
        transport=pooled_transport(pool_limits),
        follow_redirects=False,
        max_redirects=limits.max_redirects,
    )


def _timeout(limits: FetchLimits) -> httpx.Timeout:
    return httpx.Timeout(
        connect=limits.connect_timeout,
        read=limits.read_timeout,
        write=limits.read_timeout,
        pool=limits.deadline,
    )


@dataclass
class _Trail:
    """What one fetch has seen so far, for the result whichever way it ends."""

    url: str
    started: float = field(default_factory=time.monotonic)
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    permanent_redirect: str | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def failed(self, error: FeedError, retry_after: timedelta | None = None) -> FetchFailed:
        return FetchFailed(
            error=error,
            status=self.status,
            retry_after=retry_after,
            headers=self.headers,
            elapsed=self.elapsed(),
            url=self.url,
            permanent_redirect=self.permanent_redirect,
        )


async def fetch_feed(
    client: httpx.AsyncClient,
    url: str,
    validators: Validators,
    limits: FetchLimits = FetchLimits(),
    *,
    configured: str | None = None,
    headers: Mapping[str, str] | None = None,
    user_agent: str | None = None,
    proxy: str | None = None,
) -> Fetched | NotModified | FetchFailed:
    """GET `url` conditionally; problems of the network or the server come back as FetchFailed.

    `configured` is the URL the operator wrote (default: `url`); `url` may differ, where the feed
    moved. Requests to any other origin than the configured one were steered by a server, so
    they are checked against `limits.address_policy` where they connect, and never carry
    `headers` (the feed's credentials: `Authorization`, an API key), which go to the configured
    origin only. `user_agent` replaces the client's on every request of this fetch; `proxy`
    (the operator's, like the URL) carries them all (monitor.http.transport: `via_proxy`).
    """
    trail = _Trail(url)
    address = httpx.URL(url)  # parsed once: httpx and the origin checks take it as it is
    written = address if not configured or configured == url else httpx.URL(configured)
    trusted = _Trusted(origin(written), dict(headers or {}), user_agent, proxy)
    try:
        async with asyncio.timeout(limits.deadline):
            return await _follow(client, trail, validators, limits, trusted, address=address)
    except TimeoutError:
        return trail.failed(TransientFeedError(f"timed out after {limits.deadline:g}s"))
    except FeedError as error:
        return trail.failed(error)
    except httpx.TimeoutException as error:
        return trail.failed(TransientFeedError(_timeout_message(error, limits)))
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as error:
        return trail.failed(_transport_error(error))
    except OSError as error:  # what the transport did not wrap
        return trail.failed(TransientFeedError(f"network error: {error}"))


async def _follow(
    client: httpx.AsyncClient,
    trail: _Trail,
    validators: Validators,
    limits: FetchLimits,
    trusted: _Trusted,
    *,
    address: httpx.URL,
) -> Fetched | NotModified | FetchFailed:
    """The GET of `address` (`trail.url`, parsed), and of each redirect's target in turn."""
    if trusted.proxy is not None and environment_proxies():  # httpx's transports: not ours
        raise PermanentFeedError(PROXY_CONFLICT)
    visited = [trail.url]
    permanent_so_far = True
    moving_to: str | None = None  # recorded once the new address has answered well
    for _hop in range(limits.max_redirects + 1):
        ours = trusted.covers(address)
        async with client.stream(
            "GET",
            address,
            headers=_request_headers(validators, trusted.sent(ours)),
            timeout=_timeout(limits),
            extensions=trusted.extensions(ours, limits.address_policy),
        ) as response:
            trail.status = response.status_code
            trail.headers = {name.lower(): value for name, value in response.headers.items()}
            target = _redirect_target(response)
            if target is None:  # a move is kept only to an address that answers well
                answered = response.is_success or response.status_code == 304
                trail.permanent_redirect = moving_to if answered else None
                return await _finish(response, trail, validators, limits)
            await _drain(response)
        permanent_so_far = permanent_so_far and trail.status in _PERMANENT_REDIRECTS
        if permanent_so_far:
            moving_to = target
        if target in visited:
            raise PermanentFeedError(f"redirect loop: {' -> '.join([*visited, target])}")
        visited.append(target)
        trail.url = target
        address = httpx.URL(target)
    raise PermanentFeedError(f"more than {limits.max_redirects} redirects (last to {trail.url})")


@dataclass(frozen=True, slots=True)
class _Trusted:
    """The origin the operator configured, and the headers only it may be sent."""

    origin: Origin
    headers: dict[str, str]
    user_agent: str | None = None  # every request of the fetch, not a secret
    proxy: str | None = None

    def sent(self, ours: bool) -> dict[str, str]:
        """The headers a request gets besides the validators: the secret ones only if `ours`."""
        sent = dict(self.headers) if ours else {}
        if self.user_agent is not None:
            sent["User-Agent"] = self.user_agent
        return sent

    def extensions(self, ours: bool, policy: AddressPolicy) -> dict[str, object]:
        extensions = {} if ours else steered(policy)
        return extensions | via_proxy(self.proxy) if self.proxy is not None else extensions

    def covers(self, url: str | httpx.URL) -> bool:
        """The configured origin, or its https upgrade (`http://host` -> `https://host`)."""
        scheme, host, port = origin(url)
        if (scheme, host, port) == self.origin:
            return True
        return self.origin == ("http", host, 80) and (scheme, port) == ("https", 443)


def _request_headers(validators: Validators, extra: Mapping[str, str]) -> dict[bytes, bytes]:
    headers = {name.encode("latin-1"): value.encode("utf-8") for name, value in extra.items()}
    headers[b"Accept-Encoding"] = ACCEPT_ENCODING.encode()  # we decode, so we choose
    for name, value in (
        (b"If-None-Match", validators.etag),
        (b"If-Modified-Since", validators.last_modified),
    ):
        if value and not any(char in value for char in "\r\n\x00"):
            headers[name] = _header_bytes(value)
    return headers


def _header_bytes(value: str) -> bytes:
    """A validator's bytes as the server sent them: httpx decodes as UTF-8 when it can."""
    try:
        return value.encode("ascii")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _redirect_target(response: httpx.Response) -> str | None:
    if response.status_code not in _REDIRECTS:
        return None
    location = response.headers.get("location", "").strip()
    if not location:
        raise PermanentFeedError(f"{_status_text(response)} without a Location header")
    try:
        target = response.url.join(location)
    except httpx.InvalidURL as error:
        raise PermanentFeedError(f"redirect to an invalid URL: {location[:200]}") from error
    if target.scheme not in ("http", "https"):
        raise PermanentFeedError(f"redirect to a non-HTTP URL: {location[:200]}")
    return str(target)


async def _finish(
    response: httpx.Response, trail: _Trail, validators: Validators, limits: FetchLimits
) -> Fetched | NotModified | FetchFailed:
    status = response.status_code
    headers = trail.headers
    if not 200 <= status < 300:
        await _drain(response)
    if status == 304:
        return NotModified(
            url=trail.url,
            headers=headers,
            validators=Validators(
                etag=headers.get("etag") or validators.etag,
                last_modified=headers.get("last-modified") or validators.last_modified,
            ),
            elapsed=trail.elapsed(),
            permanent_redirect=trail.permanent_redirect,
        )
    if not 200 <= status < 300:
        error: FeedError
        if status in _TRANSIENT_4XX or status >= 500 or status < 200:
            error = TransientFeedError(_status_text(response))
        else:
            error = PermanentFeedError(_status_text(response))
        return trail.failed(error, retry_after(headers, datetime.now(UTC)))
    body = await _read_body(response, limits)
    return Fetched(
        url=trail.url,
        status=status,
        body=body,
        headers=headers,
        validators=Validators(etag=headers.get("etag"), last_modified=headers.get("last-modified")),
        permanent_redirect=trail.permanent_redirect,
        elapsed=trail.elapsed(),
    )


async def _drain(response: httpx.Response) -> None:
    """Read a small unread body (a 304's is empty) to its end, so its connection is reused.

    httpcore closes a connection whose response was not read to the end: without this, every
    304 cost a new TCP connection (measured: 1,000 conditional GETs to the farm, 990 connects).
    A body declared large, or slow to come, is not worth it: the connection is dropped instead.
    """
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > DRAIN_LIMIT:
        return
    read = 0
    try:
        async with asyncio.timeout(DRAIN_TIMEOUT):
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read > DRAIN_LIMIT:
                    return
    except (TimeoutError, httpx.HTTPError, OSError):
        return


async def _read_body(response: httpx.Response, limits: FetchLimits) -> bytes:
    """The decoded body, stopping as soon as either the wire or the decoded size passes the cap."""
    too_large = PermanentFeedError(f"body larger than {format_size(limits.max_bytes)}")
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise too_large
    decoder = Decoder(response.headers.get("content-encoding", ""), limits.max_bytes)
    chunks: list[bytes] = []
    try:
        async for chunk in response.aiter_raw():
            chunks.append(decoder.decode(chunk))
        decoder.finish()
    except BodyTooLarge as error:
        if error.decompressed:
            raise PermanentFeedError(
                f"body larger than {format_size(limits.max_bytes)} after decompression"
            ) from None
        raise too_large from None
    return b"".join(chunks)


def _status_text(response: httpx.Response) -> str:
    try:
        phrase = HTTPStatus(response.status_code).phrase
    except ValueError:
        phrase = response.reason_phrase
    if response.status_code == 410:
        phrase += ": the publisher removed this feed"
    return f"HTTP {response.status_code} {phrase}".strip()


def _timeout_message(error: httpx.TimeoutException, limits: FetchLimits) -> str:
    if isinstance(error, httpx.ConnectTimeout):
        return f"timed out connecting after {limits.connect_timeout:g}s"
    if isinstance(error, httpx.PoolTimeout):
        return "timed out waiting for a free connection"
    return f"timed out: no data for {limits.read_timeout:g}s"


def _transport_error(error: Exception) -> FeedError:
    text = str(error)[:300] or type(error).__name__
    if isinstance(error, (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError)):
        return PermanentFeedError(f"invalid feed URL: {text}")
    if isinstance(error, httpx.ConnectError):
        return _connect_error(error, text)
    if isinstance(error, httpx.RemoteProtocolError):
        return TransientFeedError(f"the server broke the HTTP protocol: {text}")
    return TransientFeedError(f"network error: {text}")


def _connect_error(error: httpx.ConnectError, text: str) -> FeedError:
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return PermanentFeedError(f"TLS certificate not valid: {text}")
    causes = _causes(error)
    refused = next((cause for cause in causes if isinstance(cause, RefusedAddress)), None)
    if refused is not None:
        return PermanentFeedError(str(refused))
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return TransientFeedError("connection refused")
    if any(isinstance(cause, socket.gaierror) for cause in causes):
        return TransientFeedError(f"host not found: {text}")
    return TransientFeedError(f"could not connect: {text}")


def _causes(error: BaseException) -> list[BaseException]:
    """The exception and what caused it, innermost last (anyio wraps the OSError)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def format_size(size: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", MiB), ("KiB", 1024)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"
