"""WebSub's wire protocol (monitor.feeds.websub): push signatures, and requests to a hub that is
a stranger's server, against a real one on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from monitor.feeds.websub import ask_hub, hub_form, make_hub_client, signature_problem
from monitor.http.guard import AddressPolicy, networks
from tests.support.servers import LocalServer

SECRET_KEY = "0123456789abcdef" * 4
BODY = b"<rss version='2.0'><channel><title>x</title></channel></rss>"


def _sign(method: str, key: str = SECRET_KEY, body: bytes = BODY) -> str:
    return f"{method}=" + hmac.new(key.encode(), body, getattr(hashlib, method)).hexdigest()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (_sign("sha1"), None),
        (_sign("sha256"), None),
        (_sign("sha384"), None),
        (_sign("sha512"), None),
        (_sign("sha256").upper().replace("SHA256=", "sha256="), None),  # hex case is no matter
        (_sign("sha256", key="another secret"), "bad_signature"),
        (_sign("sha256", body=BODY + b" "), "bad_signature"),  # the body was changed
        (_sign("sha256").replace("sha256", "sha1"), "bad_signature"),  # method and MAC disagree
        (
            "md5=" + hashlib.md5(BODY).hexdigest(),
            "bad_signature",
        ),  # a method the spec does not name
        (_sign("sha256").replace("=", ""), "bad_signature"),
        ("sha256=\u00e9", "bad_signature"),  # not ASCII: compare_digest would raise on str
        ("sha256=", "bad_signature"),
        ("", "unsigned"),
        (None, "unsigned"),
    ],
)
def test_signatures_are_checked_with_every_method_the_spec_names(
    header: str | None, expected: str | None
) -> None:
    assert signature_problem(header, SECRET_KEY, BODY) == expected


# -- a hub is a stranger's server ---------------------------------------------------------------


OPEN = AddressPolicy(allow_private=True)  # the test hubs listen on 127.0.0.1


async def test_requests_to_a_hostile_hub_are_bounded(server: LocalServer) -> None:
    released = threading.Event()
    served: list[int] = []

    def hang(handler: BaseHTTPRequestHandler) -> None:
        released.wait(timeout=30)  # answers nothing until the test is over

    def flood(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(500)
        handler.send_header("Content-Length", str(1 << 30))
        handler.end_headers()
        try:
            for _ in range(1 << 14):  # 1 GiB announced; stops when the client hangs up
                handler.wfile.write(b"x" * 65536)
                served.append(65536)
        except OSError:
            return

    server.raw("/hang", hang)
    server.raw("/flood", flood)
    server.static("/moved", b"", status=307, headers={"Location": server.url("/hub")})
    server.static("/hub", b"", status=202)
    form = {"hub.mode": "subscribe", "hub.topic": "https://a.test/", "hub.callback": "x"}
    try:
        async with make_hub_client() as client:
            assert await ask_hub(client, server.url("/hub"), form, OPEN) is None
            moved = await ask_hub(client, server.url("/moved"), form, OPEN)
            assert moved == "the hub answered 307 (redirects are not followed)"
            assert len(server.requests_to("/hub")) == 1  # the redirect was not followed
            hung = await ask_hub(client, server.url("/hang"), form, OPEN, deadline=0.5)
            assert hung == "the hub did not answer within 0.5s"
            flooded = await ask_hub(client, server.url("/flood"), form, OPEN)
            assert flooded == "the hub answered 500: " + "x" * 200
            refused = await ask_hub(client, "http://127.0.0.1:9/hub", form, OPEN)
            assert refused is not None
            assert refused.startswith("cannot reach the hub: ConnectError")
    finally:
        released.set()
    assert sum(served) < 64 << 20  # the client hung up long before the announced gigabyte


async def test_a_hub_a_feed_names_may_not_be_on_an_internal_address(server: LocalServer) -> None:
    server.static("/hub", b"", status=202)
    form = {"hub.mode": "subscribe", "hub.topic": "https://a.test/", "hub.callback": "x"}
    async with make_hub_client() as client:
        refused = await ask_hub(client, server.url("/hub"), form, AddressPolicy())
        by_name = await ask_hub(
            client, f"http://localhost:{server.port}/hub", form, AddressPolicy()
        )
        allowed = AddressPolicy(allow_networks=networks(["127.0.0.0/8", "::1/128"]))
        assert await ask_hub(client, server.url("/hub"), form, allowed) is None
    assert refused == (
        "refused to connect to 127.0.0.1: a loopback address, which a feed or hub may not steer "
        "monitor to (fetch.allow_private or fetch.allow_networks allow it)"
    )
    assert by_name is not None
    assert by_name.startswith("refused to connect to localhost (")
    assert len(server.requests_to("/hub")) == 1  # only the allowed one reached it


def test_a_subscription_form_names_its_secret_and_lease_and_an_unsubscription_neither() -> None:
    subscribe = hub_form("subscribe", "https://a.test/", "https://cb/x", "s3cret", 3600)
    assert subscribe == {
        "hub.mode": "subscribe",
        "hub.topic": "https://a.test/",
        "hub.callback": "https://cb/x",
        "hub.secret": "s3cret",
        "hub.lease_seconds": "3600",
    }
    assert "hub.lease_seconds" not in hub_form("subscribe", "t", "c", "s")
    unsubscribe = hub_form("unsubscribe", "t", "c", "s", 3600)
    assert unsubscribe == {"hub.mode": "unsubscribe", "hub.topic": "t", "hub.callback": "c"}
