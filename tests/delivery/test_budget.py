"""A rule's alert budget (`max_alerts: N/window`): a webhook gets N alerts of the rule one by
one in any window; the rest wait and go out together as one `alert.digest`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from monitor.delivery import noise
from monitor.delivery.dispatcher import Dispatcher, make_delivery_client
from monitor.durations import Budget, parse_budget
from monitor.models import Match
from monitor.store import Store
from tests.conftest import run_cli
from tests.delivery.support import hook
from tests.delivery.test_noise import STORIES, deliver_until_idle, record
from tests.support.receiver import SignedReceiver

RULE = "russia-cuba-contacts"
OTHER = Match("us-pressure-on-cuba", "US pressure on Havana", "medium", 80.0)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_delivery_client() as c:
        yield c


def _stories() -> list[dict[str, str]]:
    return [*STORIES["story"], STORIES["unrelated"]]


def test_a_budget_reads_as_users_write_it() -> None:
    assert parse_budget("20/1h") == Budget(20, timedelta(hours=1))
    assert str(parse_budget(" 5 / 1h30m ")) == "5/1h30m"
    for bad in ("0/1h", "x/1h", "20", "20/"):
        with pytest.raises(ValueError, match=r"budget|duration"):
            parse_budget(bad)


def test_the_overflow_is_held_until_the_window_has_room_then_sent_as_one_digest(
    tmp_path: Path,
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    budgets = {RULE: Budget(2, timedelta(hours=1))}
    plain = hook("desk")
    for i, story in enumerate(_stories()[:4]):
        record(store, story, f"alrt_{i}", ["desk"], now=T0)
    record(store, STORIES["unrelated"], "alrt_o", ["desk"], now=T0, rule=OTHER)

    summary = noise.route_webhook(store.engine, plain, T0, budgets)

    assert (summary.routed, summary.held) == (5, 2)  # the other rule has no budget
    sent = store.outbox.claim_deliveries(T0, timedelta(minutes=1), {"desk": 100})
    assert sorted(d.alert_id or "" for d in sent) == ["alrt_0", "alrt_1", "alrt_o"]
    assert (
        noise.route_webhook(store.engine, plain, T0 + timedelta(minutes=59), budgets).digests == ()
    )

    later = T0 + timedelta(hours=1)
    (digest_id,) = noise.route_webhook(store.engine, plain, later, budgets).digests
    claimed = store.outbox.claim_deliveries(later, timedelta(minutes=1), {"desk": 100})
    (due,) = [d for d in claimed if d.event == "alert.digest"]  # the others' leases ended
    assert due.message_id == digest_id
    body = json.loads(due.payload)
    assert body["data"]["count"] == 2
    store.close()


def test_a_new_window_sends_one_by_one_again(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    budgets = {RULE: Budget(1, timedelta(minutes=10))}
    plain = hook("desk")
    record(store, STORIES["story"][0], "alrt_0", ["desk"], now=T0)
    assert noise.route_webhook(store.engine, plain, T0, budgets).held == 0
    record(store, STORIES["story"][1], "alrt_1", ["desk"], now=T0)
    assert noise.route_webhook(store.engine, plain, T0 + timedelta(minutes=5), budgets).held == 1

    record(store, STORIES["story"][2], "alrt_2", ["desk"], now=T0)
    assert noise.route_webhook(store.engine, plain, T0 + timedelta(minutes=11), budgets).held == 0
    store.close()


async def test_the_dispatcher_routes_a_plain_webhook_whose_rules_have_a_budget(
    storage_url: str, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    store = Store.open(storage_url)
    for i, story in enumerate(_stories()[:4]):
        record(store, story, f"alrt_{i}", ["desk"])
    hooks = {"desk": hook("desk", url=receiver.url)}
    budgets = {RULE: Budget(2, timedelta(seconds=1))}

    await deliver_until_idle(Dispatcher(store.outbox, client, hooks, budgets=budgets))

    kinds = [d.body["type"] for d in receiver.deliveries]
    assert kinds == ["alert.created", "alert.created", "alert.digest"]
    assert receiver.deliveries[2].body["data"]["count"] == 2  # type: ignore[index]
    assert all(d.valid_signature for d in receiver.deliveries)
    assert store.outbox.delivery_counts() == {"delivered": 5}  # 4 alerts and the digest
    store.close()


def test_a_bad_budget_is_reported_at_its_line(tmp_path: Path) -> None:
    config = tmp_path / "config"
    (config / "rules").mkdir(parents=True)
    (config / "monitor.yaml").write_text(
        "version: 1\nrules: rules/\nfeeds: []\nwebhooks: []\n", encoding="utf-8"
    )
    (config / "rules" / "watch.yaml").write_text(
        "version: 1\nrules:\n  - id: havana\n    title: Havana\n"
        "    max_alerts: twenty an hour\n    match: Havana\n",
        encoding="utf-8",
    )

    result = run_cli("check", "--config", str(config), cwd=config)

    assert result.returncode != 0
    assert "watch.yaml:5" in result.stdout + result.stderr
    assert "max_alerts" in result.stdout + result.stderr


def test_a_budget_hold_does_not_hold_other_rules_on_a_quiet_hours_webhook(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    budgets = {RULE: Budget(1, timedelta(hours=6))}
    quiet = hook("night", quiet={"start": "22:00", "end": "07:00", "timezone": "UTC"})
    record(store, STORIES["story"][0], "alrt_0", ["night"], now=T0)
    record(store, STORIES["story"][1], "alrt_1", ["night"], now=T0)
    assert noise.route_webhook(store.engine, quiet, T0, budgets).held == 1  # over the budget

    later = T0 + timedelta(minutes=5)  # 12:05, outside quiet hours
    record(store, STORIES["unrelated"], "alrt_o", ["night"], now=later, rule=OTHER)

    assert noise.route_webhook(store.engine, quiet, later, budgets).held == 0
    sent = store.outbox.claim_deliveries(later, timedelta(minutes=1), {"night": 100})
    assert "alrt_o" in {d.alert_id for d in sent}
    store.close()
