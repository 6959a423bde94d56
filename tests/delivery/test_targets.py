"""Every target's payload against its documented shape and limits, with ordinary and hostile text.

Limits: Slack Block Kit reference (header 150, section 3,000, field 2,000, ≤10 fields, ≤50
blocks, button text 75 and URL 3,000); Discord embed limits (title 256, description 4,096, ≤25
fields of 256/1,024, footer 2,048, 6,000 in all, counted in UTF-16 units); Teams (message ≤28 KB,
Adaptive Card); ntfy (message ≤4,096 bytes, priority 1-5); CloudEvents 1.0 (required attributes
id, source, specversion, type; lowercase alphanumeric attribute names).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest
from standardwebhooks.webhooks import Webhook

from monitor.config.settings import config_schema, load_config
from monitor.delivery import cloudevents, discord, json_format, ntfy, standard, teams
from monitor.delivery.base import Alert
from monitor.delivery.settings import WebhookConfig
from monitor.delivery.targets import TARGETS, target_for
from monitor.delivery.text import utf16
from monitor.errors import ConfigError, PermanentDeliveryError
from tests.delivery.support import alert, event, hook
from tests.support.receiver import SECRET

LONG = ("Гавана & <b>Havana</b> 🚢 *bold* " * 2000).strip()
HOSTILE = {
    "title": "T" * 10_000 + " & <script>",
    "summary": LONG,
    "link": "https://e.example/" + "x" * 5000,
}
SAMPLES = [pytest.param({}, id="ordinary"), pytest.param(HOSTILE, id="hostile")]
OTHER = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="


def _body(target: str, item: dict[str, Any], **settings: Any) -> dict[str, Any]:
    h = hook(format=target, url="https://hooks.example.org/T0/B0/SECRET", **settings)
    request = target_for(h).build(h, alert("alrt_9", **item), 1_750_000_000)
    assert request.headers["content-type"].startswith(("application/json", "application/cloud"))
    document: dict[str, Any] = json.loads(request.body)
    return document


def test_every_target_describes_itself() -> None:
    assert set(TARGETS) == {
        *("standard", "cloudevents", "slack", "discord", "teams", "ntfy", "json"),
        *("email", "telegram", "matrix", "mattermost", "apprise"),
    }
    for target in TARGETS.values():
        assert "url" in target.secret_fields
        assert target.concurrency >= 1
        assert target.name in target.describe()
    assert TARGETS["slack"].rate_limit == 1.0
    assert TARGETS["teams"].rate_limit == 4.0
    assert "token" in TARGETS["ntfy"].secret_fields


@pytest.mark.parametrize("item", SAMPLES)
def test_slack_block_kit_within_limits(item: dict[str, Any]) -> None:
    message = _body("slack", item)
    assert isinstance(message["text"], str)
    assert 0 < len(message["text"]) <= 3000
    blocks = message["blocks"]
    assert 0 < len(blocks) <= 50
    header = blocks[0]
    assert header["type"] == "header"
    assert header["text"]["type"] == "plain_text"
    assert len(header["text"]["text"]) <= 150
    for block in blocks:
        assert block["type"] in ("header", "section", "context", "actions")
        if block["type"] == "section":
            if "text" in block:
                assert len(block["text"]["text"]) <= 3000
            for field in block.get("fields", []):
                assert len(field["text"]) <= 2000
            assert len(block.get("fields", [])) <= 10
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
        if block["type"] == "actions":
            (button,) = block["elements"]
            assert len(button["text"]["text"]) <= 75
            assert len(button["url"]) <= 3000
    for text in [*_mrkdwn_texts(blocks), message["text"]]:
        assert "<" not in text
        assert ">" not in text
        assert re.fullmatch(r"([^&]|&amp;|&lt;|&gt;)*", text), text


def _mrkdwn_texts(blocks: list[dict[str, Any]]) -> list[str]:
    texts = []
    for block in blocks:
        if block.get("text", {}).get("type") == "mrkdwn":
            texts.append(block["text"]["text"])
        texts += [f["text"] for f in block.get("fields", [])]
        texts += [e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return texts


def test_slack_long_text_is_marked_as_cut() -> None:
    message = _body("slack", HOSTILE)
    assert message["blocks"][0]["text"]["text"].endswith("…")
    assert message["blocks"][1]["text"]["text"].endswith("…")
    assert not any(b["type"] == "actions" for b in message["blocks"])  # URL over 3,000: no button


@pytest.mark.parametrize("item", SAMPLES)
def test_discord_embed_within_limits_and_mentions_off(item: dict[str, Any]) -> None:
    message = _body("discord", item)
    assert message["allowed_mentions"] == {"parse": []}
    assert len(message.get("content", "")) <= 2000
    (embed,) = message["embeds"]
    assert utf16(embed["title"]) <= 256
    assert utf16(embed.get("description", "")) <= 4096
    assert len(embed["fields"]) <= 25
    for field in embed["fields"]:
        assert 0 < utf16(field["name"]) <= 256
        assert 0 < utf16(field["value"]) <= 1024
    assert utf16(embed["footer"]["text"]) <= 2048
    assert discord.embed_length(embed) <= 6000
    assert isinstance(embed["color"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", embed["timestamp"])
    if "url" in embed:
        assert len(embed["url"]) <= 2048


def test_discord_escapes_markdown_and_asks_to_wait() -> None:
    embed = _body("discord", {})["embeds"][0]
    assert "\\*bold\\*" in embed["description"]
    assert "\\|\\|spoiler\\|\\|" in embed["description"]
    h = hook(format="discord", url="https://discord.com/api/webhooks/1/tok?thread_id=5")
    request = discord.build(h, alert(), 1)
    assert request.url == "https://discord.com/api/webhooks/1/tok?thread_id=5&wait=true"


@pytest.mark.parametrize("item", SAMPLES)
def test_teams_adaptive_card_within_limits(item: dict[str, Any]) -> None:
    h = hook(format="teams", url="https://prod.westeurope.logic.azure.com/workflows/x/triggers")
    request = teams.build(h, alert("alrt_9", **item), 1)
    assert len(request.body) <= 28 * 1024
    message = json.loads(request.body)
    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    kinds = [element["type"] for element in card["body"]]
    assert kinds[0] == "TextBlock"
    assert "FactSet" in kinds
    for element in card["body"]:
        if element["type"] == "FactSet":
            assert all({"title", "value"} == set(f) for f in element["facts"])
    for action in card.get("actions", []):
        assert action["type"] == "Action.OpenUrl"
        assert action["url"].startswith("https://")


def test_teams_shrinks_a_huge_summary_to_fit() -> None:
    huge = alert("alrt_9", summary="🚢" * 100_000, title="x" * 100_000)
    h = hook(format="teams", url="https://example.org/workflows/x")
    assert len(teams.build(h, huge, 1).body) <= teams.MAX_BODY_BYTES


@pytest.mark.parametrize("item", SAMPLES)
def test_ntfy_json_publish(item: dict[str, Any]) -> None:
    h = hook(format="ntfy", url="https://ntfy.example.org/sub/alerts-x7", token="tk_secret")
    request = ntfy.build(h, alert("alrt_9", **item), 1)
    assert request.url == "https://ntfy.example.org/sub/"
    assert request.headers["authorization"] == "Bearer tk_secret"
    message = json.loads(request.body)
    assert message["topic"] == "alerts-x7"
    assert message["priority"] == 4  # high
    assert message["tags"] == ["warning", "russia-cuba-contacts"]
    assert len(message["message"].encode("utf-8")) <= 4096
    assert len(message["title"]) <= 250
    if "click" in message:
        assert message["click"].startswith("https://")


@pytest.mark.parametrize(("severity", "priority"), [("low", 2), ("medium", 3), ("critical", 5)])
def test_ntfy_priority_follows_severity(severity: str, priority: int) -> None:
    document = event()
    document["data"]["rule"]["severity"] = severity
    parsed = Alert.parse("a", json.dumps(document))
    assert ntfy.message(parsed, "t")["priority"] == priority


ATTRIBUTE = re.compile(r"^[a-z0-9]{1,20}$")
# The CloudEvents 1.0 JSON format's rules, written from the specification: the four required
# context attributes as non-empty strings, `time` an RFC 3339 timestamp, `source` a URI
# reference, `data` an object or string.
CLOUDEVENT_SCHEMA = {
    "type": "object",
    "required": ["specversion", "id", "source", "type"],
    "properties": {
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "minLength": 1},
        "source": {"type": "string", "minLength": 1, "format": "uri-reference"},
        "type": {"type": "string", "minLength": 1},
        "subject": {"type": "string", "minLength": 1},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"type": "string", "minLength": 1},
        "data": {"type": ["object", "string"]},
    },
    "propertyNames": {"pattern": "^[a-z0-9]{1,20}$"},
}


@pytest.mark.parametrize("item", SAMPLES)
def test_cloudevents_structured_mode(item: dict[str, Any]) -> None:
    h = hook(format="cloudevents", url="https://ce.example.org/in", secret=SECRET)
    request = cloudevents.build(h, alert("alrt_9", **item), 1_750_000_000)
    assert request.headers["content-type"] == "application/cloudevents+json; charset=utf-8"
    document = json.loads(request.body)
    jsonschema.validate(document, CLOUDEVENT_SCHEMA, format_checker=jsonschema.FormatChecker())
    for required in ("id", "source", "specversion", "type"):
        assert isinstance(document[required], str)
        assert document[required]
    assert document["specversion"] == "1.0"
    assert document["id"] == "alrt_9"
    assert document["source"] == "/monitor/rules/russia-cuba-contacts"
    assert document["datacontenttype"] == "application/json"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document["time"])
    assert all(ATTRIBUTE.match(name) for name in document)
    assert document["data"]["item"]["guid"] == "wire-1001"
    assert request.headers["webhook-id"] == "alrt_9"
    assert request.headers["webhook-signature"].startswith("v1,")


def test_standard_sends_the_stored_bytes() -> None:
    stored = json.dumps(event("alrt_9"), ensure_ascii=False)
    request = standard.build(hook(), Alert.parse("alrt_9", stored), 1)
    assert request.body == stored.encode("utf-8")


def test_rotation_signs_with_every_secret_and_each_alone_verifies() -> None:
    h = hook(secret=[SECRET, OTHER])
    request = standard.build(h, alert("alrt_9"), 1_750_000_000)
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(s.startswith("v1,") for s in signatures)
    fresh = standard.build(h, alert("alrt_9"), int(time.time()))
    for secret in (SECRET, OTHER):  # a receiver holding either secret accepts it
        assert Webhook(secret).verify(fresh.body, fresh.headers)["data"]["id"] == "alrt_9"


TEMPLATE = """{"text": {{ (alert.rule.title ~ ": " ~ alert.item.title) | tojson }},
 "id": {{ alert.id | tojson }}, "short": {{ alert.item.summary | clip(20) | tojson }}}"""


def test_json_template_renders_and_is_signed_when_a_secret_is_set() -> None:
    h = hook(format="json", template=TEMPLATE, secret=SECRET, events=["alert.created"])
    request = json_format.build(h, alert("alrt_9"), 1)
    document = json.loads(request.body)
    assert document["id"] == "alrt_9"
    assert document["text"].startswith("Russian-Cuban state contacts: Russian warships")
    assert len(document["short"]) <= 20
    assert document["short"].endswith("…")
    assert "webhook-signature" in request.headers


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ alert.nope }}", "template failed"),
        ("not json {{ alert.id }}", "not JSON"),
        ("{{ alert.__class__.__mro__ }}", "template failed"),
        ("{{ ''.__class__.__subclasses__() }}", "template failed"),
    ],
)
def test_a_failing_or_unsafe_template_fails_the_attempt_with_a_reason(
    template: str, message: str
) -> None:
    # harmless on the samples `monitor check` renders, failing on this alert
    branched = f"{{% if alert.id == 'alrt_9' %}}{template}{{% else %}}{{}}{{% endif %}}"
    h = hook(format="json", template=branched)
    with pytest.raises(PermanentDeliveryError, match=message):
        json_format.build(h, alert("alrt_9"), 1)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"format": "json"}, "needs a `template`"),
        ({"format": "json", "template": "{% if %}"}, "template does not compile"),
        ({"format": "slack", "template": "{}"}, "for format `json` only"),
        ({"format": "slack", "token": "x"}, "for formats `ntfy`, `telegram` only"),
        ({"format": "standard", "secret": []}, "at least one"),
        ({"format": "slack", "severity": "urgent"}, "severity"),
    ],
)
def test_settings_that_cannot_work_are_config_errors(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        hook(**settings)


@pytest.mark.parametrize(
    ("rules", "severity", "rule_id", "alert_severity", "wanted"),
    [
        (None, None, "a", "low", True),
        (["a"], None, "b", "critical", False),
        (None, "high", "a", "medium", False),
        (None, "high", "a", "high", True),
        (None, "high", "a", "critical", True),
        (["a"], "low", "a", "low", True),
    ],
)
def test_routing_by_rule_and_minimum_severity(
    rules: list[str] | None, severity: str | None, rule_id: str, alert_severity: str, wanted: bool
) -> None:
    h = hook(format="slack", rules=rules, severity=severity)
    assert h.wants(rule_id, alert_severity) is wanted


def test_secrets_and_tokens_stay_out_of_repr_and_str() -> None:
    h = hook(format="ntfy", url="https://ntfy.sh/TOPICSECRET", token="tk_TOKENSECRET")
    for text in (repr(h), str(h), h.safe_url(), repr(ntfy.build(h, alert(), 1))):
        assert "SECRET" not in text
    assert hook(secret=[SECRET, OTHER]).__repr__().count("whsec") == 0


# per-target settings --------------------------------------------------------------------------


# the keys a format cannot do without (its tests: test_email.py, test_chat_targets.py, …)
REQUIRED: dict[str, dict[str, Any]] = {
    "json": {"template": "{}"},
    "email": {"url": "smtp://127.0.0.1:1", "to": ["a@example.org"], "from": "m@example.org"},
    "telegram": {"token": "123456:" + "A" * 35, "chat_id": "-100123"},
    "matrix": {"room_id": "!room:example.org", "access_token": "syt_token"},
    "apprise": {"url": "json://127.0.0.1:1/"},
}


def test_each_format_reads_its_own_settings() -> None:
    assert type(hook()) is standard.StandardWebhook  # `format` absent: standard
    for name, target in TARGETS.items():
        parsed = hook(format=name, **REQUIRED.get(name, {}))
        assert type(parsed) is target.settings
        assert target_for(parsed) is target
    assert "token" in TARGETS["ntfy"].settings.model_fields
    assert "token" not in TARGETS["slack"].settings.model_fields
    assert "template" in TARGETS["json"].settings.model_fields


WEBHOOKS = [
    ({"secret": SECRET}, True),
    ({}, False),  # standard signs: needs a secret
    ({"format": "standard", "secret": [SECRET, OTHER]}, True),
    ({"format": "cloudevents"}, True),
    ({"format": "cloudevents", "secret": SECRET}, True),
    ({"format": "slack"}, True),
    ({"format": "slack", "secret": SECRET}, True),  # accepted as before, and unused
    ({"format": "slack", "template": "{}"}, False),
    ({"format": "discord", "token": "tk_x"}, False),
    ({"format": "ntfy", "token": "tk_x"}, True),
    ({"format": "json"}, False),
    ({"format": "json", "template": "{}"}, True),
    ({"format": "teams", "group": "12h", "digest": "1h", "urgent": "high"}, True),
    ({"format": "slackk"}, False),
    ({"format": "slack", "urll": "x"}, False),
    ({"format": "slack", "severity": "urgent"}, False),
]


@pytest.mark.parametrize(("settings", "valid"), WEBHOOKS)
def test_the_config_schema_and_the_settings_agree_on_each_webhook(
    settings: dict[str, Any], valid: bool
) -> None:
    webhook = {"name": "h", "url": "https://h.example/hook", **settings}
    try:
        WebhookConfig.model_validate(webhook)
        parsed = True
    except pydantic.ValidationError:
        parsed = False
    assert parsed is valid
    schema = jsonschema.Draft202012Validator(config_schema())
    assert schema.is_valid({"webhooks": [webhook]}) is valid


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            ["format: slack", "urll: https://h.example/"],
            "monitor.yaml:5:5: unknown key 'urll'; did you mean 'url'?",
        ),
        (["format: slack", "template: '{}'"], "monitor.yaml:2:5: webhooks.0: `template` is for "),
        (["format: ntfy", "token: 3"], "monitor.yaml:5:12: webhooks.0.token: Input should be"),
        (["format: json", "template: '{% if %}'"], "monitor.yaml:5:15: webhooks.0.template: "),
        (["format: 7"], "monitor.yaml:4:13: webhooks.0.format: Input should be 'standard', "),
    ],
)
def test_a_webhook_problem_names_its_line_column_and_key(
    tmp_path: Path, lines: list[str], expected: str
) -> None:
    body = "".join(f"    {line}\n" for line in lines)
    text = f"webhooks:\n  - name: h\n    url: https://h.example/\n{body}"
    (tmp_path / "monitor.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {})
    problems = [str(p).removeprefix(f"{tmp_path}/") for p in caught.value.problems]
    assert any(p.startswith(expected) for p in problems), problems
