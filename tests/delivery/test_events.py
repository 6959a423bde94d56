"""Events that are not one alert's `alert.created`: queued in the outbox, rendered by every target.

The event path: `Outbox.enqueue_event` (alone or inside the caller's transaction), claimed with
an outer join on alerts, sent with the event's own `webhook-id` on every attempt; `events:`
choosing which types a webhook receives; each target's short rendering of `alert.updated`,
`alert.digest`, `feed.unhealthy` and `feed.recovered`.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pydantic
import pytest

from monitor.cli import rules, sink
from monitor.delivery import discord
from monitor.delivery.base import Alert
from monitor.delivery.dispatcher import Dispatcher, make_delivery_client
from monitor.delivery.targets import TARGETS, target_for
from monitor.delivery.text import utf8, utf16
from monitor.errors import PermanentDeliveryError
from monitor.events import (
    AlertCreated,
    AlertDigest,
    AlertUpdated,
    FeedRecovered,
    FeedUnhealthy,
    dump,
    events_schema,
    parse_event,
)
from monitor.store import Store
from monitor.store.engine import begin
from tests.conftest import REPO
from tests.delivery.support import UNHEALTHY, hook, store_with_alerts
from tests.support.receiver import SignedReceiver, event_problems

EVENTS = Path(__file__).resolve().parents[1] / "data" / "delivery" / "events"
TYPES = ["alert.updated", "alert.digest", "feed.unhealthy", "feed.recovered"]
# what a reader must see in each event's short text
GIST = {
    "alert.updated": ["Also reported by", "Buques de guerra rusos llegan a La Habana"],
    "alert.digest": ["Digest: 4 alerts in 2 stories", "Treasury adds Cuban shipping firms"],
    "feed.unhealthy": ["TASS (English)", "7 errors in a row", "HTTP 503"],
    "feed.recovered": ["Feed recovered: TASS (English)"],
}


def stored(event_type: str) -> Alert:
    text = (EVENTS / f"{event_type}.json").read_text(encoding="utf-8")
    return Alert.parse(f"evt_{event_type}", text)


def _texts(node: object) -> str:
    """Every string in a JSON document, joined: what a chat client could show."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict):
        return "\n".join(_texts(v) for v in node.values())
    if isinstance(node, list):
        return "\n".join(_texts(v) for v in node)
    return ""


def _unescaped(text: str) -> str:
    return text.replace("\\", "").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")


@pytest.mark.parametrize("event_type", TYPES)
@pytest.mark.parametrize("target", ["slack", "discord", "teams", "ntfy"])
def test_chat_targets_tell_every_event_in_a_short_text(target: str, event_type: str) -> None:
    h = hook(format=target, url="https://hooks.example.org/T0/B0/SECRET")
    request = target_for(h).build(h, stored(event_type), 1_750_000_000)
    assert request.method == "POST"
    document: dict[str, Any] = json.loads(request.body)
    shown = _unescaped(_texts(document))
    for gist in GIST[event_type]:
        assert gist in shown
    if target == "slack":
        assert document["text"]
        assert 1 <= len(document["blocks"]) <= 50
        assert all(len(b["text"]["text"]) <= 3000 for b in document["blocks"] if "text" in b)
    elif target == "discord":
        (embed,) = document["embeds"]
        assert discord.embed_length(embed) <= discord.TOTAL_MAX
        assert document["allowed_mentions"] == {"parse": []}
    elif target == "teams":
        assert len(request.body) <= 27_000
        card = document["attachments"][0]["content"]
        assert card["type"] == "AdaptiveCard"
        assert card["body"][0]["weight"] == "Bolder"
    else:
        assert utf8(document["message"]) <= 4096
        assert 1 <= document["priority"] <= 5


def test_a_digest_of_many_stories_stays_short_and_says_how_many_are_left_out() -> None:
    document = json.loads((EVENTS / "alert.digest.json").read_text(encoding="utf-8"))
    story = document["data"]["stories"][0]
    document["data"]["stories"] = [
        {**story, "item": {**story["item"], "title": f"Story {i} " + "x" * 3000}} for i in range(40)
    ]
    digest = Alert.parse("dgst_1", json.dumps(document))
    for name in ("slack", "discord", "teams", "ntfy"):
        h = hook(format=name, url="https://hooks.example.org/T0/B0/SECRET")
        body = json.loads(target_for(h).build(h, digest, 0).body)
        assert "and 30 more" in _texts(body), name
    embed = json.loads(discord.build(hook(format="discord"), digest, 0).body)["embeds"][0]
    assert utf16(embed["description"]) <= discord.DESCRIPTION_MAX


