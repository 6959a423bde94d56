"""`monitor backtest` over a store filled by a real `run --once`, before and after a rule edit."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.cli.backtest import report
from monitor.models import Item
from monitor.pipeline.backtest import BacktestResult, Difference
from monitor.store import Store
from monitor.store.retention import prune_item_text
from monitor.store.stored_items import StoredItem
from tests.conftest import run_cli
from tests.matching.support import matcher_for
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.servers import LocalServer

EXTRA_RULE = """\
version: 1
rules:
  - id: baseball
    title: Baseball (test rule)
    severity: low
    match:
      any: [Cubs, Cardinals]
"""


@pytest.fixture
def filled(tmp_path: Path, server: LocalServer) -> Path:
    """A config whose store holds one feed's four items and their two alerts."""
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": server.url("/wire.xml"), "name": "Test Wire"}],
        defaults={"interval": "10m", "backfill": "all"},
    )
    done = run_cli("run", "--once", "--config", str(config), cwd=config)
    assert done.returncode == 0, done.stderr
    assert "4 new items, 2 alerts" in done.stdout
    return config


def backtest(config: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli("backtest", "--config", str(config), *args, cwd=config)
    return result.returncode, result.stdout, result.stderr


def test_unchanged_rules_change_nothing(filled: Path) -> None:
    code, out, err = backtest(filled)
    assert code == 0, err
    assert "backtest: 4 items first seen since" in out
    assert "(7d), 2 rules" in out
    assert "would alert now, did not: 0" in out
    assert "alerted, would not now: 0" in out
    assert "unchanged: 2 alerts would still be raised" in out
    assert "backtest: 4/4 items checked (100%)" in err  # progress, on stderr


def test_an_added_and_a_tightened_rule_show_both_ways(filled: Path) -> None:
    (filled / "rules" / "baseball.yaml").write_text(EXTRA_RULE, encoding="utf-8")
    rules = filled / "rules" / "watch.yaml"
    # us-pressure-on-cuba now needs an embargo: the Treasury sanctions item no longer matches
    text = rules.read_text(encoding="utf-8")
    rules.write_text(text.replace("[$us, $cuba, $pressure]", "[$us, $cuba, embargo]"), "utf-8")
    code, out, err = backtest(filled, "--json")
    assert code == 0, err
    changes = [json.loads(line) for line in out.splitlines()]
    assert {(c["change"], c["rule_id"]) for c in changes} == {
        ("new", "baseball"),
        ("gone", "us-pressure-on-cuba"),
    }
    new = next(c for c in changes if c["change"] == "new")
    assert new["item"]["title"] == "Chicago Cubs rally past Cardinals in extra innings"
    assert new["item"]["feed"]["name"] == "Test Wire"
    gone = next(c for c in changes if c["change"] == "gone")
    assert gone["alert_id"].startswith("alrt_")
    assert gone["score"] is None

    code, out, _err = backtest(filled, "--rule", "baseball")
    assert code == 0
    assert "would alert now, did not: 1\n  baseball (1)\n" in out
    assert "Chicago Cubs rally past Cardinals" in out
    assert "alerted, would not now: 0" in out

    code, _out, err = backtest(filled, "--rule", "basebal")
    assert code == 2
    assert "unknown rule id 'basebal'; did you mean 'baseball'?" in err


def test_pruned_text_is_skipped_and_dedupe_survives_pruning(
    filled: Path, server: LocalServer
) -> None:
    store = Store.open(f"sqlite:///{filled / 'data' / 'monitor.db'}")
    try:
        assert prune_item_text(store.engine, datetime.now(UTC) + timedelta(seconds=1)) == 4
        assert prune_item_text(store.engine, datetime.now(UTC) + timedelta(seconds=1)) == 0
    finally:
        store.close()
    code, out, err = backtest(filled)
    assert code == 0, err
    assert "skipped: 4 items whose text is past retention.item_text" in out
    assert "alerted, would not now: 0" in out  # a title alone is never taken for a change

    # the items keep their dedupe keys: polling the same feed again finds nothing new
    again = run_cli("run", "--once", "--config", str(filled), cwd=filled)
    assert again.returncode == 0, again.stderr
    assert "0 new items, 0 alerts" in again.stdout


def test_backtest_reports_carry_the_evidence() -> None:
    """`monitor backtest` lists how each word of a new alert matched, in text and JSON."""
    item = Item(title="переговоры с Кубой", feed_name="Wire")
    (match,) = matcher_for("Куба").match(item)
    stored = StoredItem(1, item, datetime(2026, 3, 1, tzinfo=UTC), True, {})
    difference = Difference("new", "r", stored, match.score, None, match.hits)
    result = BacktestResult(datetime(2026, 3, 1, tzinfo=UTC), 1, 0, 0, [difference])
    out = io.StringIO()
    report(result, "1d", 1, out, show=5)
    assert '      title: "Кубой" ← term "Куба" (inflected form, ru)' in out.getvalue()
    assert difference.as_json()["matches"][0]["how"] == "inflected"  # type: ignore[index]
