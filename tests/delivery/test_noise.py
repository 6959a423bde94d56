"""Noise control against a real store (SQLite and PostgreSQL) and real receivers on 127.0.0.1.

Story groups (`group:`), digests (`digest:`), quiet hours (`quiet:`) and `urgent:`: five outlets
telling one story in en/es/ru give one `alert.created` and four `alert.updated`; an unrelated
story alerts on its own; held alerts are neither sent nor lost; a digest is one outbox row.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest

from monitor.delivery import noise
from monitor.delivery.dispatcher import Dispatcher, DispatchSummary, make_delivery_client
from monitor.delivery.settings import QuietHours, WebhookConfig
from monitor.events import alert_created
from monitor.models import Item, Match
from monitor.store import AttemptRecord, NewAlert, SeenItem, Store, routing
from tests.delivery.support import hook
from tests.support.receiver import SignedReceiver
from tests.support.servers import LocalServer, RecordedRequest, Reply

STORIES = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "delivery" / "stories.json").read_text(
        encoding="utf-8"
    )
)
OK = AttemptRecord("delivered", 200, None, 5)
RULE = Match("russia-cuba-contacts", "Russian–Cuban official contacts", "high", 90.0)


def record(
    store: Store,
    story: dict[str, str],
    alert_id: str,
    hooks: Sequence[str],
    *,
    severity: str = "high",
    now: datetime | None = None,
    rule: Match = RULE,
) -> None:
    """One outlet's item as a poll records it: the item seen, its alert, its outbox rows."""
    moment = now or datetime.now(UTC)
    url = f"https://{story['feed']}.example/rss"
    store.sync_feeds([(f"https://{f}.example/rss", f) for f in FEEDS], moment)
    (feed,) = [f for f in store.feeds() if f.url == url]
    item = Item(
        title=story["title"],
        summary=story["summary"],
        link=f"https://{story['feed']}.example/{alert_id}",
        guid=alert_id,
        lang=story["lang"],
        feed_url=url,
        feed_name=story["feed"],
    )
    match = Match(rule.rule_id, rule.rule_title, severity, 90.0)
    payload = alert_created(alert_id, item, match, moment)
    new = NewAlert(alert_id, rule.rule_id, severity, 90.0, payload, tuple(hooks))
    store.record_poll(
        feed.id,
        moment,
        next_check_at=moment,
        etag=None,
        last_modified=None,
        title=None,
        seen=[SeenItem(item, (new,))],
    )


FEEDS = ["wire", "prensa", "tass", "daily", "granma", "ria"]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_delivery_client() as c:
        yield c


async def deliver_until_idle(dispatcher: Dispatcher, within: float = 10.0) -> DispatchSummary:
    """What `run --once` does: deliver, and wait for what falls due within `within` seconds."""
    deadline = datetime.now(UTC) + timedelta(seconds=within)
    delivered = 0
    while True:
        delivered += (await dispatcher.deliver_due()).delivered
        due = await dispatcher.next_due()
        if due is None or due > deadline:
            return DispatchSummary(delivered=delivered)
        await asyncio.sleep(max((due - datetime.now(UTC)).total_seconds(), 0.0))


def grouped(receiver: SignedReceiver, **settings: Any) -> dict[str, WebhookConfig]:
    return {"news": hook("news", url=receiver.url, group="12h", **settings)}