def _big_digest(stories: int = 1000) -> Alert:
    """A digest at the size cap's limit with every text as long and odd as a feed can make it."""
    document = json.loads((EVENTS / "alert.digest.json").read_text(encoding="utf-8"))
    story = document["data"]["stories"][0]
    document["data"]["part"] = {"number": 2, "of": 3}
    document["data"]["count"] = stories * 7
    document["data"]["stories"] = [
        {
            **story,
            "severity": "critical",
            "sources": 99,
            "rule": {"id": "r" * 200, "title": "<&>" * 300, "severity": "high"},
            "item": {
                **story["item"],
                "title": f"Story {i} " + "&<>*_~`|[]()" * 400,
                "link": "https://wire.example.org/" + "a" * (90 * (i % 30)),
            },
        }
        for i in range(stories)
    ]
    return Alert.parse("dgst_1", json.dumps(document))


def test_the_biggest_digest_renders_within_every_chat_targets_limits() -> None:
    digest = _big_digest()
    for name in ("slack", "discord", "teams", "ntfy"):
        h = hook(format=name, url="https://hooks.example.org/T0/B0/SECRET")
        body = target_for(h).build(h, digest, 0).body
        document = json.loads(body)
        assert "part 2 of 3" in _texts(document), name
        if name == "slack":  # 50 blocks, 3,000 characters a section, 40,000 in all
            assert len(document["blocks"]) <= 50
            for block in document["blocks"]:
                if block["type"] == "section":
                    assert len(block["text"]["text"]) <= 3000
            assert len(_texts(document)) <= 40_000
        elif name == "discord":  # 10 embeds; 6,000 in all, 4,096 a description (UTF-16)
            assert len(document["embeds"]) <= 10
            (embed,) = document["embeds"]
            assert utf16(embed["description"]) <= discord.DESCRIPTION_MAX
            assert utf16(_texts(embed)) <= 6000
        elif name == "teams":  # Teams refuses messages over 28 KB
            assert len(body) <= 27_000
        else:  # ntfy: 4,096 bytes of message
            assert utf8(document["message"]) <= 4096
            assert len(document.get("click", "")) <= 2000


@pytest.mark.parametrize("event_type", TYPES)
def test_standard_and_cloudevents_carry_the_event_with_its_own_id(event_type: str) -> None:
    event = stored(event_type)
    signed = hook()
    request = TARGETS["standard"].build(signed, event, 1_750_000_000)
    assert request.body == event.raw.encode()
    assert request.headers["webhook-id"] == f"evt_{event_type}"
    cloud = json.loads(TARGETS["cloudevents"].build(hook(format="cloudevents"), event, 0).body)
    assert cloud["type"] == f"org.monitor.{event_type}"
    assert cloud["id"] == f"evt_{event_type}"
    assert cloud["data"] == json.loads(event.raw)["data"]
    expected_source = "/monitor/feeds" if event_type.startswith("feed.") else "/monitor/"
    assert cloud["source"].startswith(expected_source)
    if event_type == "alert.digest":  # about no one item or feed
        assert "subject" not in cloud
    else:
        assert cloud["subject"].startswith("https://")


def test_a_json_template_sees_the_event_type() -> None:
    template = '{"kind": {{ event.type | tojson }}, "n": {{ alert.error_count | default(0) }}}'
    h = hook(format="json", template=template)
    body = json.loads(TARGETS["json"].build(h, stored("feed.unhealthy"), 0).body)
    assert body == {"kind": "feed.unhealthy", "n": 7}


@pytest.mark.parametrize("event_type", ["alert.created", *TYPES])
def test_one_json_template_serves_every_event_through_notice(event_type: str) -> None:
    template = '{"text": {{ notice.title | tojson }}, "more": {{ notice.text | tojson }}}'
    h = hook(format="json", template=template)
    event = (
        Alert.parse("alrt_1", (EVENTS.parent / "alert.json").read_text(encoding="utf-8"))
        if event_type == "alert.created"
        else stored(event_type)
    )
    body = json.loads(TARGETS["json"].build(h, event, 0).body)
    expected = {
        "alert.created": "[HIGH] Russian-Cuban state contacts: Russian warships arrive",
        "alert.updated": "Also reported by Noticias <Ejemplo> & *Mundo*: Buques",
        "alert.digest": "Digest: 4 alerts in 2 stories",
        "feed.unhealthy": "Feed failing: TASS (English)",
        "feed.recovered": "Feed recovered: TASS (English)",
    }[event_type]
    assert body["text"].startswith(expected)


