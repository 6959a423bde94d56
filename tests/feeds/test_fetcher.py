"""fetch_feed against a real server on 127.0.0.1: conditional GET, redirects, statuses, encoding."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import hashlib
import socket
import ssl
import threading
import zlib
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
import trustme

from monitor import __version__
from monitor.errors import PermanentFeedError, TransientFeedError
from monitor.feeds.fetcher import (
    Fetched,
    FetchFailed,
    FetchLimits,
    NotModified,
    Validators,
    cache_hint,
    fetch_feed,
    make_client,
    retry_after,
)
from monitor.http import transport
from tests.feeds.conftest import feed_file
from tests.support.servers import LocalServer, RecordedRequest, Reply

RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}


async def test_plain_get_returns_body_headers_and_validators(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    body = feed_file("rss20.xml")
    server.static(
        "/feed.xml",
        body,
        headers={**RSS, "ETag": 'W/"abc"', "Last-Modified": "Fri, 27 Nov 2026 10:00:00 GMT"},
    )
    result = await fetch_feed(client, server.url("/feed.xml"), Validators(), limits)
    assert isinstance(result, Fetched)
    assert result.status == 200
    assert result.body == body
    assert result.url == server.url("/feed.xml")
    assert result.headers["content-type"] == RSS["Content-Type"]
    assert result.validators == Validators('W/"abc"', "Fri, 27 Nov 2026 10:00:00 GMT")
    assert result.permanent_redirect is None
    assert 0 <= result.elapsed < limits.deadline
    assert result.digest == hashlib.sha256(body).hexdigest()
    (request,) = server.requests_to("/feed.xml")
    assert "if-none-match" not in request.headers
    assert "if-modified-since" not in request.headers


async def test_request_identifies_the_project_and_asks_for_feeds(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    server.static("/feed.xml", feed_file("rss20.xml"), headers=RSS)
    await fetch_feed(client, server.url("/feed.xml"), Validators(), limits)
    (request,) = server.requests
    agent = request.headers["user-agent"]
    assert agent.startswith(f"monitor/{__version__} (+https://")
    assert "application/rss+xml" in request.headers["accept"]
    assert request.headers["accept-encoding"] == "gzip, deflate"


async def test_custom_user_agent(server: LocalServer, limits: FetchLimits) -> None:
    server.static("/feed.xml", b"<rss/>", headers=RSS)
    async with make_client(user_agent="analyst-bot/2", limits=limits) as custom:
        await fetch_feed(custom, server.url("/feed.xml"), Validators(), limits)
    assert server.requests[0].headers["user-agent"] == "analyst-bot/2"


async def test_validators_are_echoed_exactly_and_304_is_not_modified(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    # The server sees header bytes as Latin-1; the client decodes the same UTF-8 bytes as UTF-8.
    client_etag = '"strong-\u00e9tag-with spaces"'
    etag = client_etag.encode().decode("latin-1")
    modified = "Fri, 27 Nov 2026 10:00:00 GMT"

    def conditional(request: RecordedRequest) -> Reply:
        if request.headers.get("if-none-match") == etag:
            return Reply(304, headers={"ETag": etag, "Cache-Control": "max-age=60"})
        return Reply(200, b"<rss/>", {"ETag": etag, "Last-Modified": modified})

    server.route("/feed.xml", conditional)
    first = await fetch_feed(client, server.url("/feed.xml"), Validators(), limits)
    assert isinstance(first, Fetched)
    second = await fetch_feed(client, server.url("/feed.xml"), first.validators, limits)
    assert isinstance(second, NotModified)
    request = server.requests[-1]
    assert request.headers["if-none-match"] == etag
    assert request.headers["if-modified-since"] == modified
    # A 304 without Last-Modified keeps the one we sent.
    assert first.validators == Validators(client_etag, modified)
    assert second.validators == Validators(client_etag, modified)
    assert second.headers["cache-control"] == "max-age=60"


async def test_bodiless_answers_keep_the_connection_for_the_next_fetch(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    # an unread 304, redirect or error body used to close the pooled connection: one TCP
    # connection per conditional GET (the farm's warm cycle: 990 connects for 1,000 feeds)
    server.static("/same", b"", status=304)
    server.route("/hop", lambda _: Reply(302, b"moved", {"Location": "/same"}))
    server.static("/missing", b"<html>not here</html>", status=404)
    seen = Validators(etag='"v1"', last_modified=None)
    for path in ("/same", "/same", "/hop", "/missing", "/same"):
        await fetch_feed(client, server.url(path), seen, limits)
    assert len(server.requests) == 6
    assert server.connections == 1


async def test_a_keep_alive_connection_the_server_closed_is_not_reused(
    server: LocalServer,
    client: httpx.AsyncClient,
    limits: FetchLimits,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the pool asks idle connections whether their server hung up; answered right, no request
    # goes out on a closed one (every check asks the socket, and the retry is off)
    monkeypatch.setattr(transport, "RECHECK_AFTER", 0.0)
    monkeypatch.setattr(transport, "_STALE_CONNECTION", ())
    closed = threading.Event()

    def answer_then_hang_up(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n<rss/>")
        handler.wfile.flush()
        handler.connection.shutdown(socket.SHUT_RDWR)
        handler.close_connection = True
        closed.set()

    server.raw("/hangs-up", answer_then_hang_up)
    first = await fetch_feed(client, server.url("/hangs-up"), Validators(), limits)
    assert isinstance(first, Fetched)
    assert await asyncio.to_thread(closed.wait, 10)
    second = await fetch_feed(client, server.url("/hangs-up"), Validators(), limits)
    assert isinstance(second, Fetched), second
    assert len(server.requests_to("/hangs-up")) == 2
    assert server.connections == 2


async def test_a_get_the_server_drops_unanswered_on_a_reused_connection_is_sent_again(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    # the race every keep-alive client meets: the server closes an idle connection just as
    # the next request goes out on it; browsers send such a GET again, so do we, once
    def second_request_dropped(handler: BaseHTTPRequestHandler) -> None:
        served = getattr(handler, "served", 0)
        handler.served = served + 1  # type: ignore[attr-defined]
        if served:
            handler.close_connection = True  # closed without a word
            return
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n<rss/>")

    server.raw("/drops", second_request_dropped)
    assert isinstance(await fetch_feed(client, server.url("/drops"), Validators(), limits), Fetched)
    again = await fetch_feed(client, server.url("/drops"), Validators(), limits)
    assert isinstance(again, Fetched), again
    assert len(server.requests_to("/drops")) == 3
    assert server.connections == 2


async def test_a_request_dropped_on_a_new_connection_is_not_sent_again(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    def drop(handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True

    server.raw("/drops-all", drop)
    result = await fetch_feed(client, server.url("/drops-all"), Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert "disconnected" in str(result.error)
    assert len(server.requests_to("/drops-all")) == 1


async def test_after_a_stale_connection_every_idle_one_is_checked_again(
    server: LocalServer,
    client: httpx.AsyncClient,
    limits: FetchLimits,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a server restarting (or timing out idle connections) closes them all at once; the one
    # retry must not land on another connection last seen open
    monkeypatch.setattr(transport, "RECHECK_AFTER", 3600.0)
    together = threading.Barrier(3, timeout=10)
    sockets: list[socket.socket] = []

    def held(handler: BaseHTTPRequestHandler) -> None:
        sockets.append(handler.connection)
        together.wait()  # three requests in flight at once: three connections
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n<rss/>")

    server.raw("/held", held)
    server.static("/feed.xml", b"<rss/>", headers=RSS)
    firsts = await asyncio.gather(
        *(fetch_feed(client, server.url("/held"), Validators(), limits) for _ in range(3))
    )
    assert all(isinstance(result, Fetched) for result in firsts)
    # one more request: the pool checks every idle connection, all open, remembered as such
    assert isinstance(
        await fetch_feed(client, server.url("/feed.xml"), Validators(), limits), Fetched
    )
    assert server.connections == 3
    for held_socket in sockets:
        held_socket.shutdown(socket.SHUT_RDWR)
    result = await fetch_feed(client, server.url("/feed.xml"), Validators(), limits)
    assert isinstance(result, Fetched), result
    assert server.connections == 4


async def test_proxies_from_the_environment_are_used(
    server: LocalServer, limits: FetchLimits, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an egress proxy is how many hosts reach the internet: our own transport steps aside
    server.static("http://feeds.invalid/feed.xml", b"<rss/>", headers=RSS)
    monkeypatch.setenv("HTTP_PROXY", server.url())
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with make_client(limits=limits) as proxied:
        result = await fetch_feed(proxied, "http://feeds.invalid/feed.xml", Validators(), limits)
    assert isinstance(result, Fetched), result
    assert result.body == b"<rss/>"
    (request,) = server.requests
    assert request.path == "http://feeds.invalid/feed.xml"  # the absolute form a proxy gets


async def test_https_is_checked_against_a_private_ca_named_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limits: FetchLimits
) -> None:
    """A certificate from an unknown CA is refused; with that CA named by SSL_CERT_FILE, feeds
    on it are fetched and the TLS connection is kept alive between fetches."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = LocalServer(tls=context, poll_interval=0.05)
    server.static("/feed.xml", feed_file("rss20.xml"), headers=RSS)
    url = server.url("/feed.xml")
    assert url.startswith("https://")
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    try:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        async with make_client() as client:
            refused = await fetch_feed(client, url, Validators(), limits)
        ca_file = tmp_path / "private-ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        async with make_client() as client:
            fetched = [await fetch_feed(client, url, Validators(), limits) for _ in range(2)]
    finally:
        server.close()
    assert isinstance(refused, FetchFailed)
    assert isinstance(refused.error, PermanentFeedError)
    assert str(refused.error).startswith("TLS certificate not valid")
    assert [type(result) for result in fetched] == [Fetched, Fetched]
    assert len(server.requests_to("/feed.xml")) == 2  # the refused client sent no request
    assert server.connections == 2  # the refused handshake, then one kept alive for both


