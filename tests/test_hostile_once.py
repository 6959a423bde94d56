"""One `run --once` over every hostile feed beside a good one: contained, and still alerting."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from tests.conftest import run_cli
from tests.support.hostile import MARKER, serve_hostile
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.receiver import SECRET, SignedReceiver
from tests.support.servers import LocalServer
from tests.test_end_to_end import _summary


def test_hostile_feeds_are_contained_and_good_feeds_still_alert(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    publisher = serve_hostile(server, tmp_path, bomb_bytes=64 << 20, huge_bytes=256 << 20)
    serve_feed(server, "/good.xml", feed_document("havana-wire.xml"))
    feeds = [{"url": url} for url in publisher.urls()] + [{"url": server.url("/good.xml")}]
    config = write_config(
        tmp_path / "c",
        feeds=feeds,
        webhooks=[{"name": "analysts", "url": receiver.url, "secret": SECRET}],
    )
    text = (config / "monitor.yaml").read_text(encoding="utf-8")
    (config / "monitor.yaml").write_text(
        text + "fetch:\n  deadline: 2s\n  max_size_mib: 1\n", encoding="utf-8"
    )
    try:
        result = run_cli("run", "--once", "--config", str(config), cwd=config, timeout=120)
    finally:
        publisher.stop.set()

    assert result.returncode == 0, result.stderr
    summary = _summary(result.stdout)
    assert summary["feeds"] == len(feeds)
    assert summary["failed"] == len(publisher.paths)
    assert summary["fetched"] == len(publisher.parsed_paths) + 1
    assert summary["delivered"] == 2  # the good feed's two alerts
    assert "Traceback" not in result.stderr
    for reason in ("redirect loop", "timed out", "larger than", "HTTP 410", "HTTP 429", "HTTP 500"):
        assert reason in result.stderr, reason
    # the local file the XXE entity points at never reaches an item, an alert, a log or the db
    assert MARKER not in result.stderr + result.stdout
    assert all(MARKER not in str(d.body) for d in receiver.deliveries)
    engine = sa.create_engine(f"sqlite:///{config / 'data' / 'monitor.db'}")
    with engine.connect() as db:
        for table in ("items", "alerts", "feeds"):
            rows = db.execute(sa.text(f"SELECT * FROM {table}")).all()
            assert all(MARKER not in str(row) for row in rows), table
    engine.dispose()