def test_discord_edits_the_first_message_of_a_story_when_it_knows_it() -> None:
    h = hook(format="discord", url="https://discord.com/api/webhooks/1/tok?thread_id=9")
    update = stored("alert.updated")
    posted = discord.build(h, update, 0)
    assert posted.method == "POST"
    assert "wait=true" in posted.url
    edit = discord.build(h, dataclasses.replace(update, reply_to="112233"), 0)
    assert edit.method == "PATCH"
    assert edit.url == "https://discord.com/api/webhooks/1/tok/messages/112233?thread_id=9"
    document = json.loads(edit.body)
    assert "username" not in document
    text = _unescaped(_texts(document))
    assert "reported by 2 sources" in text
    assert "Russian warships arrive in Havana" in text
    assert "Example Wire — World" in text
    assert discord.message_ref(httpx.Response(200, json={"id": "112233"})) == "112233"
    assert discord.message_ref(httpx.Response(204)) is None


# the schema of events ------------------------------------------------------------------------

SAMPLES = {
    "alert.created": EVENTS.parent / "alert.json",
    **{t: EVENTS / f"{t}.json" for t in TYPES},
}
MODELS = {
    "alert.created": AlertCreated,
    "alert.updated": AlertUpdated,
    "alert.digest": AlertDigest,
    "feed.unhealthy": FeedUnhealthy,
    "feed.recovered": FeedRecovered,
}


def test_the_events_schema_shipped_for_receivers_is_current() -> None:
    out = io.StringIO()
    assert rules.schema("events", out) == 0
    shipped = (REPO / "config" / "schema" / "events.schema.json").read_text(encoding="utf-8")
    assert json.loads(out.getvalue()) == json.loads(shipped), (
        "regenerate with: monitor schema events > config/schema/events.schema.json"
    )
    jsonschema.Draft202012Validator.check_schema(events_schema())


@pytest.mark.parametrize("event_type", list(SAMPLES))
def test_every_event_is_parsed_as_its_model_and_dumps_back_to_the_same_body(
    event_type: str,
) -> None:
    text = SAMPLES[event_type].read_text(encoding="utf-8")
    assert event_problems(text.encode()) == []
    event = parse_event(text)
    assert type(event) is MODELS[event_type]
    assert dump(event) == json.dumps(json.loads(text), ensure_ascii=False, sort_keys=True)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["data"].pop("rule"), "'rule' is a required property"),
        (lambda d: d.update(type="alert.deleted"), "alert.deleted"),
        (lambda d: d["data"]["item"].update(titel="x"), "'titel' was unexpected"),
        (lambda d: d["data"].update(score="high"), "'high' is not of type 'number'"),
        (lambda d: d.update(timestamp="yesterday"), "does not match"),
    ],
)
def test_a_body_outside_the_schema_is_told_apart(
    change: Callable[[dict[str, Any]], object], problem: str
) -> None:
    document = json.loads(SAMPLES["alert.created"].read_text(encoding="utf-8"))
    change(document)
    problems = event_problems(json.dumps(document).encode())
    assert any(problem in p for p in problems), problems


def test_a_stored_body_that_is_no_event_goes_as_is_to_standard_and_fails_elsewhere() -> None:
    foreign = Alert.parse("evt_x", '{"hello": "world"}')
    assert foreign.event is None
    assert TARGETS["standard"].build(hook(), foreign, 1).body == b'{"hello": "world"}'
    h = hook(format="slack", url="https://hooks.example.org/T0/B0/SECRET")
    with pytest.raises(PermanentDeliveryError, match="not a monitor event"):
        target_for(h).build(h, foreign, 1)


# webhook settings ---------------------------------------------------------------------------


