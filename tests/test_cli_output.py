"""Command output people read, through the real CLI: header rows and aligned columns, one row
per alert with its deliveries summarised, filters, unknown names, plurals, a busy port."""

from __future__ import annotations

import json
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.cli.table import Row, table
from monitor.store import Store
from monitor.store.replicas import Replicas
from monitor.wording import clipped, plural, width
from tests.conftest import run_cli
from tests.support.cli import run_process
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.receiver import SECRET, SignedReceiver
from tests.support.servers import LocalServer, Reply


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "--config", str(config), cwd=config)


def _columns(line: str, header: str, name: str) -> int:
    """Where column `name` of `header` starts, checked to start there in `line` too."""
    start = header.index(name)
    assert line[start - 2 : start] == "  " or start == 0, (header, line)
    assert line[start] != " ", (header, line)
    return start


@pytest.fixture
def delivered(tmp_path: Path, server: LocalServer, receiver: SignedReceiver) -> Path:
    """Two alerts, each sent to `analysts` (delivered) and to `ops` (failed: HTTP 500)."""
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    server.route("/ops", lambda _request: Reply(500, b"down"))
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": server.url("/wire.xml"), "name": "Wire"}],
        webhooks=[
            {"name": "analysts", "url": receiver.url, "secret": SECRET},
            {"name": "ops", "url": server.url("/ops"), "secret": SECRET, "retry": ["0s"]},
        ],
    )
    once = _cli(config, "run", "--once", "--max-wait", "5s")
    assert "delivered 2, 0 queued, 2 failed" in once.stdout, once.stdout + once.stderr
    return config


def test_alerts_shows_one_row_per_alert_with_its_deliveries_summarised(delivered: Path) -> None:
    result = _cli(delivered, "alerts")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        "CREATED",
        "(UTC)",
        "ALERT",
        "SEVERITY",
        "RULE",
        "DELIVERIES",
        "TITLE",
    ]
    assert len(rows) == 2  # two alerts, not four (alert, webhook) rows
    for row in rows:
        assert "delivered 1/2, failed 1 (ops: HTTP 500 Internal Server Error)" in row
        for name in ("ALERT", "SEVERITY", "RULE", "DELIVERIES", "TITLE"):
            _columns(row, header, name)

    detailed = _cli(delivered, "alerts", "--deliveries").stdout.splitlines()
    assert len(detailed) == 1 + 2 * 3  # each alert, then a line per delivery under it
    assert detailed[2] == "    → analysts  delivered  1 attempt"
    assert detailed[3] == (
        "    → ops       failed     2 attempts  last error: HTTP 500 Internal Server Error"
    )


def test_alerts_json_is_one_object_per_alert_with_its_deliveries(delivered: Path) -> None:
    listed = [json.loads(line) for line in _cli(delivered, "alerts", "--json").stdout.splitlines()]
    assert len(listed) == 2
    for alert in listed:
        assert alert["alert_id"].startswith("alrt_")
        assert alert["delivered"] == 1
        by_name = {d["webhook"]: d for d in alert["deliveries"]}
        assert (by_name["analysts"]["state"], by_name["analysts"]["attempts"]) == ("delivered", 1)
        assert by_name["ops"]["state"] == "failed"
        assert by_name["ops"]["last_error"] == "HTTP 500 Internal Server Error"


def test_limit_counts_alerts_and_filters_choose_alerts(delivered: Path) -> None:
    def ids(*args: str) -> list[str]:
        result = _cli(delivered, "alerts", "--json", *args)
        assert result.returncode == 0, result.stderr
        return [json.loads(line)["alert_id"] for line in result.stdout.splitlines()]

    both = ids()
    assert ids("--limit", "1") == both[:1]  # one alert, with both its deliveries
    assert (
        len(json.loads(_cli(delivered, "alerts", "--json", "--limit", "1").stdout)["deliveries"])
        == 2
    )
    assert ids("--webhook", "ops") == both
    assert ids("--webhook", "ops", "--state", "failed") == both
    assert ids("--webhook", "analysts", "--state", "failed") == []
    assert ids("--state", "pending") == []
    assert ids("--since", "1h") == both
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert ids("--since", tomorrow) == []
    assert ids("--since", "2000-01-01T00:00+02:00") == both


