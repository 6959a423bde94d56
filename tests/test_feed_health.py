"""feed.unhealthy and feed.recovered end to end: a real feed server that breaks and mends, the
real CLI (`run --once`), a real receiver checking signatures, SQLite."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import yaml

from tests.conftest import run_cli
from tests.ops.daemon import edit_config
from tests.support.burst import Burst
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.receiver import SECRET, SignedReceiver
from tests.support.servers import LocalServer, Reply


def _config(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver, analysts: SignedReceiver
) -> Path:
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": server.url("/wire.xml"), "name": "Test Wire"}],
        webhooks=[
            {
                "name": "ops",
                "url": receiver.url,
                "secret": SECRET,
                "events": ["feed.unhealthy", "feed.recovered"],
            },
            # alerts only (the default): must never see a feed event
            {"name": "analysts", "url": analysts.url, "secret": SECRET},
        ],
    )
    path = config / "monitor.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["health"] = {"failing_after": "0s"}  # unhealthy at the first failure
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return config


def _once(config: Path) -> None:
    result = run_cli("run", "--once", "--config", str(config), cwd=config)
    assert result.returncode == 0, result.stderr


def _feed_events(receiver: SignedReceiver) -> list[dict[str, object]]:
    return [
        d.body
        for d in receiver.deliveries
        if isinstance(d.body, dict) and str(d.body.get("type", "")).startswith("feed.")
    ]


def test_a_failing_feed_is_announced_once_and_its_recovery_once(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    server.route("/wire.xml", lambda _: Reply(503, b"down for maintenance"))
    analysts = SignedReceiver(receiver.server, path="/analysts")
    config = _config(tmp_path, server, receiver, analysts)

    _once(config)
    _once(config)  # still failing: nothing new to say

    events = _feed_events(receiver)
    assert [e["type"] for e in events] == ["feed.unhealthy"]
    data = events[0]["data"]
    assert isinstance(data, dict)
    assert data["feed"] == {"url": server.url("/wire.xml"), "name": "Test Wire"}
    assert data["reason"] == "failing"
    assert data["error_count"] == 1  # the count when it was found unhealthy
    assert "503" in str(data["last_error"])
    assert data["last_success"] is None
    assert all(d.valid_signature for d in receiver.deliveries)
    assert analysts.attempts() == []

    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    _once(config)
    _once(config)

    events = _feed_events(receiver)
    assert [e["type"] for e in events] == ["feed.unhealthy", "feed.recovered"]
    recovered = events[1]["data"]
    assert isinstance(recovered, dict)
    assert recovered["reason"] == "failing"
    assert recovered["since"] == data["since"]
    assert recovered["last_success"] is not None
    assert len({d.webhook_id for d in receiver.deliveries}) == 2
    # `analysts` (alert events only) got the feed's alerts once it worked, and nothing else
    assert analysts.deliveries
    assert {d.body["type"] for d in analysts.deliveries} == {"alert.created"}


def test_monitor_feeds_shows_an_unhealthy_feed(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    server.route("/wire.xml", lambda _: Reply(500, b"broken"))
    analysts = SignedReceiver(receiver.server, path="/analysts")
    config = _config(tmp_path, server, receiver, analysts)
    _once(config)

    listed = run_cli("feeds", "--config", str(config), "--json", cwd=config)
    assert listed.returncode == 0, listed.stderr
    feed = json.loads(listed.stdout.splitlines()[0])
    assert feed["unhealthy_reason"] == "failing"
    assert feed["unhealthy_since"] is not None
    assert feed["failing_since"] is not None
    text = run_cli("feeds", "--config", str(config), cwd=config)
    assert "unhealthy (failing)" in text.stdout


def test_recovery_reports_the_since_the_unhealthy_event_reported(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver, burst: Burst
) -> None:
    server.route("/wire.xml", lambda _: Reply(503, b"down for maintenance"))
    analysts = SignedReceiver(receiver.server, path="/analysts")
    config = _config(tmp_path, server, receiver, analysts)
    health = {"failing_after": "1h"}
    edit_config(config, lambda document: document.update(health=health))

    burst.cycle(config)  # the first failure: failing since now, not unhealthy yet
    burst.clock.advance(timedelta(hours=2))
    burst.cycle(config)  # failing for 2 h: unhealthy
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    burst.clock.advance(timedelta(hours=2))
    burst.cycle(config)  # works again: recovered

    unhealthy, recovered = (event["data"] for event in _feed_events(receiver))
    assert isinstance(unhealthy, dict)
    assert isinstance(recovered, dict)
    assert recovered["since"] == unhealthy["since"]