def test_events_default_to_the_alert_ones_and_feed_health_is_opt_in() -> None:
    plain = hook()
    assert plain.wants_event("alert.created")
    assert plain.wants_event("alert.digest")
    assert not plain.wants_event("feed.unhealthy")
    ops = hook(events=["feed.unhealthy", "feed.recovered"])
    assert ops.wants_event("feed.unhealthy")
    assert not ops.wants("russia-cuba-contacts", "critical")  # no alerts at all
    with pytest.raises(pydantic.ValidationError, match=r"feed\.unhealthy"):
        hook(events=["feed.unhealty"])
    with pytest.raises(pydantic.ValidationError):
        hook(events=[])


# the outbox ---------------------------------------------------------------------------------


def test_an_event_is_queued_on_its_own_or_inside_the_callers_transaction(
    storage_url: str,
) -> None:
    store = Store.open(storage_url)
    now = datetime.now(UTC)
    event_id = store.outbox.enqueue_event("feed.unhealthy", UNHEALTHY, ["ops", "chat"], now)
    assert event_id.startswith("evt_")

    def queue_then_fail() -> None:
        with begin(store.engine) as db:
            store.outbox.enqueue_event("feed.recovered", UNHEALTHY, ["ops"], now, db=db)
            raise RuntimeError

    with pytest.raises(RuntimeError):  # rolled back: nothing queued
        queue_then_fail()
    with begin(store.engine) as db:
        store.outbox.enqueue_event(
            "feed.recovered", UNHEALTHY, ["ops"], now, db=db, event_id="evt_fixed"
        )
    store.outbox.enqueue_event("feed.recovered", {"changed": 1}, ["ops"], now, event_id="evt_fixed")
    due = store.outbox.claim_deliveries(now, timedelta(minutes=1), {"ops": 100, "chat": 100})
    assert sorted((d.webhook, d.event, d.message_id) for d in due) == sorted(
        [
            ("ops", "feed.unhealthy", event_id),
            ("chat", "feed.unhealthy", event_id),
            ("ops", "feed.recovered", "evt_fixed"),
        ]
    )
    assert all(d.alert_id is None for d in due)
    recovered = next(d for d in due if d.event == "feed.recovered")
    body = json.loads(recovered.payload)
    assert body["type"] == "feed.recovered"
    assert body["data"] == UNHEALTHY
    assert body["timestamp"].endswith("Z")
    store.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_delivery_client() as c:
        yield c


async def test_an_event_is_delivered_signed_and_retried_with_its_own_id_beside_alerts(
    storage_url: str, receiver: SignedReceiver, client: httpx.AsyncClient
) -> None:
    store = store_with_alerts(None, 1, ("ops",), store=Store.open(storage_url))
    event_id = store.outbox.enqueue_event("feed.unhealthy", UNHEALTHY, ["ops"], datetime.now(UTC))
    receiver.answer([503, 503])  # the first two attempts fail, whichever they are
    hooks = {"ops": hook("ops", url=receiver.url, retry=["0s", "0s"])}
    dispatcher = Dispatcher(store.outbox, client, hooks)
    for _ in range(3):
        await dispatcher.deliver_due()
    ids = sorted(d.webhook_id for d in receiver.deliveries)
    assert ids == sorted(["alrt_0", event_id])
    assert all(d.valid_signature for d in receiver.deliveries)
    (unhealthy,) = [d for d in receiver.deliveries if d.webhook_id == event_id]
    assert unhealthy.body["type"] == "feed.unhealthy"
    assert unhealthy.body["data"] == UNHEALTHY
    assert len(receiver.attempts()) == 4
    assert await dispatcher.next_due() is None
    store.close()


def test_the_sink_prints_every_event_readably() -> None:
    shown = {t: sink.describe(json.loads(stored(t).raw), f"evt_{t}") for t in TYPES}
    assert (
        "also reported: story alrt_01JNKQ8Z6X3V4W5Y6Z7A8B9C0D, 2 sources" in shown["alert.updated"]
    )
    assert shown["alert.digest"].splitlines() == [
        "DIGEST dgst_01JNKR0000000000000000000A: 4 alerts",
        "  [HIGH] Russian warships arrive in Havana for a five-day port call  (3 sources)",
        "  [MEDIUM] Treasury adds Cuban shipping firms to its sanctions list  (1 source)",
    ]
    assert shown["feed.unhealthy"] == (
        "FEED.UNHEALTHY TASS (English): failing since 2026-03-01T09:00:00Z; "
        "last error: HTTP 503 Service Unavailable"
    )
    assert shown["feed.recovered"].startswith("FEED.RECOVERED TASS (English)")
