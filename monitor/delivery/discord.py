"""Format `discord`: one embed for a Discord webhook, sent with `?wait=true`.

With `wait=true` Discord answers only once the message is stored, so a refused message is a
visible error instead of a silent 204. Limits from Discord's embed reference (counted in UTF-16
units): title 256, description 4,096, at most 25 fields of name 256 and value 1,024, footer
2,048, author 256, and 6,000 for all of them together; `content` 2,000. Mentions are disabled
(`allowed_mentions`), so a feed cannot ping @everyone. Rate limits: the `X-RateLimit-*` headers
of each answer (a bucket's remaining requests and when it resets) pause the target, and a 429's
JSON `retry_after` is honored.

Other events than `alert.created` are short embeds (monitor.delivery.notices). An `alert.updated`
(one more outlet reports a grouped story) edits the story's first message instead — PATCH
`/messages/{id}` with the id Discord answered — so the channel shows one message listing every
source; when that id is unknown (the first message not yet delivered) a short update is posted.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from pydantic import Field

from monitor import __version__
from monitor.delivery.base import (
    SEVERITY_COLORS,
    Alert,
    AlertView,
    OutgoingRequest,
    RateHint,
    Target,
    answer_object,
    json_body,
    pause_of,
    web_link,
)
from monitor.delivery.notices import Notice, notice, source_entries
from monitor.delivery.settings import WebhookConfig
from monitor.delivery.text import clip, markdown_escape, one_line, utf16
from monitor.events import AlertCreated, AlertUpdated

NAME = "discord"
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
TOTAL_MAX = 6000
SUMMARY_BUDGET = 3000  # leaves room for the rest under TOTAL_MAX
URL_MAX = 2048


class DiscordWebhook(WebhookConfig):
    """The settings of format `discord`: the keys every webhook has."""

    format: Literal["discord"] = Field(description="`discord`: an embed for a Discord webhook.")


def wait_url(url: str) -> str:
    """The webhook URL with `wait=true` added to whatever query it has (e.g. `thread_id`)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "wait"]
    query.append(("wait", "true"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _clip(text: str, limit: int) -> str:
    return clip(text, limit, escape=markdown_escape, measure=utf16)


def embed(alert: AlertView) -> dict[str, object]:
    fields = [
        {"name": "Rule", "value": _clip(alert.rules_label or "?", 256)},
        {"name": "Severity", "value": alert.severity, "inline": True},
        {"name": "Score", "value": f"{alert.score:g}", "inline": True},
    ]
    if alert.feed_name:
        fields.append({"name": "Feed", "value": _clip(alert.feed_name, 256)})
    terms = ", ".join(alert.terms())
    if terms:
        fields.append({"name": "Matched", "value": _clip(terms, 512)})
    document: dict[str, object] = {
        "title": _clip(one_line(alert.title), TITLE_MAX),
        "color": SEVERITY_COLORS.get(alert.severity, SEVERITY_COLORS["medium"]),
        "fields": fields,
        "footer": {"text": clip(f"monitor · {alert.id}", FOOTER_MAX)},
    }
    if alert.summary:
        document["description"] = _clip(alert.summary, SUMMARY_BUDGET)
    if alert.link and len(alert.link) <= URL_MAX:
        document["url"] = alert.link
    document["timestamp"] = alert.published or alert.timestamp
    return document


def embed_length(document: dict[str, object]) -> int:
    """The characters Discord counts toward the 6,000 of a message's embeds."""
    total = utf16(str(document.get("title", ""))) + utf16(str(document.get("description", "")))
    for field in document.get("fields", []):  # type: ignore[attr-defined]
        total += utf16(field["name"]) + utf16(field["value"])
    footer = document.get("footer")
    if isinstance(footer, dict):
        total += utf16(str(footer.get("text", "")))
    return total


def edit_url(url: str, message_id: str) -> str:
    """`…/webhooks/{id}/{token}/messages/{message_id}`, keeping `thread_id`, without `wait`."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "wait"]
    path = parts.path.rstrip("/") + "/messages/" + message_id
    return urlunsplit(parts._replace(path=path, query=urlencode(query)))


def notice_embed(note: Notice) -> dict[str, object]:
    """Another event than alert.created: title, lines and entries (as links) in one embed."""
    rows = list(note.lines)
    for entry in note.entries:
        label = _clip(one_line(entry.label), 200)
        shown = f"[{label}]({entry.link})" if entry.link and len(entry.link) <= 500 else label
        rows.append(f"• {shown}" + (f" · {_clip(entry.note, 100)}" if entry.note else ""))
    if note.more:
        rows.append(f"… and {note.more} more")
    document: dict[str, object] = {
        "title": _clip(one_line(note.title), TITLE_MAX),
        "color": SEVERITY_COLORS.get(note.severity, SEVERITY_COLORS["medium"]),
        "description": clip("\n".join(rows), SUMMARY_BUDGET, measure=utf16),
        "footer": {"text": clip(f"monitor · {note.footer}", FOOTER_MAX)},
    }
    if note.link and len(note.link) <= URL_MAX:
        document["url"] = note.link
    return document


def group_embed(update: AlertUpdated) -> dict[str, object]:
    """An update, as an edit of the story's first message: the first item, then every source."""
    group = update.data.group
    listed = group.sources
    view = AlertView.of(update.data.id, update)
    first = listed[0] if listed else None
    note = Notice(
        title=first.title if first is not None else view.title,
        lines=[f"{view.rule_title} · reported by {len(listed)} sources:"],
        entries=source_entries(listed)[:20],
        more=max(len(listed) - 20, 0),
        link=web_link(first.link) if first is not None else None,
        severity=view.severity,
        footer=f"group {group.id}",
    )
    return notice_embed(note)


def message(alert: Alert) -> dict[str, object]:
    event = alert.typed()
    if isinstance(event, AlertCreated):
        document = embed(AlertView.of(alert.id, event))
    elif isinstance(event, AlertUpdated) and alert.reply_to:
        document = group_embed(event)
    else:
        document = notice_embed(notice(alert.id, event))
    return {
        "username": "monitor",
        "allowed_mentions": {"parse": []},
        "embeds": [document],
    }


def build(hook: WebhookConfig, alert: Alert, timestamp: int) -> OutgoingRequest:
    """A POST (`?wait=true`); an update of a story whose first message Discord has answered
    with its id is a PATCH of that message instead, so the story stays one message."""
    headers = {"content-type": "application/json", "user-agent": f"monitor/{__version__}"}
    document = message(alert)
    if isinstance(alert.event, AlertUpdated) and alert.reply_to:
        del document["username"]  # an edit cannot change the author
        return OutgoingRequest(
            edit_url(hook.url, alert.reply_to), headers, json_body(document), method="PATCH"
        )
    return OutgoingRequest(wait_url(hook.url), headers, json_body(document))


def message_ref(response: httpx.Response) -> str | None:
    """The id of the message Discord stored (the `?wait=true` answer), for later edits."""
    value = answer_object(response).get("id")
    return value if isinstance(value, str) and value.isdigit() else None


def hint(response: httpx.Response) -> RateHint:
    """Pause the target while its bucket is empty, or for a 429's `retry_after`."""
    pause: timedelta | None = None
    if response.status_code == 429:
        pause = pause_of(answer_object(response).get("retry_after"))
    if pause is None and response.headers.get("x-ratelimit-remaining") == "0":
        try:
            pause = pause_of(max(float(response.headers.get("x-ratelimit-reset-after", "")), 0.0))
        except ValueError:
            pause = None
    return RateHint(pause)


TARGET = Target(
    name=NAME,
    build=build,
    settings=DiscordWebhook,
    rate_limit=2.5,  # a webhook's bucket is typically 5 requests per 2 seconds
    burst=5,
    concurrency=1,
    secret_fields=("url",),
    hint=hint,
    message_ref=message_ref,
    notes="Discord webhook (?wait=true); the URL holds the webhook token; updates of a story "
    "edit its first message.",
)
