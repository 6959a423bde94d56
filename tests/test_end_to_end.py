"""The whole pipeline with real parts: feeds and a receiver on 127.0.0.1, the real CLI, SQLite.

The CLI runs in process (`run_cli`), one cycle with a moved clock runs as a burst, and one test
runs the real command as a process.

The receiver checks every signature with its own HMAC code (tests/support/receiver.py).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.support.burst import Burst
from tests.support.cli import run_process
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.receiver import SECRET, SignedReceiver
from tests.support.servers import LocalServer

SUMMARY = re.compile(
    r"(?P<feeds>\d+) feeds? polled \((?P<fetched>\d+) fetched, (?P<unchanged>\d+) unchanged, "
    r"(?P<failed>\d+) failed\), (?P<new>\d+) new items?, (?P<alerts>\d+) alerts?; "
    r"delivered (?P<delivered>\d+), (?P<queued>\d+) queued, (?P<dfailed>\d+) failed"
)


def _summary(stdout: str) -> dict[str, int]:
    match = SUMMARY.search(stdout)
    assert match, f"no summary line in {stdout!r}"
    return {key: int(value) for key, value in match.groupdict().items()}


def _hook(receiver: SignedReceiver, **extra: object) -> dict[str, object]:
    return {"name": "analysts", "url": receiver.url, "secret": SECRET, **extra}


def _once(config: Path, *extra: str) -> dict[str, int]:
    result = run_cli("run", "--once", "--config", str(config), *extra, cwd=config)
    assert result.returncode == 0, result.stderr
    return _summary(result.stdout)


def test_once_delivers_signed_alerts_for_matching_items_and_nothing_twice(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    serve_feed(server, "/prensa.xml", feed_document("prensa-es.xml"))
    config = write_config(
        tmp_path / "config",
        feeds=[
            {"url": server.url("/wire.xml"), "name": "Test Wire"},
            {"url": server.url("/prensa.xml")},
        ],
        webhooks=[_hook(receiver)],
    )

    first = _once(config)

    assert first | {"feeds": 2, "fetched": 2, "failed": 0, "new": 6} == first
    by_rule = {d.body["data"]["rule"]["id"]: d for d in receiver.deliveries}  # type: ignore[index]
    assert set(by_rule) == {"russia-cuba-contacts", "us-pressure-on-cuba"}
    assert first["alerts"] == first["delivered"] == len(receiver.deliveries) == 2
    assert all(d.valid_signature for d in receiver.deliveries)
    contact = by_rule["russia-cuba-contacts"]
    assert contact.body["type"] == "alert.created"
    data = contact.body["data"]
    assert isinstance(data, dict)
    assert data["id"] == contact.webhook_id
    assert data["id"].startswith("alrt_")
    assert data["item"]["guid"] == "wire-1001"
    assert data["item"]["feed"] == {"url": server.url("/wire.xml"), "name": "Test Wire"}
    assert "Álvarez Casas" in data["item"]["summary"]
    assert "<p>" not in data["item"]["summary"]
    assert "&#8217;" not in data["item"]["summary"]
    assert data["item"]["published"].endswith("Z")
    assert data["rule"]["severity"] in ("low", "medium", "high", "critical")
    assert data["score"] > 0
    assert data["matches"]
    for hit in data["matches"]:
        assert {"term", "field", "text", "score"} <= set(hit)

    second = _once(config)

    assert second | {"unchanged": 2, "new": 0, "alerts": 0, "delivered": 0} == second
    assert len(receiver.deliveries) == 2
    assert all("if-none-match" in r.headers for r in server.requests[-2:])


def test_a_new_item_on_a_later_poll_alerts_once(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    config = write_config(
        tmp_path / "config", feeds=[{"url": server.url("/wire.xml")}], webhooks=[_hook(receiver)]
    )
    _once(config)
    serve_feed(server, "/wire.xml", feed_document("later-item.xml"))

    later = _once(config)

    assert (later["new"], later["alerts"], later["delivered"]) == (1, 1, 1)
    titles = [d.body["data"]["item"]["title"] for d in receiver.deliveries]  # type: ignore[index]
    assert titles.count("Russian warships arrive in Havana for a five-day port call") == 1
    assert len(titles) == 3


@pytest.mark.parametrize(
    ("backfill", "expected_alerts"),
    [("24h", 0), ("all", 1), ("none", 0)],
)
def test_backfill_decides_what_a_new_feed_may_alert_on(
    tmp_path: Path,
    server: LocalServer,
    receiver: SignedReceiver,
    backfill: str,
    expected_alerts: int,
) -> None:
    # prensa-es.xml: a matching item from 72 hours ago and a fresh one that matches no rule
    serve_feed(server, "/prensa.xml", feed_document("prensa-es.xml"))
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": server.url("/prensa.xml")}],
        webhooks=[_hook(receiver)],
        defaults={"interval": "10m", "backfill": backfill},
    )
    summary = _once(config)
    assert (summary["new"], summary["alerts"]) == (2, expected_alerts)
    assert len(receiver.deliveries) == expected_alerts


def test_receiver_down_then_up_a_later_run_delivers_everything(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver, burst: Burst
) -> None:
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": server.url("/wire.xml")}],
        webhooks=[_hook(receiver, retry=["1m", "1m"])],
    )
    receiver.answer([503, 503])

    down = burst.cycle(config, max_wait=timedelta(0))

    assert (down.alerts, down.deliveries.delivered, down.pending) == (2, 0, 2)
    assert receiver.deliveries == []
    assert burst.clock.slept == []  # nothing falls due within no wait

    up = burst.cycle(config, max_wait=timedelta(minutes=10))  # the retries fall due within it

    assert (up.deliveries.delivered, up.pending, up.deliveries.failed) == (2, 0, 0)
    # the minute to the retries (and their jitter) passed on the clock, none in real time
    assert sum(burst.clock.slept) >= 60
    attempts = receiver.attempts()
    assert len(attempts) == 4
    ids = [a.headers["webhook-id"] for a in attempts]
    assert sorted(set(ids)) == sorted(d.webhook_id for d in receiver.deliveries)
    assert all(ids.count(i) == 2 for i in set(ids))  # the same id on the failed and the good try


def test_503_twice_then_200_is_delivered_once_with_one_webhook_id(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    serve_feed(server, "/wire.xml", feed_document("later-item.xml"))
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": server.url("/wire.xml")}],
        webhooks=[_hook(receiver, retry=["0s", "0s", "0s"], rules=["russia-cuba-contacts"])],
    )
    receiver.answer([503, 503, 503, 503])  # two alerts: each fails twice, then succeeds

    summary = _once(config, "--max-wait", "10s")

    assert (summary["alerts"], summary["delivered"]) == (2, 2)
    ids = [a.headers["webhook-id"] for a in receiver.attempts()]
    assert len(ids) == 6
    assert all(ids.count(i) == 3 for i in set(ids))
    assert sorted(d.webhook_id for d in receiver.deliveries) == sorted(set(ids))


def test_broken_feeds_are_contained_and_good_feeds_still_alert(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    server.static("/down.xml", b"oops", status=500)
    server.static(
        "/page.html",
        b"<!doctype html><html><head><title>x</title></head><body>hi",
        headers={"Content-Type": "text/html"},
    )
    server.static(
        "/junk.bin", bytes(range(256)) * 64, headers={"Content-Type": "application/octet-stream"}
    )
    feeds = [{"url": server.url(p)} for p in ("/wire.xml", "/down.xml", "/page.html", "/junk.bin")]
    feeds.append({"url": "http://127.0.0.1:9/refused.xml"})
    config = write_config(tmp_path / "config", feeds=feeds, webhooks=[_hook(receiver)])

    # the real command in a process of its own: its exit status, and nothing on its stderr
    # that anything in the process printed (a traceback) besides the log
    result = run_process(["run", "--once", "--config", str(config)], cwd=config)

    assert result.returncode == 0, result.stderr
    summary = _summary(result.stdout)
    assert (summary["feeds"], summary["fetched"], summary["failed"]) == (5, 1, 4)
    assert summary["delivered"] == 2
    assert "Traceback" not in result.stderr
    assert "/down.xml" in result.stderr
    assert "500" in result.stderr


def test_the_same_pipeline_runs_on_postgresql(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver, postgresql_url: str
) -> None:
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": server.url("/wire.xml")}],
        webhooks=[_hook(receiver)],
        storage=postgresql_url,
    )
    first = _once(config)
    second = _once(config)
    assert (first["new"], first["alerts"], first["delivered"]) == (4, 2, 2)
    assert (second["unchanged"], second["alerts"], second["delivered"]) == (1, 0, 0)
    assert len(receiver.deliveries) == 2
    assert not (config / "data").exists()  # nothing went to SQLite


def test_an_item_two_rules_match_reaches_a_webhook_once_listing_both(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    serve_feed(server, "/both.xml", feed_document("both-rules.xml"))
    pressure_only = SignedReceiver(server, path="/pressure")
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": server.url("/both.xml")}],
        webhooks=[
            _hook(receiver),
            {
                "name": "pressure-desk",
                "url": pressure_only.url,
                "secret": SECRET,
                "rules": ["us-pressure-on-cuba"],
            },
        ],
        defaults={"interval": "10m", "backfill": "all"},
    )

    summary = _once(config)

    assert summary["alerts"] == 2  # each rule keeps its alert
    assert summary["delivered"] == 2  # one per webhook, not one per (rule, webhook)
    [both] = receiver.deliveries
    data = both.body["data"]
    assert isinstance(data, dict)
    assert data["rule"]["id"] == "russia-cuba-contacts"  # severity high beats medium
    assert [other["id"] for other in data["also"]] == ["us-pressure-on-cuba"]
    assert data["also"][0]["severity"] == "medium"
    [pressure] = pressure_only.deliveries
    data = pressure.body["data"]
    assert isinstance(data, dict)
    assert data["rule"]["id"] == "us-pressure-on-cuba"
    assert [other["id"] for other in data["also"]] == ["russia-cuba-contacts"]
    listed = run_cli("alerts", "--config", str(config), cwd=config)
    assert "russia-cuba-contacts" in listed.stdout
    assert "us-pressure-on-cuba" in listed.stdout
