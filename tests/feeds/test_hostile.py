"""Feeds that attack: each one served by a real local server, fetched and parsed end to end.

Limits come from the `limits` fixture (1 MiB, 1 s deadline) so every case ends quickly.
"""

from __future__ import annotations

import asyncio
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from monitor.errors import PermanentFeedError, TransientFeedError
from monitor.feeds.bounds import MAX_ENTRIES
from monitor.feeds.fetcher import Fetched, FetchFailed, FetchLimits, MiB, Validators, fetch_feed
from monitor.feeds.parser import ParsedFeed, ParseFailed, parse_feed
from tests.feeds import writers
from tests.feeds.conftest import feed_file
from tests.support.servers import LocalServer

GiB = 1024 * MiB
MARKER = "MONITOR-SECRET-7f3a9c"


async def fetch_and_parse(
    client: httpx.AsyncClient, url: str, limits: FetchLimits
) -> tuple[Fetched | FetchFailed, ParsedFeed | ParseFailed | None]:
    fetched = await fetch_feed(client, url, Validators(), limits)
    assert not isinstance(fetched, FetchFailed) or fetched.error
    if not isinstance(fetched, Fetched):
        assert isinstance(fetched, FetchFailed)
        return fetched, None
    return fetched, parse_feed(fetched.body, url=fetched.url, headers=fetched.headers)


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A local file an attacker would love to read, holding a marker and a feed of its own."""
    path = tmp_path / "secret.xml"
    path.write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{MARKER}</title>'
        f"<item><title>{MARKER}</title><link>https://x/{MARKER}</link></item></channel></rss>"
    )
    return path


@pytest.mark.parametrize(
    ("fixture", "encoding"),
    [
        ("hostile/xxe.xml", "utf-8"),
        ("hostile/xxe.xml", "utf-16"),  # what a byte-level filter would miss
        ("hostile/xxe_parameter.xml", "utf-8"),
    ],
)
async def test_xxe_never_puts_a_local_file_into_an_item(
    server: LocalServer,
    client: httpx.AsyncClient,
    limits: FetchLimits,
    secret_file: Path,
    fixture: str,
    encoding: str,
) -> None:
    text = feed_file(fixture).decode().replace("{path}", str(secret_file))
    if encoding != "utf-8":
        text = text.replace('encoding="utf-8"', f'encoding="{encoding}"')
    server.static("/xxe.xml", text.encode(encoding), headers={"Content-Type": "application/xml"})
    _, parsed = await fetch_and_parse(client, server.url("/xxe.xml"), limits)
    assert parsed is not None
    assert MARKER not in repr(parsed)  # titles, items, warnings, links: nowhere
    if isinstance(parsed, ParsedFeed):
        assert all(MARKER not in item.title + item.summary for item in parsed.items)


async def test_a_body_that_is_a_file_name_is_not_opened(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits, secret_file: Path
) -> None:
    """Given bytes, feedparser.parse would open a file of that name; we hand it a stream."""
    server.static("/path", str(secret_file).encode(), headers={"Content-Type": "application/xml"})
    _, parsed = await fetch_and_parse(client, server.url("/path"), limits)
    assert isinstance(parsed, ParseFailed)
    assert MARKER not in repr(parsed)


async def test_billion_laughs_stays_small(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    # never expanded, so never slow either (a timing claim would fail on a busy machine)
    server.static(
        "/lol.xml", feed_file("hostile/billion_laughs.xml"), headers={"Content-Type": "text/xml"}
    )
    _, parsed = await fetch_and_parse(client, server.url("/lol.xml"), limits)
    assert parsed is not None
    assert len(repr(parsed)) < 10_000  # 10**9 "lol"s would be 3 GB
    assert "lollollol" not in repr(parsed)


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """64 MiB of zeros in about 64 KiB of gzip, built without holding the 64 MiB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MiB)
    parts = [packer.compress(b"<rss>")]
    parts += [packer.compress(zeros) for _ in range(64)]
    parts.append(packer.flush())
    return b"".join(parts)


