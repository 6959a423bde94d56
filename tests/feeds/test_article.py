"""Article pages (monitor.feeds.article) from real servers on 127.0.0.1: robots.txt, the caps,
the address policy, the feed's headers, and the main text of realistic pages in en, es, ru."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from monitor.errors import PermanentFeedError, TransientFeedError
from monitor.feeds.article import (
    Page,
    PageFailed,
    RobotsCache,
    extract_text,
    page_limits,
    read_page,
)
from monitor.feeds.fetcher import FetchLimits
from monitor.feeds.hosts import HostLimiter
from monitor.http.guard import AddressPolicy, networks
from tests.support.clock import ManualClock
from tests.support.servers import LocalServer, RecordedRequest, Reply

PAGES = Path(__file__).resolve().parent.parent / "data" / "fulltext" / "pages"
HTML = {"Content-Type": "text/html; charset=utf-8"}
ROBOTS = {"Content-Type": "text/plain"}


def page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


@pytest.fixture
def other() -> Iterator[LocalServer]:
    """Another origin: where a feed's links may point, though nobody configured it."""
    with LocalServer(poll_interval=0.02) as local:
        yield local


async def read(
    client: httpx.AsyncClient,
    url: str,
    limits: FetchLimits,
    *,
    feed_url: str,
    robots: RobotsCache | None = None,
    headers: dict[str, str] | None = None,
) -> Page | PageFailed:
    return await read_page(
        client,
        url,
        limits,
        robots or RobotsCache(),
        HostLimiter(),
        feed_url=feed_url,
        headers=headers,
    )


@pytest.mark.parametrize(
    ("name", "says", "not_said"),
    [
        (
            "en-minister-havana.html",
            ["Sergei Lavrov, arrived in Havana", "port of Matanzas"],
            ["sanctions on Venezuela", "Cheap flights", "Learn Spanish", "All rights reserved"],
        ),
        (
            "es-canciller-habana.html",
            ["Serguéi Lavrov, llegó este martes a La Habana", "escala en Managua"],
            ["Vuelos baratos", "Internacional"],
        ),
        (
            "ru-minister-gavana.html",
            ["Сергей Лавров во вторник прибыл в Гавану", "отправится в Никарагуа"],
            ["Санкции против Венесуэлы", "Дешёвые билеты", "Все права защищены"],
        ),
    ],
)
def test_the_main_text_leaves_out_navigation_ads_and_comments(
    name: str, says: list[str], not_said: list[str]
) -> None:
    text = extract_text(Page("http://127.0.0.1/article", page(name)))
    assert text is not None
    flat = " ".join(text.split())
    for sentence in says:
        assert sentence in flat
    for sentence in not_said:
        assert sentence not in flat


@pytest.mark.parametrize("body", [b"", b"\x00\xff\xfe not markup", b"<html><body></body></html>"])
def test_a_page_without_text_has_none(body: bytes) -> None:
    assert extract_text(Page("http://127.0.0.1/", body)) is None


