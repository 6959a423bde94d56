"""`monitor run --once --max-wait` through the real CLI: the delivery phase keeps its deadline.

A pass sends what is due when it begins; a retry that comes due while others are in flight is
claimed only if it comes due by the deadline. Receivers that refuse (500) or are down (nothing
listening) would otherwise be retried within one pass until their schedule ran out.
"""

from __future__ import annotations

import json
import socket
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.delivery.dispatcher import DispatchSummary
from monitor.runtime.once import _deliver_until
from tests.conftest import run_cli
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.receiver import SECRET, SignedReceiver
from tests.support.servers import LocalServer

NO_WAIT = ["0s"] * 8  # each retry due at once: only the deadline stops a pass taking them


def _config(tmp_path: Path, server: LocalServer, url: str, retry: list[str]) -> Path:
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))  # 2 alerts
    hook = {"name": "analysts", "url": url, "secret": SECRET, "retry": retry, "concurrency": 1}
    return write_config(
        tmp_path / "config", feeds=[{"url": server.url("/wire.xml")}], webhooks=[hook]
    )


def _attempts(config: Path) -> dict[str, int]:
    listed = run_cli("alerts", "--json", "--config", str(config), cwd=config)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    return {str(row["alert_id"]): int(row["deliveries"][0]["attempts"]) for row in rows}


def _closed_port() -> int:
    with socket.socket() as probe:  # bound, then closed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_max_wait_0s_tries_each_delivery_once_while_the_receiver_refuses(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    receiver.answer([500] * 100)
    config = _config(tmp_path, server, receiver.url, NO_WAIT)
    result = run_cli("run", "--once", "--max-wait", "0s", "--config", str(config), cwd=config)
    assert result.returncode == 0, result.stderr
    assert "delivered 0, 2 queued, 0 failed" in result.stdout
    per_id = Counter(r.headers["webhook-id"] for r in receiver.attempts())
    assert sorted(per_id.values()) == [1, 1]
    assert _attempts(config) == dict(per_id)


def test_max_wait_0s_tries_each_delivery_once_while_the_receiver_is_down(
    tmp_path: Path, server: LocalServer
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/hook"
    config = _config(tmp_path, server, url, NO_WAIT)
    result = run_cli("run", "--once", "--max-wait", "0s", "--config", str(config), cwd=config)
    assert result.returncode == 0, result.stderr
    assert "delivered 0, 2 queued, 0 failed" in result.stdout
    assert sorted(_attempts(config).values()) == [1, 1]


def test_retries_due_within_max_wait_are_still_made(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    receiver.answer([500] * 100)
    config = _config(tmp_path, server, receiver.url, ["0s", "0s"])
    result = run_cli("run", "--once", "--max-wait", "1h", "--config", str(config), cwd=config)
    assert result.returncode == 0, result.stderr
    assert "delivered 0, 0 queued, 2 failed" in result.stdout  # the schedule spent, in time
    assert sorted(_attempts(config).values()) == [3, 3]


class _Stuck:
    """A dispatcher with a delivery due that no pass can take (its webhook's routing fails)."""

    def __init__(self) -> None:
        self.passes = 0

    async def deliver_due(self, due_by: datetime | None = None) -> DispatchSummary:
        self.passes += 1
        return DispatchSummary()

    async def next_due(self) -> datetime:
        return datetime.now(UTC) - timedelta(seconds=1)


async def test_a_delivery_no_pass_can_take_does_not_spin_until_the_deadline() -> None:
    stuck = _Stuck()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    summary = await _deliver_until(stuck, timedelta(minutes=5), sleep)  # type: ignore[arg-type]
    assert summary == DispatchSummary()
    assert stuck.passes == 1  # before: a pass after another, for the whole --max-wait
    assert slept == []