async def test_five_outlets_one_story_give_one_created_and_four_updated(
    storage_url: str, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    store = Store.open(storage_url)
    for i, story in enumerate(STORIES["story"]):
        record(store, story, f"alrt_{i}", ["news"])
    record(store, STORIES["unrelated"], "alrt_u", ["news"])
    await deliver_until_idle(Dispatcher(store.outbox, client, grouped(receiver)))

    got = sorted(receiver.deliveries, key=lambda d: d.webhook_id)
    assert [d.body["type"] for d in got] == ["alert.created"] + ["alert.updated"] * 4 + [
        "alert.created"
    ]
    assert [d.webhook_id for d in got] == [*(f"alrt_{i}" for i in range(5)), "alrt_u"]
    assert all(d.valid_signature for d in got)
    first, unrelated = got[0].body["data"], got[5].body["data"]
    assert first["group"] == {
        "id": "alrt_0",
        "count": 1,
        "sources": [
            {
                "alert_id": "alrt_0",
                "title": STORIES["story"][0]["title"],
                "link": "https://wire.example/alrt_0",
                "published": None,
                "feed": {"url": "https://wire.example/rss", "name": "wire"},
            }
        ],
    }
    last = got[4].body["data"]
    assert last["id"] == "alrt_4"
    assert last["item"]["title"] == STORIES["story"][4]["title"]
    assert last["rule"]["id"] == "russia-cuba-contacts"
    assert "matches" in last
    assert "score" in last
    assert last["group"]["id"] == "alrt_0"
    assert last["group"]["count"] == 5
    assert [s["alert_id"] for s in last["group"]["sources"]] == [f"alrt_{i}" for i in range(5)]
    assert unrelated["group"]["id"] == "alrt_u"
    assert unrelated["group"]["count"] == 1

    # a restart: a new store and dispatcher; a sixth outlet joins the story, nothing repeats
    store.close()
    store = Store.open(storage_url)
    record(store, STORIES["later"], "alrt_6", ["news"])
    await deliver_until_idle(Dispatcher(store.outbox, client, grouped(receiver)))
    assert len(receiver.deliveries) == 7
    sixth = receiver.deliveries[-1]
    assert sixth.webhook_id == "alrt_6"
    assert sixth.body["type"] == "alert.updated"
    assert sixth.body["data"]["group"]["count"] == 6
    store.close()


async def test_one_story_two_rules_match_is_one_story_for_the_webhook(
    storage_url: str, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    pressure = Match("us-pressure-on-cuba", "US pressure on Havana", "medium", 80.0)
    store = Store.open(storage_url)
    record(store, STORIES["story"][0], "alrt_0", ["news"])
    record(store, STORIES["story"][1], "alrt_1", ["news"], rule=pressure)
    await deliver_until_idle(Dispatcher(store.outbox, client, grouped(receiver)))

    first, second = sorted(receiver.deliveries, key=lambda d: d.webhook_id)
    assert first.body["type"] == "alert.created"
    assert second.body["type"] == "alert.updated"
    assert second.body["data"]["rule"]["id"] == "us-pressure-on-cuba"
    assert second.body["data"]["group"]["id"] == "alrt_0"
    assert second.body["data"]["group"]["count"] == 2
    store.close()


async def test_a_long_story_lists_its_first_sources_and_counts_them_all(
    tmp_path: Path, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    total = noise.MAX_SOURCES + 5
    for i in range(total):
        record(store, STORIES["story"][i % 5], f"alrt_{i:03d}", ["news"])
    await deliver_until_idle(Dispatcher(store.outbox, client, grouped(receiver)))

    last = max(receiver.deliveries, key=lambda d: d.webhook_id).body["data"]
    assert last["group"]["count"] == total
    assert len(last["group"]["sources"]) == noise.MAX_SOURCES
    assert last["group"]["sources"][0]["alert_id"] == "alrt_000"
    store.close()


async def test_closed_story_groups_are_pruned_and_open_ones_kept(
    tmp_path: Path, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    record(store, STORIES["story"][0], "alrt_0", ["news"])
    await deliver_until_idle(Dispatcher(store.outbox, client, grouped(receiver)))
    now = datetime.now(UTC)
    assert routing.prune_groups(store.engine, now) == 0  # open for 12 h
    assert routing.prune_groups(store.engine, now + timedelta(hours=13)) == 1
    store.close()


async def test_discord_edits_the_story_message_and_slack_posts_short_updates(
    storage_url: str, server: LocalServer, client: httpx.AsyncClient
) -> None:
    def discord_api(request: RecordedRequest) -> Reply:
        return Reply(
            200, b'{"id": "900001", "channel_id": "5"}', {"Content-Type": "application/json"}
        )

    server.route("/api/webhooks/1/tok", discord_api)
    server.route("/api/webhooks/1/tok/messages/900001", discord_api)
    server.route("/slack", lambda _request: Reply(200, b"ok"))
    hooks = {
        "discord": hook(
            "discord", format="discord", url=server.url("/api/webhooks/1/tok"), group="12h"
        ),
        "slack": hook(
            "slack", format="slack", url=server.url("/slack"), group="12h", rate_limit=50
        ),
    }
    store = Store.open(storage_url)
    for i, story in enumerate(STORIES["story"][:3]):
        record(store, story, f"alrt_{i}", list(hooks))
    await deliver_until_idle(Dispatcher(store.outbox, client, hooks))

    to_discord = [r for r in server.requests if r.path.startswith("/api/")]
    assert [r.method for r in to_discord] == ["POST", "PATCH", "PATCH"]
    assert to_discord[0].path == "/api/webhooks/1/tok?wait=true"
    assert {r.path for r in to_discord[1:]} == {"/api/webhooks/1/tok/messages/900001"}
    (edited,) = json.loads(to_discord[-1].body)["embeds"]
    assert "reported by 3 sources" in edited["description"]
    assert all(f" · {feed}" in edited["description"] for feed in ("wire", "prensa", "tass"))
    assert edited["title"] == STORIES["story"][0]["title"]

    to_slack = [json.loads(r.body) for r in server.requests if r.path == "/slack"]
    assert len(to_slack) == 3
    assert to_slack[0]["blocks"][0]["type"] == "header"  # the alert itself
    assert [m["text"].split(":")[0] for m in to_slack[1:]] == [
        "Also reported by prensa",
        "Also reported by tass",
    ]
    assert "3 sources so far" in to_slack[2]["blocks"][0]["text"]["text"]
    assert store.outbox.delivery_counts() == {"delivered": 6}
    store.close()


async def test_an_update_whose_discord_message_was_deleted_is_posted_anew(
    tmp_path: Path, server: LocalServer, client: httpx.AsyncClient
) -> None:
    server.route(  # the story's message itself is gone: its edit URL answers 404
        "/api/webhooks/1/tok",
        lambda _request: Reply(200, b'{"id": "900001"}', {"Content-Type": "application/json"}),
    )
    url = server.url("/api/webhooks/1/tok")
    hooks = {"discord": hook("discord", format="discord", url=url, group="12h")}
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    for i, story in enumerate(STORIES["story"][:2]):
        record(store, story, f"alrt_{i}", ["discord"])
    await deliver_until_idle(Dispatcher(store.outbox, client, hooks))

    sent = [(r.method, r.path.split("?")[0]) for r in server.requests]
    assert sent == [
        ("POST", "/api/webhooks/1/tok"),
        ("PATCH", "/api/webhooks/1/tok/messages/900001"),
        ("POST", "/api/webhooks/1/tok"),
    ]
    assert store.outbox.delivery_counts() == {"delivered": 2}
    store.close()


def test_a_delivery_is_never_claimed_before_it_is_routed(storage_url: str) -> None:
    store = Store.open(storage_url)
    record(store, STORIES["story"][0], "alrt_0", ["news"])
    event_id = store.outbox.enqueue_event("feed.unhealthy", {}, ["news"], datetime.now(UTC))
    now, lease = datetime.now(UTC), timedelta(minutes=1)
    due = store.outbox.claim_deliveries(now, lease, {"news": 10}, owner="t", routed_only={"news"})
    assert [d.message_id for d in due] == [event_id]  # events are routed when queued
    assert store.outbox.release("t") == 1
    noise.route_webhook(store.engine, hook("news", group="12h"), now)
    due = store.outbox.claim_deliveries(now, lease, {"news": 10}, routed_only={"news"})
    assert sorted(d.message_id for d in due) == sorted(["alrt_0", event_id])
    store.close()


def test_routing_leaves_rows_in_flight_alone(storage_url: str) -> None:
    # a replica whose config has no noise settings for `news` claimed the row unrouted; a
    # replica (or a reload) with `digest:` must not turn that row into a held one under it
    store = Store.open(storage_url)
    record(store, STORIES["story"][0], "alrt_0", ["news"])
    now, lease = datetime.now(UTC), timedelta(minutes=2)
    (sending,) = store.outbox.claim_deliveries(now, lease, {"news": 100}, owner="plain")
    digest = hook("news", digest="1h")
    assert noise.route_webhook(store.engine, digest, now).routed == 0
    assert store.outbox.record_attempt(
        sending.id, now, OK, state="delivered", next_attempt_at=None, owner="plain"
    )
    assert store.outbox.delivery_counts() == {"delivered": 1}

    # its lease ended without an outcome: now it is routed, and the old claim is void
    record(store, STORIES["unrelated"], "alrt_1", ["news"])
    now = datetime.now(UTC)
    (stuck,) = store.outbox.claim_deliveries(now, lease, {"news": 100}, owner="plain")
    later = now + lease + timedelta(seconds=1)
    assert noise.route_webhook(store.engine, digest, later).held == 1
    assert not store.outbox.record_attempt(
        stuck.id, later, OK, state="delivered", next_attempt_at=None, owner="plain"
    )
    assert store.outbox.delivery_counts() == {"delivered": 1, "held": 1}
    store.close()


async def test_a_replica_without_group_leaves_new_alerts_to_the_one_that_groups(
    storage_url: str,
    receiver: SignedReceiver,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # two replicas, one still on a config without `group:` for the webhook (a rolling reload)
    store = Store.open(storage_url)
    plain = Dispatcher(store.outbox, client, {"news": hook("news", url=receiver.url)})
    grouping = Dispatcher(store.outbox, client, grouped(receiver))
    record(store, STORIES["story"][0], "alrt_0", ["news"])
    await grouping.deliver_due()
    for i in (1, 2):
        record(store, STORIES["story"][i], f"alrt_{i}", ["news"])
    with caplog.at_level("WARNING", logger="monitor.delivery.dispatcher"):
        await plain.deliver_due()
    assert [d.webhook_id for d in receiver.deliveries] == ["alrt_0"]
    assert "another process routes it" in caplog.text
    assert plain.deferred == {"news"}

    await deliver_until_idle(grouping)
    assert sorted((d.webhook_id, d.body["type"]) for d in receiver.deliveries) == [
        ("alrt_0", "alert.created"),
        ("alrt_1", "alert.updated"),
        ("alrt_2", "alert.updated"),
    ]
    store.close()


def test_a_group_ends_its_span_after_its_first_alert(storage_url: str) -> None:
    store = Store.open(storage_url)
    start = datetime.now(UTC) - timedelta(hours=13)
    record(store, STORIES["story"][0], "alrt_old", ["news"], now=start)
    record(store, STORIES["story"][1], "alrt_new", ["news"])
    summary = noise.route_webhook(store.engine, hook("news", group="12h"), datetime.now(UTC))
    assert (summary.routed, summary.updates) == (2, 0)  # 13 h later it is a new story
    due = store.outbox.claim_deliveries(datetime.now(UTC), timedelta(minutes=1), {"news": 100})
    assert sorted(d.event for d in due) == ["alert.created", "alert.created"]
    store.close()


def test_replicas_routing_at_once_never_make_two_created_of_one_story(storage_url: str) -> None:
    """Four threads, each with its own engine like a replica, route one webhook together."""
    setup = Store.open(storage_url)
    for i, story in enumerate(STORIES["story"]):
        record(setup, story, f"alrt_{i}", ["news"])
    setup.close()
    replicas = [Store.open(storage_url) for _ in range(4)]
    barrier = threading.Barrier(len(replicas))
    errors: list[BaseException] = []

    def route(store: Store) -> None:
        try:
            barrier.wait()
            noise.route_webhook(store.engine, hook("news", group="12h"), datetime.now(UTC))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=route, args=(s,)) for s in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    due = replicas[0].outbox.claim_deliveries(
        datetime.now(UTC), timedelta(minutes=1), {"news": 100}
    )
    assert sorted(d.event for d in due) == ["alert.created"] + ["alert.updated"] * 4
    counts = sorted(json.loads(d.payload)["data"]["group"]["count"] for d in due)
    assert counts == [1, 2, 3, 4, 5]
    for store in replicas:
        store.close()


async def test_a_digest_webhook_gets_one_digest_and_its_alerts_count_as_delivered(
    storage_url: str, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    store = Store.open(storage_url)
    for i, story in enumerate(STORIES["story"]):
        record(store, story, f"alrt_{i}", ["daily"])
    record(store, STORIES["unrelated"], "alrt_u", ["daily"])
    hooks = {"daily": hook("daily", url=receiver.url, group="12h", digest="1s")}
    dispatcher = Dispatcher(store.outbox, client, hooks)
    await dispatcher.deliver_due()  # routes: every alert held, nothing sent yet
    assert receiver.attempts() == []
    rows = store.outbox.recent_alerts()
    assert {r.state for r in rows} == {"held"}
    assert all(r.next_attempt_at is not None for r in rows)

    await deliver_until_idle(dispatcher)
    (digest,) = receiver.deliveries
    assert digest.valid_signature
    assert digest.body["type"] == "alert.digest"
    data = digest.body["data"]
    assert data["id"] == digest.webhook_id
    assert data["id"].startswith("dgst_")
    assert data["count"] == 6
    assert data["window"]["start"] <= data["window"]["end"]
    stories = data["stories"]
    assert [(s["group"], s["sources"]) for s in stories] == [("alrt_0", 5), ("alrt_u", 1)]
    assert stories[0]["item"]["title"] == STORIES["story"][0]["title"]
    assert stories[0]["rule"]["id"] == "russia-cuba-contacts"
    assert stories[0]["severity"] == "high"
    assert {r.state for r in store.outbox.recent_alerts()} == {"delivered"}
    assert store.outbox.delivery_counts() == {"delivered": 7}
    store.close()


async def test_a_window_with_more_stories_than_the_cap_is_sent_as_several_digests(
    storage_url: str, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    store = Store.open(storage_url)
    for i, story in enumerate(STORIES["story"]):
        record(store, story, f"alrt_{i}", ["daily"])
    record(store, STORIES["unrelated"], "alrt_u", ["daily"])
    other = {
        "feed": "prensa",
        "lang": "es",
        "title": "Vietnam dona 2.000 toneladas de arroz a Cuba",
        "summary": "El cargamento de arroz vietnamita llegó al puerto de Santiago de Cuba.",
    }
    record(store, other, "alrt_v", ["daily"])
    settings = {"group": "12h", "digest": "1s", "digest_max_items": 2}
    await deliver_until_idle(
        Dispatcher(store.outbox, client, {"daily": hook("daily", url=receiver.url, **settings)})
    )

    parts = sorted((d.body["data"] for d in receiver.deliveries), key=lambda p: p["part"]["number"])
    assert [p["part"] for p in parts] == [{"number": 1, "of": 2}, {"number": 2, "of": 2}]
    assert [[s["group"] for s in p["stories"]] for p in parts] == [["alrt_0", "alrt_u"], ["alrt_v"]]
    assert [p["count"] for p in parts] == [6, 1]  # a story's alerts are never split
    assert len({p["id"] for p in parts}) == 2
    assert parts[0]["window"] == parts[1]["window"]
    assert {r.state for r in store.outbox.recent_alerts()} == {"delivered"}
    store.close()


async def test_alerts_held_under_a_digest_are_sent_after_the_digest_is_removed(
    tmp_path: Path, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    # held under `digest: 1s`, then the config drops the digest: what was held must still go
    # out (as the digest it was promised), and the run must end rather than spin on it
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    record(store, STORIES["story"][0], "alrt_0", ["daily"])
    held = {"daily": hook("daily", url=receiver.url, digest="1s")}
    await Dispatcher(store.outbox, client, held).deliver_due()
    assert {r.state for r in store.outbox.recent_alerts()} == {"held"}

    plain = Dispatcher(store.outbox, client, {"daily": hook("daily", url=receiver.url)})
    await asyncio.wait_for(deliver_until_idle(plain), timeout=30)

    (digest,) = receiver.deliveries
    assert digest.body["type"] == "alert.digest"
    assert digest.body["data"]["count"] == 1
    assert {r.state for r in store.outbox.recent_alerts()} == {"delivered"}
    store.close()


async def test_a_failed_digest_is_retried_with_its_own_id(
    tmp_path: Path, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    record(store, STORIES["story"][0], "alrt_0", ["daily"])
    receiver.answer([503])
    hooks = {"daily": hook("daily", url=receiver.url, digest="1s", retry=["0s"])}
    await deliver_until_idle(Dispatcher(store.outbox, client, hooks))
    first, second = receiver.attempts()
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.headers["webhook-id"].startswith("dgst_")
    assert first.body == second.body
    assert len(receiver.deliveries) == 1
    store.close()


async def test_urgent_alerts_skip_the_digest(
    tmp_path: Path, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    record(store, STORIES["story"][0], "alrt_low", ["daily"], severity="medium")
    record(store, STORIES["unrelated"], "alrt_hot", ["daily"], severity="critical")
    hooks = {"daily": hook("daily", url=receiver.url, digest="1h", urgent="high")}
    await deliver_until_idle(Dispatcher(store.outbox, client, hooks), within=1)
    (sent,) = receiver.deliveries
    assert sent.webhook_id == "alrt_hot"
    assert sent.body["type"] == "alert.created"
    (held,) = [r for r in store.outbox.recent_alerts() if r.state == "held"]
    assert held.alert_id == "alrt_low"
    assert held.next_attempt_at is not None
    assert held.next_attempt_at > datetime.now(UTC) + timedelta(minutes=59)
    store.close()


@pytest.mark.parametrize("same_pass", [False, True])
async def test_an_urgent_update_of_a_held_story_brings_its_first_alert_out_first(
    storage_url: str, receiver: SignedReceiver, client: httpx.AsyncClient, same_pass: bool
) -> None:
    # the story's first alert is held for the digest; an urgent report of the same story must
    # not reach the receiver as an update of a story it never saw: the first goes out with it
    store = Store.open(storage_url)
    hooks = {
        "news": hook(
            "news", url=receiver.url, group="12h", digest="1h", urgent="high", concurrency=1
        )
    }
    dispatcher = Dispatcher(store.outbox, client, hooks)
    record(store, STORIES["story"][0], "alrt_first", ["news"], severity="medium")
    if not same_pass:
        await dispatcher.deliver_due()
        assert receiver.attempts() == []
    record(store, STORIES["story"][1], "alrt_later", ["news"], severity="medium")
    record(store, STORIES["story"][2], "alrt_hot", ["news"], severity="critical")
    await deliver_until_idle(dispatcher, within=1)

    assert [(d.webhook_id, d.body["type"]) for d in receiver.deliveries] == [
        ("alrt_first", "alert.created"),
        ("alrt_hot", "alert.updated"),
    ]
    assert receiver.deliveries[1].body["data"]["group"]["count"] == 3
    (held,) = [r for r in store.outbox.recent_alerts() if r.state == "held"]
    assert held.alert_id == "alrt_later"  # a plain update still waits for the digest
    store.close()


def test_quiet_hours_hold_alerts_until_they_end_then_send_one_digest(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    night = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)  # 23:30 in Madrid (CET)
    quiet = {"start": "23:00", "end": "07:00", "timezone": "Europe/Madrid"}
    h = hook("night", quiet=quiet, urgent="critical")
    record(store, STORIES["story"][0], "alrt_0", ["night"], now=night)
    record(store, STORIES["unrelated"], "alrt_1", ["night"], now=night)
    assert noise.route_webhook(store.engine, h, night).held == 2
    morning = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # 07:00 in Madrid
    assert store.outbox.next_delivery_at(["night"]) == morning
    assert noise.route_webhook(store.engine, h, morning - timedelta(seconds=1)).digests == ()
    (digest_id,) = noise.route_webhook(store.engine, h, morning).digests
    (due,) = store.outbox.claim_deliveries(morning, timedelta(minutes=1), {"night": 100})
    assert (due.event, due.message_id, due.alert_id) == ("alert.digest", digest_id, None)
    body = json.loads(due.payload)
    assert body["data"]["count"] == 2
    assert body["data"]["window"]["end"] == "2026-03-02T06:00:00Z"
    assert [s["group"] for s in body["data"]["stories"]] == [None, None]
    assert {r.state for r in store.outbox.recent_alerts()} == {"digested"}
    store.close()


# policy ---------------------------------------------------------------------------------------


def _quiet(start: str, end: str, zone: str = "UTC") -> QuietHours:
    return QuietHours(start=start, end=end, timezone=zone)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-03-01T21:59:00+00:00", None),
        ("2026-03-01T22:00:00+00:00", "2026-03-02T07:00:00+00:00"),
        ("2026-03-02T03:00:00+00:00", "2026-03-02T07:00:00+00:00"),
        ("2026-03-02T07:00:00+00:00", None),
    ],
)
def test_overnight_quiet_hours(moment: str, expected: str | None) -> None:
    end = noise.quiet_end(_quiet("22:00", "07:00"), datetime.fromisoformat(moment))
    assert end == (None if expected is None else datetime.fromisoformat(expected))


def test_daytime_quiet_hours_follow_the_zone_across_daylight_saving() -> None:
    lunch = _quiet("12:00", "14:00", "Europe/Madrid")
    winter = noise.quiet_end(lunch, datetime(2026, 3, 27, 11, 30, tzinfo=UTC))
    summer = noise.quiet_end(lunch, datetime(2026, 3, 30, 10, 30, tzinfo=UTC))
    assert winter == datetime(2026, 3, 27, 13, 0, tzinfo=UTC)  # CET, UTC+1
    assert summer == datetime(2026, 3, 30, 12, 0, tzinfo=UTC)  # CEST, UTC+2
    assert noise.quiet_end(lunch, datetime(2026, 3, 30, 12, 0, tzinfo=UTC)) is None


def test_release_time() -> None:
    now = datetime(2026, 3, 1, 21, 30, tzinfo=UTC)
    plain = hook(group="12h")
    assert noise.release_time(plain, "high", now, None) is None
    digest = hook(digest="1h", urgent="high")
    assert noise.release_time(digest, "medium", now, None) == now + timedelta(hours=1)
    assert noise.release_time(digest, "high", now, None) is None  # urgent
    window = now + timedelta(minutes=5)
    assert noise.release_time(digest, "low", now, window) == window  # joins the open window
    both = hook(digest="1h", quiet={"start": "22:00", "end": "07:00"})
    assert noise.release_time(both, "critical", now, None) == datetime(
        2026, 3, 2, 7, 0, tzinfo=UTC
    )  # the window would end at 22:30, within quiet hours


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"quiet": {"start": "25:00", "end": "07:00"}}, "time of day"),
        ({"quiet": {"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}}, "time zone"),
        ({"quiet": {"start": "07:00", "end": "07:00"}}, "same time"),
        ({"digest": "0s"}, "at least 1s"),
        ({"digest": "1h", "digest_max_items": 0}, "greater than or equal to 1"),
        ({"urgent": "urgent"}, "urgent"),
        ({"group": "soon"}, "group"),
        ({"group": "12h", "events": ["alert.created"]}, "alert.updated"),
        ({"digest": "1h", "events": ["alert.created", "alert.updated"]}, "alert.digest"),
        ({"quiet": {"start": "22:00", "end": "07:00"}, "events": ["alert.created"]}, "digest"),
    ],
)
def test_noise_settings_that_cannot_work_are_config_errors(
    settings: dict[str, Any], problem: str
) -> None:
    with pytest.raises(pydantic.ValidationError, match=problem):
        hook(**settings)


def test_only_webhooks_with_noise_settings_are_routed() -> None:
    assert not hook().noisy
    assert hook(group="12h").noisy
    assert hook(digest="1h").noisy
    assert hook(quiet={"start": "22:00", "end": "07:00"}).noisy
    assert not hook(urgent="high").noisy