async def test_gzip_bomb_is_capped_after_decompression(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits, gzip_bomb: bytes
) -> None:
    assert len(gzip_bomb) < limits.max_bytes  # small on the wire: only the decoded size tells
    server.static("/bomb.xml", gzip_bomb, headers={"Content-Encoding": "gzip"})
    result = await fetch_feed(client, server.url("/bomb.xml"), Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert isinstance(result.error, PermanentFeedError)
    assert str(result.error) == "body larger than 1 MiB after decompression"


async def test_one_gib_streamed_body_is_cut_at_the_cap(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    progress = writers.Progress()
    chunks = writers.repeat(b"<item>" * 10_000, GiB)  # a generator: nothing near 1 GiB exists
    server.raw("/huge.xml", writers.chunked(progress, chunks))
    result = await fetch_feed(client, server.url("/huge.xml"), Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert str(result.error) == "body larger than 1 MiB"
    assert result.status == 200
    assert await asyncio.to_thread(progress.done.wait, 5)
    assert progress.sent < 64 * MiB  # the client hung up long before the gibibyte


async def test_one_gib_declared_length_is_refused_before_reading(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    progress = writers.Progress()
    chunks = writers.repeat(b"x" * 65536, GiB)
    server.raw("/huge.xml", writers.declared(progress, GiB, chunks))
    result = await fetch_feed(client, server.url("/huge.xml"), Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert str(result.error) == "body larger than 1 MiB"
    assert await asyncio.to_thread(progress.done.wait, 5)
    assert progress.sent < 64 * MiB


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # frees any writer still dripping, so the server can close


async def test_drip_is_stopped_by_the_deadline(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits, stop: threading.Event
) -> None:
    # A byte every 50 ms: the 1 s read timeout never fires, only the overall deadline can.
    progress = writers.Progress()
    server.raw("/drip.xml", writers.drip(progress, stop, interval=0.05, prefix=b"<rss>"))
    started = time.monotonic()
    result = await fetch_feed(client, server.url("/drip.xml"), Validators(), limits)
    waited = time.monotonic() - started
    assert isinstance(result, FetchFailed)
    assert isinstance(result.error, TransientFeedError)
    assert str(result.error) == "timed out after 1s"
    assert result.status == 200
    assert waited >= limits.deadline  # the deadline, not a read timeout, ended it
    # it really was dripping: past its first bytes (how many more came in the second depends
    # on how often a busy machine ran the server's thread: once, in one CI run)
    assert progress.sent >= 1


async def test_silent_server_hits_the_read_timeout(
    server: LocalServer, stop: threading.Event
) -> None:
    progress = writers.Progress()
    server.raw("/silent.xml", writers.drip(progress, stop, interval=10))
    limits = FetchLimits(deadline=5, read_timeout=0.3, connect_timeout=1)
    async with httpx.AsyncClient() as plain:  # any client: fetch_feed applies the limits
        result = await fetch_feed(plain, server.url("/silent.xml"), Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert isinstance(result.error, TransientFeedError)
    assert str(result.error) == "timed out: no data for 0.3s"
    assert result.elapsed < 1


async def test_redirect_loop_is_named(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    server.static("/a", b"", status=302, headers={"Location": "/b"})
    server.static("/b", b"", status=301, headers={"Location": server.url("/a")})
    result = await fetch_feed(client, server.url("/a"), Validators(), limits)
    assert isinstance(result, FetchFailed)
    assert isinstance(result.error, PermanentFeedError)
    a, b = server.url("/a"), server.url("/b")
    assert str(result.error) == f"redirect loop: {a} -> {b} -> {a}"
    assert len(server.requests) == 2


async def test_html_page_is_refused_with_its_feed_links(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    server.static(
        "/news/", feed_file("html_page.html"), headers={"Content-Type": "text/html; charset=utf-8"}
    )
    _, parsed = await fetch_and_parse(client, server.url("/news/"), limits)
    assert isinstance(parsed, ParseFailed)
    assert parsed.feed_links == (
        server.url("/feeds/rss.xml"),
        "https://news.example.org/feeds/atom.xml",
    )
    assert str(parsed.error) == (
        "not a feed: the server sent an HTML page; it links to feeds: "
        f"{server.url('/feeds/rss.xml')}, https://news.example.org/feeds/atom.xml"
    )


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "a PNG image"),
        (bytes(range(256)) * 16, "binary data"),
        (zlib.compress(b"<rss/>" * 100), "binary data"),
        (b"\x1f\x8b\x08\x00" + bytes(100), "gzip data"),  # gzip not declared as an encoding
    ],
    ids=["png", "bytes", "zlib", "undeclared-gzip"],
)
async def test_binary_is_refused_clearly(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits, body: bytes, what: str
) -> None:
    server.static("/feed.xml", body, headers={"Content-Type": "application/rss+xml"})
    _, parsed = await fetch_and_parse(client, server.url("/feed.xml"), limits)
    assert isinstance(parsed, ParseFailed)
    assert str(parsed.error) == f"not a feed: the response is {what}, not text"


@pytest.mark.parametrize(
    ("fixture", "content_type", "title"),
    [
        ("ru_windows1251.xml", "text/xml", "Россия и Куба подписали соглашение о поставках нефти"),
        (
            "ru_windows1251.xml",
            "application/rss+xml; charset=utf-8",  # the header lies, the prolog is right
            "Россия и Куба подписали соглашение о поставках нефти",
        ),
        (
            "ru_windows1251_declared_utf8.xml",  # the prolog lies, no charset in the header
            "application/rss+xml",
            "Россия и Куба подписали соглашение о поставках нефти",
        ),
        ("ru_koi8r.xml", "application/xml", "Россия и Куба подписали соглашение о поставках нефти"),
        (
            "ru_koi8r_undeclared.xml",
            "text/html",
            "Россия и Куба подписали соглашение о поставках нефти",
        ),
        (
            "es_iso88591_declared_utf8.xml",
            "application/rss+xml; charset=utf-8",
            "Cooperación económica: año de señales",
        ),
        ("es_bad_utf8.xml", "application/rss+xml", "Cooperación económica: año de se\ufffdales"),
    ],
)
async def test_wrongly_declared_encodings_still_read(
    server: LocalServer,
    client: httpx.AsyncClient,
    limits: FetchLimits,
    fixture: str,
    content_type: str,
    title: str,
) -> None:
    server.static("/feed.xml", feed_file(fixture), headers={"Content-Type": content_type})
    _, parsed = await fetch_and_parse(client, server.url("/feed.xml"), limits)
    assert isinstance(parsed, ParsedFeed), parsed
    assert parsed.items[0].title == title


@pytest.mark.parametrize(
    ("status", "kind"),
    [(500, TransientFeedError), (410, PermanentFeedError), (429, TransientFeedError)],
)
async def test_error_statuses_end_to_end(
    server: LocalServer,
    client: httpx.AsyncClient,
    limits: FetchLimits,
    status: int,
    kind: type[Exception],
) -> None:
    server.static("/feed.xml", b"<html>error</html>", status=status, headers={"Retry-After": "7"})
    fetched, parsed = await fetch_and_parse(client, server.url("/feed.xml"), limits)
    assert parsed is None
    assert isinstance(fetched, FetchFailed)
    assert type(fetched.error) is kind
    assert fetched.status == status


async def test_deeply_nested_json_is_refused(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    server.static(
        "/feed.json", b"[" * 200_000 + b"]" * 200_000, headers={"Content-Type": "application/json"}
    )
    _, parsed = await fetch_and_parse(client, server.url("/feed.json"), limits)
    assert isinstance(parsed, ParseFailed)
    assert str(parsed.error) == "not a feed: JSON nested too deeply"


async def test_huge_malformed_document_parses_in_bounded_work(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    """Ill-formed XML drops feedparser to its slower loose parser: what it is given of 1 MiB is
    cut to the entry cap first, so its work is bounded (its time: python -m bench.hostile_once)."""
    item = b"<item><title>t &bogus; <b>x</title><link>https://x/</link></item>"
    body = b"<rss><channel><title>loose</title>" + item * (limits.max_bytes // len(item) - 1)
    server.static("/feed.xml", body[: limits.max_bytes], headers={"Content-Type": "text/xml"})
    _, parsed = await fetch_and_parse(client, server.url("/feed.xml"), limits)
    assert isinstance(parsed, ParsedFeed)
    assert len(parsed.items) == MAX_ENTRIES  # 16,000 were sent
    assert parsed.losses[0].startswith(f"read only the first {MAX_ENTRIES} of its ")


async def test_external_dtd_and_entities_are_never_fetched(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    """No request leaves for a DTD or an http:// entity (SSRF through the parser)."""
    dtd = server.url("/evil.dtd")
    body = (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss SYSTEM "{dtd}" [\n'
        f'  <!ENTITY remote SYSTEM "{server.url("/entity")}">\n'
        f'  <!ENTITY % pe SYSTEM "{server.url("/pe")}"> %pe;\n]>\n'
        '<rss version="2.0"><channel><title>t</title>'
        "<item><title>x &remote;</title><link>https://x/</link></item></channel></rss>"
    ).encode()
    server.static("/feed.xml", body, headers={"Content-Type": "application/rss+xml"})
    server.static("/evil.dtd", f"<!ENTITY leak '{MARKER}'>".encode())
    server.static("/entity", MARKER.encode())
    server.static("/pe", f"<!ENTITY leak2 '{MARKER}'>".encode())
    _, parsed = await fetch_and_parse(client, server.url("/feed.xml"), limits)
    assert MARKER not in repr(parsed)
    assert [request.path for request in server.requests] == ["/feed.xml"]
