"""The ops parts on their own: addresses, log formats, the HTTP endpoint, config diffs, reloads."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.cli import run as running
from monitor.config.settings import load_config
from monitor.runtime import logs
from monitor.runtime.metrics import Metrics
from monitor.runtime.reload import ConfigWatcher, diff
from monitor.store import Store
from monitor.web.health import Health
from monitor.web.server import parse_address
from tests.ops.daemon import edit_config
from tests.support.pipeline import write_config
from tests.support.web import Served, serving


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9108", ("127.0.0.1", 9108)),
        (":9108", ("127.0.0.1", 9108)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("[::1]:9108", ("::1", 9108)),
    ],
)
def test_http_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["9108", "host:", "host:99999", "a b:1"])
def test_bad_http_addresses(text: str) -> None:
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        parse_address(text)


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("monitor.x", logging.INFO, __file__, 1, "alert %s", ("a1",), None)
    record.__dict__.update(extra)
    return record


def test_json_logs_carry_the_stable_keys() -> None:
    line = logs.JsonFormatter().format(_record(rule_id="r", alert_id="a1", feed_url="https://f"))
    document = json.loads(line)
    assert document["message"] == "alert a1"
    assert document["level"] == "info"
    assert document["logger"] == "monitor.x"
    assert document["time"].endswith("Z")
    assert (document["rule_id"], document["alert_id"], document["feed_url"]) == (
        "r",
        "a1",
        "https://f",
    )


def test_text_logs_append_the_stable_keys() -> None:
    line = logs.TextFormatter().format(_record(feed_url="https://f"))
    assert line.endswith("monitor.x: alert a1 [feed_url=https://f]")
    assert "[" not in logs.TextFormatter().format(_record())


def test_setup_logging_json_to_a_stream() -> None:
    stream = io.StringIO()
    logs.setup_logging("info", "json", stream)
    try:
        logging.getLogger("monitor.test").info("hello", extra={"webhook": "analysts"})
    finally:
        logs.setup_logging("warning", "text")
    assert json.loads(stream.getvalue())["webhook"] == "analysts"


async def test_healthz_is_503_until_the_scheduler_ticks(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    ticks: list[float] = []
    health = Health(store, lambda: ticks[-1] if ticks else None)
    try:
        async with serving(health, Metrics(store).exposition) as web:
            await _healthz_follows_the_ticks(web, ticks)
    finally:
        store.close()


async def _healthz_follows_the_ticks(web: Served, ticks: list[float]) -> None:
    answer = await web.ask(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 503 ")
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body == {
        "status": "unhealthy",
        "checks": {"scheduler": "not started", "store": "ok"},
    }
    ticks.append(time.monotonic() - 1000)  # the last tick, long ago
    answer = await web.ask(b"GET /healthz HTTP/1.1\r\n\r\n")
    assert b'"scheduler": "stalled: last tick 1000s ago"' in answer
    ticks[-1] = time.monotonic()
    assert (await web.ask(b"GET /healthz HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 200 ")
    head = await web.ask(b"HEAD /healthz HTTP/1.1\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert head.endswith(b"\r\n\r\n")  # no body
    post = b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
    assert (await web.ask(post)).startswith(b"HTTP/1.1 405 ")
    assert (await web.ask(b"garbage\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
    metrics = await web.ask(b"GET /metrics HTTP/1.1\r\n\r\n")
    assert b"monitor_outbox_depth 0.0" in metrics
    assert b'monitor_polls_total{outcome="failed"} 0.0' in metrics


async def test_reload_applies_a_valid_edit_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    directory = write_config(tmp_path / "config", feeds=[{"url": "https://a.test/feed"}])
    applied: list[object] = []

    async def apply(config: object) -> None:
        applied.append(config)

    metrics = Metrics()
    watcher = ConfigWatcher(load_config(directory), apply, metrics)

    edit_config(directory, lambda doc: doc.update(feeds="not a list"))
    assert not await watcher.reload()
    assert applied == []
    assert watcher.config.settings.feeds[0].url == "https://a.test/feed"

    def two_feeds(doc: dict[str, object]) -> None:
        doc["feeds"] = [
            {"url": "https://a.test/feed", "interval": "1m"},
            {"url": "https://b.test/"},
        ]

    edit_config(directory, two_feeds)
    old = watcher.config
    assert await watcher.reload()
    assert applied == [watcher.config]
    change = diff(old, watcher.config)
    assert change.feeds_added == ("https://b.test/",)
    assert change.feeds_changed == ("https://a.test/feed",)
    assert change.summary() == "feeds +1 -0 ~1, rules +0 -0 (2 in force), webhooks +0 -0 ~0"
    exposed = metrics.exposition().decode()
    assert "monitor_config_reloads_total 1.0" in exposed
    assert "monitor_config_reload_errors_total 1.0" in exposed


async def test_the_watcher_reloads_on_a_rule_file_edit(tmp_path: Path) -> None:
    directory = write_config(tmp_path / "config", feeds=[])
    reloaded = asyncio.Event()

    async def apply(_config: object) -> None:
        reloaded.set()

    watcher = ConfigWatcher(load_config(directory), apply)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        await asyncio.wait_for(watcher.ready.wait(), timeout=10)
        (directory / "data").mkdir(exist_ok=True)
        (directory / "data" / "noise.yaml").write_text("not watched\n")  # not a rule folder
        rules = directory / "rules" / "watch.yaml"
        rules.write_text(rules.read_text().replace("severity: medium", "severity: low"))
        await asyncio.wait_for(reloaded.wait(), timeout=10)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def test_monitor_health_exits_1_on_a_503(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    try:
        async with serving(Health(store, lambda: None), Metrics(store).exposition) as web:
            url = f"{web.url}/healthz"
            code = await asyncio.to_thread(running.health, tmp_path, url, timedelta(seconds=5))
    finally:
        store.close()
    assert code == 1
    assert json.loads(capsys.readouterr().out)["checks"]["scheduler"] == "not started"