async def test_transport_errors_are_httpx_errors(limits: FetchLimits) -> None:
    async with make_client() as own_client:
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            refused_url = f"http://127.0.0.1:{unused.getsockname()[1]}/feed.xml"
        with pytest.raises(httpx.ConnectError):
            await own_client.get(refused_url)
        result = await fetch_feed(own_client, refused_url, Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert result.transient
    assert "refused" in str(result.error)


async def test_fetched_without_validators_does_not_carry_old_ones(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    server.static("/feed.xml", b"<rss/>", headers=RSS)
    result = await fetch_feed(client, server.url("/feed.xml"), Validators('"old"', "x"), limits)
    assert isinstance(result, Fetched)
    assert result.validators == Validators()


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data, wbits=-zlib.MAX_WBITS)),  # raw deflate
        ("gzip, gzip", lambda data: gzip.compress(gzip.compress(data))),
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw", "gzip-twice"],
)
async def test_compressed_bodies_are_decoded(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits, encoding, compress
) -> None:
    body = feed_file("rss20.xml")
    server.static("/feed.xml", compress(body), headers={**RSS, "Content-Encoding": encoding})
    result = await fetch_feed(client, server.url("/feed.xml"), Validators(), limits)
    assert isinstance(result, Fetched)
    assert result.body == body


