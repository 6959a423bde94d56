"""Delivery through the real CLI: a `run --once` killed mid-delivery, retries, 410, and the
`alerts`, `replay`, `webhooks` and `sink` commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from monitor.delivery.settings import secret_bytes
from monitor.delivery.standard import sign
from tests.conftest import REPO, run_cli
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.receiver import SECRET, SignedReceiver, event_problems, expected_signature
from tests.support.servers import LocalServer, RecordedRequest, Reply


def _config(tmp_path: Path, server: LocalServer, url: str, **hook: object) -> Path:
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))  # 2 alerts
    return write_config(
        tmp_path / "config",
        feeds=[{"url": server.url("/wire.xml")}],
        webhooks=[{"name": "analysts", "url": url, "secret": SECRET, **hook}],
    )


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "--config", str(config), cwd=config)


def _alerts(config: Path, *args: str) -> list[dict[str, object]]:
    """`alerts --json`, one row per (alert, delivery): the alert's keys and the delivery's."""
    result = _cli(config, "alerts", "--json", *args)
    assert result.returncode == 0, result.stderr
    rows = []
    for line in result.stdout.splitlines():
        alert = json.loads(line)
        rows.extend({**alert, **delivery} for delivery in alert.pop("deliveries"))
    return rows


class Deduplicating:
    """A receiver that processes a webhook-id on arrival (before answering, like a real one
    whose answer may be lost), and holds the first requests until `release` is set."""

    def __init__(self, server: LocalServer, hold: int) -> None:
        self.url = server.url("/hook")
        self.hold = hold
        self.release = threading.Event()
        self.arrivals: list[str] = []
        self.lock = threading.Lock()
        server.route("/hook", self._handle)

    def _handle(self, request: RecordedRequest) -> Reply:
        msg_id = request.headers["webhook-id"]
        signature = expected_signature(
            SECRET, msg_id, request.headers["webhook-timestamp"], request.body
        )
        assert signature in request.headers["webhook-signature"].split()
        assert event_problems(request.body) == []
        with self.lock:
            self.arrivals.append(msg_id)
            held = len(self.arrivals) <= self.hold
        if held:
            self.release.wait(30)
        return Reply(200, b"{}")

    @property
    def seen(self) -> set[str]:
        return set(self.arrivals)


def test_run_once_killed_mid_delivery_then_a_fresh_run_delivers_every_alert_once(
    tmp_path: Path, server: LocalServer
) -> None:
    receiver = Deduplicating(server, hold=2)
    config = _config(tmp_path, server, receiver.url)
    log = (tmp_path / "killed.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--once", "--config", str(config)],
        cwd=config,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ},
    )
    try:
        assert server.wait_for(lambda reqs: len([r for r in reqs if r.path == "/hook"]) >= 2, 30)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        log.close()
    receiver.release.set()  # the held requests end on a dead connection
    assert process.returncode == -signal.SIGKILL
    assert all(row["state"] == "pending" for row in _alerts(config))  # claimed, never recorded

    started = time.monotonic()
    fresh = _cli(config, "run", "--once", "--max-wait", "0s")

    assert fresh.returncode == 0, fresh.stderr
    assert time.monotonic() - started < 30  # far less than the 2-minute lease
    assert "released 2 of 2 deliveries claimed by process" in fresh.stderr
    assert "delivered 2, 0 queued, 0 failed" in fresh.stdout
    rows = _alerts(config)
    assert {row["state"] for row in rows} == {"delivered"}
    assert receiver.seen == {row["alert_id"] for row in rows}
    assert len(receiver.seen) == 2
    assert len(receiver.arrivals) == 4  # each alert arrived twice; deduplicated, seen once


def test_503_twice_then_200_is_delivered_once_with_one_webhook_id(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    config = _config(tmp_path, server, receiver.url, retry=["0s", "0s", "0s"], concurrency=1)
    receiver.answer([503, 503])
    result = _cli(config, "run", "--once", "--max-wait", "10s")
    assert result.returncode == 0, result.stderr
    assert "delivered 2, 0 queued, 0 failed" in result.stdout
    attempts = receiver.attempts()
    assert len(attempts) == 4
    per_id = Counter(a.headers["webhook-id"] for a in attempts)
    assert sorted(per_id.values()) == [2, 2]  # each alert: a 503, then a 200, same webhook-id
    assert sorted(d.webhook_id for d in receiver.deliveries) == sorted(per_id)  # once each
    assert all(d.valid_signature for d in receiver.deliveries)
    for row in _alerts(config):
        assert row["attempts"] == per_id[row["alert_id"]]


def test_failed_alerts_are_listed_and_replayed(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    config = _config(tmp_path, server, receiver.url, retry=["0s"])
    receiver.answer([500, 500, 500, 500])
    first = _cli(config, "run", "--once", "--max-wait", "5s")
    assert "delivered 0, 0 queued, 2 failed" in first.stdout, first.stdout + first.stderr
    failed = _alerts(config, "--state", "failed")
    assert len(failed) == 2
    assert all(row["last_error"] == "HTTP 500 Internal Server Error" for row in failed)
    assert _alerts(config, "--state", "delivered") == []
    assert len(_alerts(config, "--rule", "russia-cuba-contacts")) == 1
    text = _cli(config, "alerts").stdout
    assert text.startswith("CREATED (UTC)")
    assert text.count("delivered 0/1, failed 1 (analysts: HTTP 500 Internal Server Error)") == 2
    detailed = _cli(config, "alerts", "--deliveries").stdout
    assert detailed.count("→ analysts  failed  2 attempts  last error: HTTP 500") == 2

    replay = _cli(config, "replay", "--failed")
    assert replay.returncode == 0
    assert "requeued 2 deliveries" in replay.stdout
    again = _cli(config, "run", "--once", "--max-wait", "0s")
    assert "delivered 2, 0 queued, 0 failed" in again.stdout
    assert len(receiver.deliveries) == 2

    one = failed[0]["alert_id"]
    assert isinstance(one, str)
    assert _cli(config, "replay", one).stdout.startswith("requeued 1 delivery")
    _cli(config, "run", "--once", "--max-wait", "0s")
    assert [d.webhook_id for d in receiver.deliveries].count(one) == 2  # a replay resends
    missing = _cli(config, "replay", "alrt_NOPE")
    assert missing.returncode == 1
    assert "no alert alrt_NOPE" in missing.stderr
    assert _cli(config, "replay").returncode == 2


def test_410_disables_the_webhook_until_enabled(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    config = _config(tmp_path, server, receiver.url, concurrency=1)
    receiver.answer([410])
    first = _cli(config, "run", "--once", "--max-wait", "0s")
    assert "ERROR" in first.stderr
    assert "webhook analysts answered 410 Gone: disabled" in first.stderr
    status = _cli(config, "webhooks")
    assert "analysts  standard  http://127.0.0.1:" in status.stdout
    assert "DISABLED since" in status.stdout
    assert "2 pending" in status.stdout
    (listed,) = [
        json.loads(line) for line in _cli(config, "webhooks", "--json").stdout.splitlines()
    ]
    assert listed["enabled"] is False
    assert listed["url"].endswith("/…")

    _cli(config, "run", "--once", "--max-wait", "0s")
    assert len(receiver.attempts()) == 1  # disabled: not attempted

    enabled = _cli(config, "webhooks", "--enable", "analysts")
    assert "webhook analysts enabled" in enabled.stdout
    last = _cli(config, "run", "--once", "--max-wait", "0s")
    assert "delivered 2, 0 queued" in last.stdout
    nope = _cli(config, "webhooks", "--enable", "nope")
    assert nope.returncode == 2
    assert "unknown webhook 'nope'; known webhooks: analysts" in nope.stderr


def test_minimum_severity_routes_alerts(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    config = _config(tmp_path, server, receiver.url, severity="critical")
    result = _cli(config, "run", "--once", "--max-wait", "0s")
    assert result.returncode == 0, result.stderr
    assert receiver.attempts() == []  # the pipeline rules are below critical


def test_sink_verifies_prints_and_deduplicates(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "monitor", "sink", "--port", "0", "--secret", SECRET],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        lines = _talk_to_sink(process)
    text = "".join(lines)
    assert "signature ok" in text
    assert "[HIGH] russia-cuba-contacts  score 93.5  alrt_01JNKQ8Z6X3V4W5Y6Z7A8B9C0D" in text
    assert "Russian warships arrive in Havana" in text
    assert "duplicate alrt_01JNKQ8Z6X3V4W5Y6Z7A8B9C0D" in text
    assert "REFUSED alrt_01JNKQ8Z6X3V4W5Y6Z7A8B9C0D: no signature matches" in text
    assert "timestamp too old" in text


def _talk_to_sink(process: subprocess.Popen[str]) -> list[str]:
    """Send the sink a valid alert twice, a forged one and a stale one; return its 9 lines."""
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("sink listening on http://127.0.0.1:")
        url = first.split()[3]
        body = json.dumps(
            json.loads((REPO / "tests/data/delivery/alert.json").read_text(encoding="utf-8"))
        ).encode()
        stamp = int(time.time())
        key = secret_bytes(SecretStr(SECRET))
        headers = {
            "webhook-id": "alrt_01JNKQ8Z6X3V4W5Y6Z7A8B9C0D",
            "webhook-timestamp": str(stamp),
            "webhook-signature": "v1,bm9wZQ== "
            + sign(key, "alrt_01JNKQ8Z6X3V4W5Y6Z7A8B9C0D", stamp, body),
            "content-type": "application/json",
        }
        assert httpx.post(url, content=body, headers=headers).status_code == 200
        assert httpx.post(url, content=body, headers=headers).status_code == 200
        forged = {**headers, "webhook-signature": "v1,bm9wZQ=="}
        assert httpx.post(url, content=body, headers=forged).status_code == 401
        old = {**headers, "webhook-timestamp": str(stamp - 3600)}
        assert httpx.post(url, content=body, headers=old).status_code == 401
        return [process.stdout.readline() for _ in range(9)]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(10)


@pytest.mark.parametrize("command", ["alerts", "replay", "webhooks", "sink"])
def test_help_explains_each_command(tmp_path: Path, command: str) -> None:
    result = run_cli(command, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert len(result.stdout) > 300
    assert "--config DIR" in result.stdout


def test_sink_takes_the_secret_of_a_configured_webhook(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", feeds=[], webhooks=[])
    result = _cli(config, "sink", "--webhook", "analysts")
    assert result.returncode == 2
    assert "no webhook 'analysts' with a secret" in result.stderr


def test_no_secret_or_url_token_in_any_output_even_at_debug(
    tmp_path: Path, server: LocalServer
) -> None:
    token = "TOKEN0SECRET0123456"
    server.route(f"/services/T0/B0/{token}", lambda r: Reply(400, f"bad {r.path}".encode()))
    server.static("/signed", b"", status=503)
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": server.url("/wire.xml")}],
        webhooks=[
            {"name": "chat", "format": "slack", "url": server.url(f"/services/T0/B0/{token}")},
            {"name": "signed", "url": server.url(f"/signed?key={token}"), "secret": SECRET},
            {
                "name": "phone",
                "format": "ntfy",
                "url": f"http://127.0.0.1:9/{token}",
                "token": f"tk_{token}",
            },
        ],
    )
    outputs = [
        run_cli(
            "--log-level",
            "debug",
            "run",
            "--once",
            "--max-wait",
            "0s",
            "--config",
            str(config),
            cwd=config,
        ),
        _cli(config, "alerts", "--limit", "100"),
        _cli(config, "alerts", "--json"),
        _cli(config, "webhooks"),
        _cli(config, "webhooks", "--json"),
        _cli(config, "check"),
    ]
    assert "HTTP 400 Bad Request: bad" in outputs[1].stdout
    secret_key = SECRET.removeprefix("whsec_")
    for result in outputs:
        assert result.returncode == 0, result.stderr
        for text in (result.stdout, result.stderr):
            assert token not in text
            assert secret_key not in text
