"""Format `slack`: Block Kit for a Slack incoming webhook, with a plain `text` fallback.

Blocks: a header (the item title), a section (the summary), a section of fields (rule,
severity, score, feed), a context line (what matched, the alert id) and a button to the item.
Limits from Slack's Block Kit reference: header text 150 characters, section text 3,000,
field text 2,000 and at most 10 fields, context elements 10, button text 75 and URL 3,000, at
most 50 blocks. mrkdwn text is escaped (&, <, >) and cut between entities, never inside one.
Slack allows about one message per second per webhook; a 429 carries `Retry-After`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from monitor import __version__
from monitor.delivery.base import Alert, AlertView, OutgoingRequest, Target, json_body
from monitor.delivery.notices import Notice, alert_label, notice
from monitor.delivery.settings import WebhookConfig
from monitor.delivery.text import clip, one_line, slack_escape
from monitor.events import AlertCreated

NAME = "slack"
HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
BUTTON_TEXT_MAX = 75
URL_MAX = 3000
FALLBACK_MAX = 3000
SUMMARY_MAX = 1500  # a notification, not the article
ICONS = {"low": "⚪", "medium": "🔵", "high": "🟠", "critical": "🔴"}


class SlackWebhook(WebhookConfig):
    """The settings of format `slack`: the keys every webhook has."""

    format: Literal["slack"] = Field(description="`slack`: Block Kit for a Slack incoming webhook.")


def _mrkdwn(text: str, limit: int) -> dict[str, str]:
    return {"type": "mrkdwn", "text": clip(text, limit, escape=slack_escape)}


def blocks(alert: AlertView) -> list[dict[str, object]]:
    icon = ICONS.get(alert.severity, "🔔")
    result: list[dict[str, object]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": clip(f"{icon} {one_line(alert.title)}", HEADER_MAX),
                "emoji": True,
            },
        }
    ]
    if alert.summary:
        result.append({"type": "section", "text": _mrkdwn(alert.summary, SUMMARY_MAX)})
    facts = [
        ("Rule", alert.rules_label),
        ("Severity", alert.severity),
        ("Score", f"{alert.score:g}"),
        ("Feed", alert.feed_name),
    ]
    fields = [
        {"type": "mrkdwn", "text": f"*{name}*\n" + clip(value, FIELD_MAX - 20, escape=slack_escape)}
        for name, value in facts
        if value
    ]
    if fields:
        result.append({"type": "section", "fields": fields[:10]})
    terms = ", ".join(alert.terms())
    context = f"matched: {terms} · {alert.id}" if terms else alert.id
    result.append({"type": "context", "elements": [_mrkdwn(context, FIELD_MAX)]})
    if alert.link and len(alert.link) <= URL_MAX:
        result.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open item"[:BUTTON_TEXT_MAX]},
                        "url": alert.link,
                        "action_id": "open-item",
                    }
                ],
            }
        )
    return result


def notice_blocks(note: Notice) -> list[dict[str, object]]:
    """Another event than alert.created, short: a title line, its lines, its entries."""
    icon = ICONS.get(note.severity, "🔔")
    title = f"{icon} *{clip(one_line(note.title), HEADER_MAX, escape=slack_escape)}*"
    text = "\n".join([title, *(clip(line, 500, escape=slack_escape) for line in note.lines)])
    result: list[dict[str, object]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    ]
    rows = []
    for entry in note.entries:
        label = clip(one_line(entry.label), 200, escape=slack_escape)
        shown = f"<{entry.link}|{label}>" if entry.link and len(entry.link) <= 500 else label
        note_text = f" · {clip(entry.note, 100, escape=slack_escape)}" if entry.note else ""
        rows.append(f"• {shown}{note_text}")
    if note.more:
        rows.append(f"… and {note.more} more")
    if rows:
        result.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(rows)}})
    if note.footer:
        result.append({"type": "context", "elements": [_mrkdwn(note.footer, FIELD_MAX)]})
    return result


def message(alert: Alert) -> dict[str, object]:
    event = alert.typed()
    if not isinstance(event, AlertCreated):
        note = notice(alert.id, event)
        return {
            "text": clip(one_line(note.title), FALLBACK_MAX, escape=slack_escape),
            "blocks": notice_blocks(note),
            "unfurl_links": False,
        }
    view = AlertView.of(alert.id, event)
    return {
        "text": clip(one_line(alert_label(view)), FALLBACK_MAX, escape=slack_escape),
        "blocks": blocks(view),
        "unfurl_links": False,
    }


def build(hook: WebhookConfig, alert: Alert, timestamp: int) -> OutgoingRequest:
    headers = {"content-type": "application/json", "user-agent": f"monitor/{__version__}"}
    return OutgoingRequest(hook.url, headers, json_body(message(alert)))


TARGET = Target(
    name=NAME,
    build=build,
    settings=SlackWebhook,
    rate_limit=1.0,
    burst=1,
    concurrency=1,
    secret_fields=("url",),
    notes="Slack incoming webhook; the URL is the secret.",
)
