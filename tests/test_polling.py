"""Polling politeness end to end: the real CLI against a local publisher, state in SQLite."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.store import FeedState, Store
from tests.conftest import run_cli
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.servers import LocalServer, RecordedRequest, Reply
from tests.test_end_to_end import _summary

RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}


def _once(config: Path) -> tuple[dict[str, int], str]:
    result = run_cli("run", "--once", "--config", str(config), cwd=config)
    assert result.returncode == 0, result.stderr
    return _summary(result.stdout), result.stderr


def _feed_row(config: Path) -> FeedState:
    store = Store.open(f"sqlite:///{config / 'data' / 'monitor.db'}")
    (feed,) = store.feeds()
    store.close()
    return feed


def test_a_410_stops_polling_and_says_so(tmp_path: Path, server: LocalServer) -> None:
    server.static("/gone.xml", b"", status=410)
    config = write_config(tmp_path / "c", feeds=[{"url": server.url("/gone.xml")}])
    first, err = _once(config)
    assert first["failed"] == 1
    assert "HTTP 410" in err
    assert "polling stopped" in err
    second, _ = _once(config)
    assert second["feeds"] == 0
    assert len(server.requests_to("/gone.xml")) == 1


def test_a_permanent_redirect_moves_the_feed(tmp_path: Path, server: LocalServer) -> None:
    serve_feed(server, "/new.xml", feed_document("havana-wire.xml"))
    server.static("/old.xml", b"", status=301, headers={"Location": server.url("/new.xml")})
    config = write_config(tmp_path / "c", feeds=[{"url": server.url("/old.xml")}])
    first, err = _once(config)
    assert (first["fetched"], first["new"]) == (1, 4)
    assert "moved permanently" in err
    second, _ = _once(config)
    assert second["unchanged"] == 1
    assert len(server.requests_to("/old.xml")) == 1  # the second poll went straight to /new.xml
    assert _feed_row(config).moved_to == server.url("/new.xml")


def test_a_temporary_redirect_does_not_move_the_feed(tmp_path: Path, server: LocalServer) -> None:
    serve_feed(server, "/today.xml", feed_document("havana-wire.xml"))
    server.static("/feed.xml", b"", status=302, headers={"Location": server.url("/today.xml")})
    config = write_config(tmp_path / "c", feeds=[{"url": server.url("/feed.xml")}])
    _once(config)
    _once(config)
    assert len(server.requests_to("/feed.xml")) == 2
    assert _feed_row(config).moved_to is None


def test_an_identical_body_without_validators_is_not_parsed_again(
    tmp_path: Path, server: LocalServer
) -> None:
    server.static("/plain.xml", feed_document("havana-wire.xml"), headers=RSS)  # no ETag
    config = write_config(tmp_path / "c", feeds=[{"url": server.url("/plain.xml")}])
    first, _ = _once(config)
    second, _ = _once(config)
    assert (first["fetched"], second["unchanged"], second["new"]) == (1, 1, 0)


def test_the_next_check_honors_cache_control(tmp_path: Path, server: LocalServer) -> None:
    headers = {**RSS, "Cache-Control": "max-age=7200"}
    server.static("/cached.xml", feed_document("havana-wire.xml"), headers=headers)
    config = write_config(
        tmp_path / "c", feeds=[{"url": server.url("/cached.xml"), "interval": "10m"}]
    )
    before = datetime.now(UTC)
    _once(config)
    wait = _feed_row(config).next_check_at - before
    assert timedelta(hours=2) <= wait <= timedelta(hours=2.3)


def test_retry_after_on_429_postpones_the_next_try(tmp_path: Path, server: LocalServer) -> None:
    server.static("/busy.xml", b"slow down", status=429, headers={"Retry-After": "3600"})
    config = write_config(tmp_path / "c", feeds=[{"url": server.url("/busy.xml")}])
    before = datetime.now(UTC)
    summary, err = _once(config)
    assert summary["failed"] == 1
    assert "429" in err
    row = _feed_row(config)
    assert row.error_count == 1
    assert row.next_check_at - before >= timedelta(hours=1)


def test_a_feed_dropping_its_guids_does_not_realert(tmp_path: Path, server: LocalServer) -> None:
    with_guids = feed_document("havana-wire.xml")
    without = with_guids.replace(b'<guid isPermaLink="false">', b"<!-- ").replace(
        b"</guid>", b" -->"
    )
    state = {"body": with_guids}

    def handler(_request: RecordedRequest) -> Reply:
        return Reply(200, state["body"], RSS)

    server.route("/wire.xml", handler)
    config = write_config(
        tmp_path / "c",
        feeds=[{"url": server.url("/wire.xml")}],
        defaults={"interval": "10m", "backfill": "all"},
    )
    first, _ = _once(config)
    state["body"] = without
    second, _ = _once(config)
    assert (first["new"], first["alerts"]) == (4, 2)
    assert (second["fetched"], second["new"], second["alerts"]) == (1, 0, 0)


def test_feeds_command_shows_each_feeds_health(tmp_path: Path, server: LocalServer) -> None:
    serve_feed(server, "/ok.xml", feed_document("havana-wire.xml"))
    server.static("/down.xml", b"", status=503)
    server.static("/gone.xml", b"", status=410)
    config = write_config(
        tmp_path / "c",
        feeds=[
            {"url": server.url(p), "name": p[1:-4]} for p in ("/ok.xml", "/down.xml", "/gone.xml")
        ],
    )
    _once(config)
    listing = run_cli("feeds", "--config", str(config), cwd=config)
    assert listing.returncode == 0, listing.stderr
    assert "HTTP 503" in listing.stdout
    as_json = run_cli("feeds", "--json", "--config", str(config), cwd=config)
    feeds = {entry["name"]: entry for entry in map(json.loads, as_json.stdout.splitlines())}
    assert {name: f["status"] for name, f in feeds.items()} == {
        "ok": "ok",
        "down": "failing",
        "gone": "gone",
    }
    assert feeds["ok"]["items_seen"] == 4
    assert feeds["down"]["errors_in_a_row"] == 1
    assert feeds["down"]["last_status"] == 503
    assert feeds["gone"]["next_check"] is None


def test_feeds_added_together_are_spread_over_an_interval_after_their_first_poll(
    tmp_path: Path, server: LocalServer
) -> None:
    """All due at once on a first start, 20 feeds are next polled anywhere within one more
    interval, so they do not keep coming in a burst; from the second poll on, the usual jitter."""
    urls = [server.url(f"/f{n}.xml") for n in range(20)]
    for n in range(20):
        serve_feed(server, f"/f{n}.xml", feed_document("havana-wire.xml"))
    feeds = [{"url": url, "interval": "10m"} for url in urls]
    config = write_config(tmp_path / "c", feeds=feeds)

    def waits(before: datetime) -> list[timedelta]:
        store = Store.open(f"sqlite:///{config / 'data' / 'monitor.db'}")
        rows = store.feeds()
        store.close()
        return sorted(row.next_check_at - before for row in rows)

    before = datetime.now(UTC)
    assert _once(config)[0]["fetched"] == 20
    first = waits(before)
    assert timedelta(minutes=10) <= first[0]
    assert first[-1] <= timedelta(minutes=20, seconds=30)
    assert first[-1] - first[0] > timedelta(minutes=3)  # 20 draws over 10 minutes
    before = datetime.now(UTC)
    assert _once(config)[0]["unchanged"] == 20
    second = waits(before)
    assert timedelta(minutes=10) <= second[0]
    assert second[-1] <= timedelta(minutes=11, seconds=30)
