"""Cookies set by outsiders, through the real clients and a real server on 127.0.0.1: a feed's
are kept within bounds and sent back to it; a receiver's and a hub's are never kept."""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from monitor.delivery.sending import make_delivery_client
from monitor.feeds.fetcher import Fetched, Validators, fetch_feed, make_client
from monitor.feeds.websub import make_hub_client
from monitor.http import cookies
from monitor.http.cookies import COOKIE_BYTES, PER_DOMAIN
from tests.support.servers import LocalServer

FEED = b"<rss version='2.0'><channel><title>t</title><item><title>a</title></item></channel></rss>"
NEW_NAMES_PER_ANSWER = 30


def serve_cookies(server: LocalServer, path: str, cookies: Callable[[int], list[str]]) -> None:
    """Serve FEED at `path`, its n-th answer (from 1) setting the cookies `cookies(n)`."""

    def write(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.send_header("Content-Length", str(len(FEED)))
        for cookie in cookies(len(server.requests_to(path))):
            handler.send_header("Set-Cookie", f"{cookie}; Path=/")
        handler.end_headers()
        handler.wfile.write(FEED)

    server.raw(path, write)


def new_names(answer: int) -> list[str]:
    """Cookies of new names at every answer, a `session` cookie that changes each time, and,
    the first time, one cookie larger than a cookie may be."""
    names = [f"session={answer}", *(f"c{answer}x{i}=v" for i in range(NEW_NAMES_PER_ANSWER))]
    return [*names, f"huge={'x' * COOKIE_BYTES}"] if answer == 1 else names


async def test_a_feed_that_sets_new_cookies_at_every_poll_fills_its_share_and_no_more(
    server: LocalServer,
) -> None:
    serve_cookies(server, "/feed.xml", new_names)
    async with make_client() as client:
        for _poll in range(5):  # 155 cookies offered
            fetched = await fetch_feed(client, server.url("/feed.xml"), Validators())
            assert isinstance(fetched, Fetched)
        held = {cookie.name: cookie.value for cookie in client.cookies.jar}
    assert len(held) == PER_DOMAIN
    assert "huge" not in held
    assert held["session"] == "5"  # a cookie it holds is still updated when the jar is full
    last = server.requests_to("/feed.xml")[-1]
    assert "session=4" in last.headers["cookie"]  # and the feed gets its cookies back


async def test_the_jar_as_a_whole_is_bounded_too(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many feeds' cookies together stop at TOTAL (lowered here, where one server stands for
    many feeds)."""
    monkeypatch.setattr(cookies, "TOTAL", PER_DOMAIN - 10)
    serve_cookies(server, "/feed.xml", new_names)
    async with make_client() as client:
        for _poll in range(3):
            await fetch_feed(client, server.url("/feed.xml"), Validators())
        assert len(list(client.cookies.jar)) == PER_DOMAIN - 10


async def test_of_one_answer_only_a_domains_worth_of_cookies_is_read(server: LocalServer) -> None:
    """Each cookie offered is checked against the whole jar, so an answer's head of hundreds
    of tiny cookies would cost that many passes: the first PER_DOMAIN of an answer count, and
    an update of a held cookie after them is not read either."""

    def a_domains_worth_and_more(answer: int) -> list[str]:
        names = [f"n{index}=v" for index in range(PER_DOMAIN + 10)] if answer == 2 else []
        return [*names, f"session={answer}"]

    serve_cookies(server, "/many", a_domains_worth_and_more)
    async with make_client() as client:
        for _poll in range(2):
            await fetch_feed(client, server.url("/many"), Validators())
        held = {cookie.name: cookie.value for cookie in client.cookies.jar}
    assert held["session"] == "1"
    assert len(held) == PER_DOMAIN


async def test_receivers_and_hubs_are_never_sent_back_their_cookies(server: LocalServer) -> None:
    server.static("/hook", b"ok", headers={"Set-Cookie": "tracker=1; Path=/"})
    clients: list[httpx.AsyncClient] = [make_delivery_client(), make_hub_client()]
    for client in clients:
        async with client:
            for _attempt in range(2):
                answer = await client.post(server.url("/hook"), content=b"{}")
                assert answer.status_code == 200
            assert not list(client.cookies.jar)
    posted = server.requests_to("/hook")
    assert len(posted) == 4
    assert all("cookie" not in request.headers for request in posted)