async def test_corrupt_or_unknown_encoding_is_a_clear_error(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    server.static("/bad.xml", b"not gzip at all", headers={"Content-Encoding": "gzip"})
    server.static("/br.xml", b"\x0b\x02\x80", headers={"Content-Encoding": "br"})
    server.static(
        "/cut.xml", gzip.compress(b"<rss>" * 1000)[:-20], headers={"Content-Encoding": "gzip"}
    )
    # these answers come at once: a deadline far above a busy machine's delays keeps the
    # outcome about the bytes, not about the clock
    roomy = dataclasses.replace(limits, deadline=30.0, connect_timeout=30.0, read_timeout=30.0)
    bad = await fetch_feed(client, server.url("/bad.xml"), Validators(), roomy)
    br = await fetch_feed(client, server.url("/br.xml"), Validators(), roomy)
    cut = await fetch_feed(client, server.url("/cut.xml"), Validators(), roomy)
    assert isinstance(bad, FetchFailed)
    assert str(bad.error) == "the body is not valid gzip data (Content-Encoding: gzip)"
    assert isinstance(br, FetchFailed)
    assert str(br.error) == "unsupported Content-Encoding: br"
    assert isinstance(cut, FetchFailed)
    assert str(cut.error) == "the gzip body is truncated"


@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        (400, PermanentFeedError, "HTTP 400 Bad Request"),
        (401, PermanentFeedError, "HTTP 401 Unauthorized"),
        (403, PermanentFeedError, "HTTP 403 Forbidden"),
        (404, PermanentFeedError, "HTTP 404 Not Found"),
        (408, TransientFeedError, "HTTP 408 Request Timeout"),
        (410, PermanentFeedError, "HTTP 410 Gone: the publisher removed this feed"),
        (429, TransientFeedError, "HTTP 429 Too Many Requests"),
        (500, TransientFeedError, "HTTP 500 Internal Server Error"),
        (502, TransientFeedError, "HTTP 502 Bad Gateway"),
        (503, TransientFeedError, "HTTP 503 Service Unavailable"),
    ],
)
async def test_http_errors_map_to_transient_or_permanent(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits, status, kind, message
) -> None:
    server.static("/feed.xml", b"oops", status=status, headers={"X-Why": "test"})
    result = await fetch_feed(client, server.url("/feed.xml"), Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert type(result.error) is kind
    assert str(result.error) == message
    assert result.status == status
    assert result.transient is (kind is TransientFeedError)
    assert result.headers["x-why"] == "test"
    assert result.retry_after is None


async def test_retry_after_seconds_on_429(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    server.static("/feed.xml", b"", status=429, headers={"Retry-After": "120"})
    result = await fetch_feed(client, server.url("/feed.xml"), Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert result.retry_after == timedelta(seconds=120)


async def test_retry_after_http_date_on_503(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    server.static(
        "/feed.xml",
        b"",
        status=503,
        headers={"Retry-After": later.strftime("%a, %d %b %Y %H:%M:%S GMT")},
    )
    result = await fetch_feed(client, server.url("/feed.xml"), Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert result.retry_after is not None
    assert timedelta(minutes=58) < result.retry_after <= timedelta(hours=1)


async def test_permanent_redirect_chain_is_reported(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    server.static("/old", b"", status=301, headers={"Location": "/newer"})
    server.static("/newer", b"", status=308, headers={"Location": server.url("/newest")})
    server.static("/newest", b"<rss/>", headers=RSS)
    result = await fetch_feed(client, server.url("/old"), Validators('"e"'), limits)
    assert isinstance(result, Fetched)
    assert result.url == server.url("/newest")
    assert result.permanent_redirect == server.url("/newest")
    # The conditional headers follow the feed to its new address.
    assert server.requests_to("/newest")[0].headers["if-none-match"] == '"e"'


async def test_temporary_redirect_is_followed_but_not_remembered(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    server.static("/feed", b"", status=301, headers={"Location": "/moved"})
    server.static("/moved", b"", status=302, headers={"Location": "/today"})
    server.static("/today", b"", status=307, headers={"Location": "/final"})
    server.static("/final", b"<rss/>", headers=RSS)
    result = await fetch_feed(client, server.url("/feed"), Validators(), limits)
    assert isinstance(result, Fetched)
    assert result.url == server.url("/final")
    assert result.permanent_redirect == server.url("/moved")  # only the leading 301 counts


async def test_redirect_to_not_modified_keeps_the_new_url(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    server.static("/feed", b"", status=301, headers={"Location": "/new"})
    server.static("/new", b"", status=304)
    result = await fetch_feed(client, server.url("/feed"), Validators('"e"'), limits)
    assert isinstance(result, NotModified)
    assert result.permanent_redirect == server.url("/new")


async def test_too_many_redirects(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    for hop in range(10):
        server.static(f"/r{hop}", b"", status=302, headers={"Location": f"/r{hop + 1}"})
    result = await fetch_feed(client, server.url("/r0"), Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert isinstance(result.error, PermanentFeedError)
    assert str(result.error).startswith("more than 5 redirects")
    assert len(server.requests) == 6


async def test_redirect_without_location_or_to_another_scheme(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    server.static("/nowhere", b"", status=302)
    server.static("/file", b"", status=302, headers={"Location": "file:///etc/passwd"})
    nowhere = await fetch_feed(client, server.url("/nowhere"), Validators(), limits)
    to_file = await fetch_feed(client, server.url("/file"), Validators(), limits)
    assert isinstance(nowhere, FetchFailed)
    assert str(nowhere.error) == "HTTP 302 Found without a Location header"
    assert isinstance(to_file, FetchFailed)
    assert str(to_file.error) == "redirect to a non-HTTP URL: file:///etc/passwd"


async def test_connection_refused_is_transient(
    client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    closed = LocalServer(poll_interval=0.02)
    url = closed.url("/feed.xml")
    closed.close()
    result = await fetch_feed(client, url, Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert isinstance(result.error, TransientFeedError)
    assert str(result.error) == "connection refused"
    assert result.status is None


@pytest.mark.parametrize("url", ["ftp://example.org/feed", "not a url", "http://"])
async def test_bad_urls_are_permanent(
    client: httpx.AsyncClient, limits: FetchLimits, url: str
) -> None:
    result = await fetch_feed(client, url, Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert isinstance(result.error, PermanentFeedError)
    assert str(result.error).startswith("invalid feed URL")


NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"cache-control": "public, max-age=600"}, timedelta(seconds=600)),
        ({"cache-control": "max-age=600", "age": "100"}, timedelta(seconds=500)),
        ({"cache-control": "max-age=60", "age": "100"}, timedelta(0)),
        ({"cache-control": 'max-age="90"'}, timedelta(seconds=90)),
        ({"cache-control": "no-cache"}, timedelta(0)),
        ({"cache-control": "no-store, max-age=600"}, timedelta(0)),
        ({"expires": "Fri, 27 Nov 2026 13:00:00 GMT"}, timedelta(hours=1)),
        (
            {"expires": "Fri, 27 Nov 2026 13:00:00 GMT", "date": "Fri, 27 Nov 2026 12:30:00 GMT"},
            timedelta(minutes=30),
        ),
        ({"expires": "0"}, timedelta(0)),
        ({"expires": "Thu, 01 Jan 1970 00:00:00 GMT"}, timedelta(0)),
        (
            {"cache-control": "max-age=30", "expires": "Fri, 27 Nov 2026 13:00:00 GMT"},
            timedelta(seconds=30),
        ),
    ],
)
def test_cache_hint(headers: dict[str, str], expected: timedelta | None) -> None:
    assert cache_hint(headers, NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("30", timedelta(seconds=30)),
        ("Fri, 27 Nov 2026 12:05:00 GMT", timedelta(minutes=5)),
        ("Fri, 27 Nov 2026 11:00:00 GMT", timedelta(0)),
        ("soon", None),
        ("-5", None),
    ],
)
def test_retry_after(value: str | None, expected: timedelta | None) -> None:
    headers = {"retry-after": value} if value is not None else {}
    assert retry_after(headers, NOW) == expected
