"""A receiver is hostile: one attempt reads a bounded part of its answer and ends by its deadline.

Real servers on 127.0.0.1 announce a gigabyte and stream it, or trickle a byte at a time; what
they managed to send before the client hung up shows how much was read.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from monitor.delivery.sending import attempt, make_delivery_client
from monitor.errors import TransientDeliveryError
from monitor.store import DueDelivery
from tests.delivery.support import event, hook
from tests.support.hostile_receivers import GIB, HostileReceiver, flood, trickle
from tests.support.servers import LocalServer

# what a client that stops reading lets a server write into the sockets' buffers beforehand
ANSWER_LIMIT = 65536
BUFFERED = 32 << 20


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_delivery_client() as c:
        yield c


@pytest.fixture
def hostile() -> Iterator[list[HostileReceiver]]:
    made: list[HostileReceiver] = []
    yield made
    for receiver in made:  # a route still writing ends with the test
        receiver.stop.set()


def _delivery(alert_id: str = "alrt_1") -> DueDelivery:
    return DueDelivery(1, alert_id, "hook", 0, json.dumps(event(alert_id)))


async def test_a_gigabyte_answer_to_a_delivery_is_not_read(
    server: LocalServer, client: httpx.AsyncClient, hostile: list[HostileReceiver]
) -> None:
    receiver = flood(server, "/hook")
    hostile.append(receiver)
    outcome = await attempt(client, hook(url=receiver.url), _delivery())
    assert outcome.delivered  # a 2xx is success; what follows it is not our business
    assert receiver.hung_up.wait(30)
    assert receiver.sent < BUFFERED < GIB


async def test_a_gigabyte_refusal_is_cut_to_an_excerpt(
    server: LocalServer, client: httpx.AsyncClient, hostile: list[HostileReceiver]
) -> None:
    receiver = flood(server, "/hook", status=400, head=b"invalid_blocks" + b"x" * 500)
    hostile.append(receiver)
    outcome = await attempt(client, hook(url=receiver.url), _delivery())
    assert str(outcome.error) == "HTTP 400 Bad Request: invalid_blocks" + "x" * 186
    assert receiver.hung_up.wait(30)
    assert receiver.sent < BUFFERED


async def test_a_trickling_answer_ends_the_attempt_at_its_deadline(
    server: LocalServer, client: httpx.AsyncClient, hostile: list[HostileReceiver]
) -> None:
    # every read gets a byte well within 2 s; only a deadline for the whole attempt ends it
    receiver = trickle(server, "/hook", every=0.05)
    hostile.append(receiver)
    outcome = await attempt(client, hook(url=receiver.url, timeout="2s"), _delivery())
    assert isinstance(outcome.error, TransientDeliveryError)
    assert str(outcome.error) == "no complete answer within 2s"
    assert outcome.status_code is None
    assert receiver.hung_up.wait(30)
    assert receiver.sent < 1 << 20  # the announced answer never came


async def test_discord_message_id_is_read_from_a_flooded_answer(
    server: LocalServer, client: httpx.AsyncClient, hostile: list[HostileReceiver]
) -> None:
    # a valid JSON document, padded by a gigabyte of whitespace: its first bytes hold the id
    receiver = flood(server, "/api/webhooks/1/tok", head=b'{"id": "112233445566778899"}')
    hostile.append(receiver)
    discord = hook(format="discord", url=receiver.url)
    outcome = await attempt(client, discord, _delivery())
    assert outcome.delivered
    assert outcome.remote_id == "112233445566778899"
    assert receiver.hung_up.wait(30)
    assert receiver.sent < BUFFERED


async def test_discord_message_id_of_a_long_message_object(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    # Discord answers `?wait=true` with the whole message, embeds included: tens of KiB at most
    message = {"id": "998877665544332211", "embeds": [{"description": "d" * 4096}] * 10}
    body = json.dumps(message).encode()
    assert len(body) < ANSWER_LIMIT
    server.static("/api/webhooks/1/tok", body, headers={"Content-Type": "application/json"})
    outcome = await attempt(
        client, hook(format="discord", url=server.url("/api/webhooks/1/tok")), _delivery()
    )
    assert outcome.remote_id == "998877665544332211"
    (request,) = server.requests_to("/api/webhooks/1/tok")
    assert request.headers["accept-encoding"] == "identity"