def test_since_that_is_neither_a_duration_nor_a_date_is_refused(delivered: Path) -> None:
    result = _cli(delivered, "alerts", "--since", "last week")
    assert result.returncode == 2
    assert "'last week' is neither a duration (30m, 2h, 7d) nor a date" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("alerts", "--rule", "no-such-rule"),
            "monitor alerts: unknown rule id 'no-such-rule'; known rule ids: "
            "russia-cuba-contacts, us-pressure-on-cuba",
        ),
        (
            ("alerts", "--rule", "russia-cuba-contact"),
            "unknown rule id 'russia-cuba-contact'; did you mean 'russia-cuba-contacts'? Known "
            "rule ids: russia-cuba-contacts, us-pressure-on-cuba",
        ),
        (
            ("alerts", "--webhook", "nosuch"),
            "monitor alerts: unknown webhook 'nosuch'; known webhooks: analysts, ops",
        ),
        (
            ("replay", "--failed", "--webhook", "nosuch"),
            "monitor replay: unknown webhook 'nosuch'; known webhooks: analysts, ops",
        ),
    ],
)
def test_an_unknown_name_is_an_error_that_lists_the_known_ones(
    delivered: Path, args: tuple[str, ...], message: str
) -> None:
    result = _cli(delivered, *args)
    assert (result.returncode, result.stdout) == (2, "")
    assert message in result.stderr


def test_names_the_store_still_has_are_known_after_they_leave_the_config(
    delivered: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    write_config(
        delivered,
        feeds=[{"url": server.url("/wire.xml"), "name": "Wire"}],
        webhooks=[{"name": "analysts", "url": receiver.url, "secret": SECRET}],
    )
    result = _cli(delivered, "alerts", "--webhook", "ops")  # removed, its deliveries kept
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3


def test_webhooks_and_feeds_are_tables_with_a_header_row(delivered: Path) -> None:
    hooks = _cli(delivered, "webhooks").stdout.splitlines()
    assert hooks[0].split() == ["WEBHOOK", "FORMAT", "URL", "RATE", "LIMIT", "DELIVERIES", "STATE"]
    assert len(hooks) == 3
    for line in hooks[1:]:
        for name in ("FORMAT", "URL", "RATE LIMIT", "DELIVERIES", "STATE"):
            _columns(line, hooks[0], name)
    assert hooks[1].startswith("analysts  standard")
    assert "2 delivered" in hooks[1]
    assert "2 failed" in hooks[2]

    feeds = _cli(delivered, "feeds").stdout.splitlines()
    assert feeds[0].split() == ["STATE", "FEED", "ITEMS", "LAST", "OK", "NEXT", "CHECK"]
    assert feeds[1].startswith("ok     Wire")
    start = feeds[0].index("ITEMS")
    assert feeds[1][start : start + len("ITEMS")].strip().isdigit()  # counts right-aligned


def test_status_lists_replicas_as_a_table(delivered: Path) -> None:
    store = Store.open(f"sqlite:///{delivered / 'data' / 'monitor.db'}")
    try:
        replicas = Replicas(store.engine)
        now = datetime.now(UTC)
        replicas.register("live-one", now, timedelta(minutes=5))
        replicas.register("dead-one", now - timedelta(hours=2), timedelta(seconds=10))
    finally:
        store.close()
    result = _cli(delivered, "status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "replicas: 1 live, 1 dead"
    header = lines[1]
    assert header.split()[:4] == ["STATE", "HOST", "PID", "VERSION"]
    assert {lines[2].split()[0], lines[3].split()[0]} == {"live", "dead"}
    for line in lines[2:4]:  # counts right-aligned under their heading
        assert line[header.index("PID") + len("PID") - 1].isdigit()
        assert line[header.index("FEEDS HELD") + len("FEEDS HELD") - 1] == "0"
    assert lines[4].startswith("feeds: 1 active")


def test_a_busy_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_process(["sink", "--port", str(port)], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"sink: cannot listen on 127.0.0.1:{port}: address already in use (another process "
        "listens there; choose another --port)"
    )


def test_plural_and_widths() -> None:
    assert [plural(n, "alert") for n in (0, 1, 2)] == ["0 alerts", "1 alert", "2 alerts"]
    assert plural(1, "delivery", "deliveries") == "1 delivery"
    assert plural(3, "delivery", "deliveries") == "3 deliveries"
    assert width("ТАСС") == 4
    assert width("新华社") == 6
    assert width("Álvarez") == width("A\u0301lvarez") == 7  # a combining accent takes no cell
    assert clipped("Prensa Latina", 8) == "Prensa …"
    assert width(clipped("新华社新闻", 5)) <= 5


def test_a_table_lines_up_names_in_any_script() -> None:
    lines = table(
        ("FEED", "ITEMS", "NOTE"),
        [Row(("新华社", "3", "x"), ["an error"]), ("ТАСС (English)", "120", "y")],
        right={1},
    )
    assert lines == [
        "FEED            ITEMS  NOTE",
        "新华社              3  x",
        "    an error",
        "ТАСС (English)    120  y",
    ]