async def test_a_page_on_the_feeds_origin_is_read_with_the_feeds_headers(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    server.static("/a.html", page("en-minister-havana.html"), headers=HTML)
    result = await read(
        client,
        server.url("/a.html"),
        limits,
        feed_url=server.url("/feed.xml"),
        headers={"X-Api-Key": "k-123"},
    )
    assert isinstance(result, Page)
    assert result.body == page("en-minister-havana.html")
    (request,) = server.requests_to("/a.html")
    assert request.headers["x-api-key"] == "k-123"
    (robots,) = server.requests_to("/robots.txt")  # a 404: no rules, everything allowed
    assert "x-api-key" not in robots.headers


async def test_a_page_elsewhere_is_checked_where_it_connects_and_gets_no_headers(
    server: LocalServer, other: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    other.static("/a.html", page("en-minister-havana.html"), headers=HTML)
    url = other.url("/a.html")
    refused = await read(
        client, url, limits, feed_url=server.url("/feed.xml"), headers={"X-Api-Key": "k"}
    )
    assert isinstance(refused, PageFailed)
    assert isinstance(refused.error, PermanentFeedError)
    assert "refused to connect to 127.0.0.1: a loopback address" in str(refused.error)
    assert other.requests == []  # not even its robots.txt
    allowed = dataclasses.replace(
        limits, address_policy=AddressPolicy(allow_networks=networks(["127.0.0.0/8"]))
    )
    result = await read(
        client, url, allowed, feed_url=server.url("/feed.xml"), headers={"X-Api-Key": "k"}
    )
    assert isinstance(result, Page)
    assert all("x-api-key" not in request.headers for request in other.requests)


@pytest.mark.parametrize(
    "link",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.0.0.1/admin",
        "http://[::ffff:127.0.0.1]:9/",
    ],
)
async def test_links_into_the_operators_networks_are_refused(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits, link: str
) -> None:
    result = await read(client, link, limits, feed_url=server.url("/feed.xml"))
    assert isinstance(result, PageFailed)
    assert "refused to connect" in str(result.error)


async def test_a_redirect_from_the_feeds_origin_elsewhere_is_checked(
    server: LocalServer, other: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    other.static("/secret", b"<html><body><p>internal</p></body></html>", headers=HTML)
    server.static("/a.html", b"", status=302, headers={"Location": other.url("/secret")})
    result = await read(client, server.url("/a.html"), limits, feed_url=server.url("/feed.xml"))
    assert isinstance(result, PageFailed)
    assert "loopback" in str(result.error)
    assert other.requests == []


async def test_robots_txt_disallow_for_our_user_agent_is_honoured(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    rules = b"User-agent: *\nDisallow: /admin/\n\nUser-agent: monitor\nDisallow: /private/\n"
    server.static("/robots.txt", rules, headers=ROBOTS)
    server.static("/private/a.html", page("en-minister-havana.html"), headers=HTML)
    server.static("/news/a.html", page("en-minister-havana.html"), headers=HTML)
    robots = RobotsCache()
    feed = server.url("/feed.xml")
    refused = await read(
        client, server.url("/private/a.html"), limits, feed_url=feed, robots=robots
    )
    assert isinstance(refused, PageFailed)
    assert refused.disallowed
    assert str(refused.error) == "disallowed by robots.txt"
    assert server.requests_to("/private/a.html") == []
    allowed = await read(client, server.url("/news/a.html"), limits, feed_url=feed, robots=robots)
    assert isinstance(allowed, Page)
    assert len(server.requests_to("/robots.txt")) == 1  # cached for the origin


async def test_robots_txt_is_looked_at_again_after_its_ttl(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    server.static("/robots.txt", b"User-agent: *\nDisallow:\n", headers=ROBOTS)
    server.static("/a.html", page("ru-minister-gavana.html"), headers=HTML)
    clock = ManualClock()
    robots = RobotsCache(ttl=60, clock=clock)
    feed = server.url("/feed.xml")
    assert isinstance(
        await read(client, server.url("/a.html"), limits, feed_url=feed, robots=robots), Page
    )
    clock.now += 59
    assert isinstance(
        await read(client, server.url("/a.html"), limits, feed_url=feed, robots=robots), Page
    )
    assert len(server.requests_to("/robots.txt")) == 1
    server.static("/robots.txt", b"User-agent: *\nDisallow: /\n", headers=ROBOTS)
    clock.now += 2
    result = await read(client, server.url("/a.html"), limits, feed_url=feed, robots=robots)
    assert isinstance(result, PageFailed)
    assert result.disallowed
    assert len(server.requests_to("/robots.txt")) == 2
    assert len(server.requests_to("/a.html")) == 2


async def test_a_robots_txt_that_fails_keeps_us_off_the_site(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    """RFC 9309: a 5xx (the site is unreachable) means no crawling; a 4xx means no rules."""
    server.static("/robots.txt", b"down", status=503)
    server.static("/a.html", page("en-minister-havana.html"), headers=HTML)
    result = await read(client, server.url("/a.html"), limits, feed_url=server.url("/f.xml"))
    assert isinstance(result, PageFailed)
    assert isinstance(result.error, TransientFeedError)
    assert str(result.error).startswith("robots.txt not readable: HTTP 503")
    assert server.requests_to("/a.html") == []
    server.static("/robots.txt", b"gone", status=410)
    result = await read(client, server.url("/a.html"), limits, feed_url=server.url("/f.xml"))
    assert isinstance(result, Page)


async def test_an_oversize_page_and_a_non_html_one_are_not_read(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    big = (
        b"<html><body><article>" + b"<p>Lavrov in Havana.</p>" * 2000 + b"</article></body></html>"
    )
    server.static("/big.html", big, headers=HTML)
    server.static("/doc.pdf", b"%PDF-1.7", headers={"Content-Type": "application/pdf"})
    small = page_limits(limits, max_bytes=16 * 1024, deadline=1.0)
    feed = server.url("/feed.xml")
    oversize = await read(client, server.url("/big.html"), small, feed_url=feed)
    assert isinstance(oversize, PageFailed)
    assert str(oversize.error) == "body larger than 16 KiB"
    pdf = await read(client, server.url("/doc.pdf"), small, feed_url=feed)
    assert isinstance(pdf, PageFailed)
    assert str(pdf.error) == "not an HTML page (application/pdf)"


async def test_a_page_that_never_ends_is_cut_off_at_the_deadline(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    def drip(handler: object) -> None:
        import time  # noqa: PLC0415 - only this handler sleeps: it is the slow server

        write = handler.wfile.write  # type: ignore[attr-defined]
        write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(40):
            write(b"<p>x</p>")
            handler.wfile.flush()  # type: ignore[attr-defined]
            time.sleep(0.05)

    server.raw("/slow.html", drip)
    short = page_limits(limits, max_bytes=1024 * 1024, deadline=0.5)
    result = await read(client, server.url("/slow.html"), short, feed_url=server.url("/f.xml"))
    assert isinstance(result, PageFailed)
    assert str(result.error) == "timed out after 0.5s"


async def test_only_http_links_are_followed(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    result = await read(client, "file:///etc/passwd", limits, feed_url=server.url("/f.xml"))
    assert isinstance(result, PageFailed)
    assert server.requests == []


async def test_pages_take_their_turn_under_the_hosts_limit(
    server: LocalServer, client: httpx.AsyncClient, limits: FetchLimits
) -> None:
    """With one request per host at a time, a second page waits for the first: each handler
    holds its request until another arrives (or a short while), so two at once would be seen."""
    in_flight, most = 0, 0
    changed = threading.Condition()

    def held(_request: RecordedRequest) -> Reply:
        nonlocal in_flight, most
        with changed:
            in_flight += 1
            most = max(most, in_flight)
            changed.notify_all()
            changed.wait_for(lambda: in_flight > 1, timeout=0.3)
            in_flight -= 1
        return Reply(200, page("en-minister-havana.html"), HTML)

    for name in ("a", "b", "c"):
        server.route(f"/{name}.html", held)
    server.static("/robots.txt", b"", headers=ROBOTS)
    hosts, robots = HostLimiter(per_host=1), RobotsCache()
    feed = server.url("/feed.xml")
    results = await asyncio.gather(
        *(
            read_page(client, server.url(f"/{name}.html"), limits, robots, hosts, feed_url=feed)
            for name in ("a", "b", "c")
        )
    )
    assert all(isinstance(result, Page) for result in results)
    assert most == 1


def test_the_extractor_is_imported_only_when_a_page_is_read() -> None:
    code = (
        "import sys, monitor.cli.main, monitor.pipeline.refresh, monitor.runtime.once; "
        "print('trafilatura' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"
