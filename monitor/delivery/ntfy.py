"""Format `ntfy`: a push notification to an ntfy topic.

`url` is the topic's URL (`https://ntfy.sh/my-topic`, or a self-hosted server); the alert is
published as JSON to the server's root with `topic`, `title`, `message`, `priority` (severity:
low 2, medium 3, high 4, critical 5), `tags` (an emoji for the severity, the rule id) and `click`
(the item's link). ntfy turns messages over 4,096 bytes into attachments, so the message is cut
to fit in UTF-8 bytes. `token` (an access token) is sent as `Authorization: Bearer`. ntfy.sh lets
a client send bursts of 60, then one message every 5 seconds.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr

from monitor import __version__
from monitor.delivery.base import Alert, AlertView, OutgoingRequest, Target, json_body
from monitor.delivery.notices import notice
from monitor.delivery.settings import WebhookConfig
from monitor.delivery.text import clip, one_line, utf8
from monitor.events import AlertCreated, Event

NAME = "ntfy"
MESSAGE_MAX_BYTES = 4096
TITLE_MAX = 250
PRIORITY = {"low": 2, "medium": 3, "high": 4, "critical": 5}
TAGS = {
    "low": "information_source",
    "medium": "bell",
    "high": "warning",
    "critical": "rotating_light",
}


class NtfyWebhook(WebhookConfig):
    """The settings of format `ntfy`: the topic URL, and an access token when the topic needs
    one."""

    format: Literal["ntfy"] = Field(description="`ntfy`: a push notification to an ntfy topic URL.")
    token: SecretStr | None = Field(
        default=None, description="An access token (`tk_…`), sent as Bearer."
    )


def split_topic(url: str) -> tuple[str, str]:
    """`https://host/prefix/topic` -> (`https://host/prefix/`, `topic`)."""
    parts = urlsplit(url)
    path, _, topic = parts.path.rstrip("/").rpartition("/")
    return urlunsplit(parts._replace(path=path + "/", query="", fragment="")), topic


def notice_message(message_id: str, event: Event, topic: str) -> dict[str, object]:
    """Another event than alert.created: its notice as title and plain lines."""
    note = notice(message_id, event)
    document: dict[str, object] = {
        "topic": topic,
        "title": clip(one_line(note.title), TITLE_MAX),
        "message": clip(note.text() or note.title, MESSAGE_MAX_BYTES - 96, measure=utf8),
        "priority": PRIORITY.get(note.severity, 3),
        "tags": [TAGS.get(note.severity, "bell"), event.type],
    }
    if note.link or (note.entries and note.entries[0].link):
        document["click"] = note.link or note.entries[0].link
    return document


def message(alert: Alert, topic: str) -> dict[str, object]:
    event = alert.typed()
    if not isinstance(event, AlertCreated):
        return notice_message(alert.id, event, topic)
    return alert_message(AlertView.of(alert.id, event), topic)


def alert_message(alert: AlertView, topic: str) -> dict[str, object]:
    terms = ", ".join(alert.terms())
    lines = [alert.summary] if alert.summary else []
    lines.append(f"{alert.rules_label} · {alert.feed_name}".strip(" ·"))
    if terms:
        lines.append(f"matched: {terms}")
    text = "\n\n".join(lines)
    document: dict[str, object] = {
        "topic": topic,
        "title": clip(one_line(alert.title), TITLE_MAX),
        "message": clip(text, MESSAGE_MAX_BYTES - 96, measure=utf8),
        "priority": PRIORITY.get(alert.severity, 3),
        "tags": [TAGS.get(alert.severity, "bell"), alert.rule_id or "monitor"],
    }
    if alert.link:
        document["click"] = alert.link
    return document


def build(hook: WebhookConfig, alert: Alert, timestamp: int) -> OutgoingRequest:
    assert isinstance(hook, NtfyWebhook)
    base, topic = split_topic(hook.url)
    headers = {"content-type": "application/json", "user-agent": f"monitor/{__version__}"}
    if hook.token is not None:
        headers["authorization"] = "Bearer " + hook.token.get_secret_value()
    return OutgoingRequest(base, headers, json_body(message(alert, topic)))


TARGET = Target(
    name=NAME,
    build=build,
    settings=NtfyWebhook,
    rate_limit=0.2,
    burst=60,
    concurrency=2,
    secret_fields=("url", "token"),
    notes="ntfy topic URL (the topic name is a password) and optional access token.",
)
