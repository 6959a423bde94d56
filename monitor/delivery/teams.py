"""Format `teams`: an Adaptive Card for a Microsoft Teams Workflows webhook.

The old Office 365 connectors are retired; a Workflows ("Post to a channel when a webhook
request is received") URL takes a `message` whose attachment is an Adaptive Card (schema 1.4):
the item title, the summary, a fact set (rule, severity, score, feed, published, matched) and a
button to the item. Teams refuses messages over about 28 KB, so the summary is shortened until
the body fits 27,000 bytes. Teams allows about 4 requests per second per webhook.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from monitor import __version__
from monitor.delivery.base import Alert, AlertView, OutgoingRequest, Target, json_body
from monitor.delivery.notices import Notice, notice
from monitor.delivery.settings import WebhookConfig
from monitor.delivery.text import clip, one_line, utf16
from monitor.events import AlertCreated

NAME = "teams"
MAX_BODY_BYTES = 27_000  # under Teams' 28 KB message limit, with room for its envelope
TITLE_MAX = 300
FACT_MAX = 500
SUMMARY_START = 4000
COLORS = {"low": "Default", "medium": "Accent", "high": "Warning", "critical": "Attention"}


class TeamsWebhook(WebhookConfig):
    """The settings of format `teams`: the keys every webhook has."""

    format: Literal["teams"] = Field(
        description="`teams`: an Adaptive Card for a Teams Workflows webhook."
    )


def card(alert: AlertView, summary_max: int = SUMMARY_START) -> dict[str, object]:
    facts = [
        ("Rule", alert.rules_label),
        ("Severity", alert.severity),
        ("Score", f"{alert.score:g}"),
        ("Feed", alert.feed_name),
        ("Published", alert.published or ""),
        ("Matched", ", ".join(alert.terms())),
    ]
    body: list[dict[str, object]] = [
        {
            "type": "TextBlock",
            "text": clip(one_line(alert.title), TITLE_MAX, measure=utf16),
            "size": "Medium",
            "weight": "Bolder",
            "color": COLORS.get(alert.severity, "Default"),
            "wrap": True,
        }
    ]
    if alert.summary and summary_max > 0:
        body.append(
            {
                "type": "TextBlock",
                "text": clip(alert.summary, summary_max, measure=utf16),
                "wrap": True,
            }
        )
    body.append(
        {
            "type": "FactSet",
            "facts": [
                {"title": name, "value": clip(value, FACT_MAX, measure=utf16)}
                for name, value in facts
                if value
            ],
        }
    )
    body.append({"type": "TextBlock", "text": alert.id, "isSubtle": True, "size": "Small"})
    content: dict[str, object] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    }
    if alert.link:
        content["actions"] = [{"type": "Action.OpenUrl", "title": "Open item", "url": alert.link}]
    return content


def notice_card(note: Notice) -> dict[str, object]:
    """Another event than alert.created: a title, its lines, its entries as links."""
    body: list[dict[str, object]] = [
        {
            "type": "TextBlock",
            "text": clip(one_line(note.title), TITLE_MAX, measure=utf16),
            "weight": "Bolder",
            "color": COLORS.get(note.severity, "Default"),
            "wrap": True,
        }
    ]
    body += [
        {"type": "TextBlock", "text": clip(line, FACT_MAX, measure=utf16), "wrap": True}
        for line in note.lines
    ]
    for entry in note.entries:
        label = clip(one_line(entry.label), TITLE_MAX, measure=utf16).replace("]", "\\]")
        shown = f"[{label}]({entry.link})" if entry.link else label
        extra = f" · {clip(entry.note, 100, measure=utf16)}" if entry.note else ""
        body.append({"type": "TextBlock", "text": f"- {shown}{extra}", "wrap": True})
    if note.more:
        body.append({"type": "TextBlock", "text": f"… and {note.more} more", "wrap": True})
    if note.footer:
        body.append({"type": "TextBlock", "text": note.footer, "isSubtle": True, "size": "Small"})
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    }


def _wrap(content: dict[str, object]) -> dict[str, object]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": content,
            }
        ],
    }


def message(alert: Alert) -> dict[str, object]:
    """The Workflows message, its summary shortened until the whole fits MAX_BODY_BYTES."""
    event = alert.typed()
    if not isinstance(event, AlertCreated):
        return _wrap(notice_card(notice(alert.id, event)))
    view = AlertView.of(alert.id, event)
    summary_max = SUMMARY_START
    while True:
        document: dict[str, object] = {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": card(view, summary_max),
                }
            ],
        }
        if len(json_body(document)) <= MAX_BODY_BYTES or summary_max == 0:
            return document
        summary_max = summary_max // 2 if summary_max > 64 else 0


def build(hook: WebhookConfig, alert: Alert, timestamp: int) -> OutgoingRequest:
    headers = {"content-type": "application/json", "user-agent": f"monitor/{__version__}"}
    return OutgoingRequest(hook.url, headers, json_body(message(alert)))


TARGET = Target(
    name=NAME,
    build=build,
    settings=TeamsWebhook,
    rate_limit=4.0,
    burst=4,
    concurrency=2,
    secret_fields=("url",),
    max_body_bytes=MAX_BODY_BYTES,
    notes="Teams Workflows webhook (Adaptive Card 1.4); the URL carries its signature.",
)
