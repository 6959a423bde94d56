"""Format `mattermost`: a post through a Mattermost incoming webhook.

`url` is the incoming webhook (`https://chat.example.org/hooks/xxx`: the path is the secret).
The post is JSON with `text` in Mattermost's Markdown, and the optional `username`, `icon_url`
and `channel` (the server must allow integrations to override them). Feed text has its Markdown
escaped with a backslash, and a zero-width space after each `@` so that an item cannot notify
`@channel`, `@all` or anyone. Mattermost splits a text over its post limit (16,383 characters)
into several posts; ours keeps under 4,000 characters (the limit of servers before 5.0, and
plenty for a notification), dropping whole lines at the end and marking the cut with `…`. A
server's rate limit (when enabled: 10 requests a second, bursts of 100) answers 429 with
`Retry-After`; the default rate here stays under it, one post at a time so posts keep their order.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from monitor import __version__
from monitor.delivery.base import Alert, AlertView, OutgoingRequest, Target, json_body
from monitor.delivery.notices import Notice, notice
from monitor.delivery.settings import WebhookConfig
from monitor.delivery.text import clip, markdown_escape, one_line
from monitor.events import AlertCreated
from monitor.fields import http_url

NAME = "mattermost"
TEXT_MAX = 4000
TITLE_MAX = 300
SUMMARY_MAX = 1500
LINK_MAX = 2000
ICONS = {"low": ":white_circle:", "medium": ":large_blue_circle:", "high": ":warning:"}
ICONS["critical"] = ":rotating_light:"


class MattermostWebhook(WebhookConfig):
    """The settings of format `mattermost`: the incoming webhook, and what it may override."""

    format: Literal["mattermost"] = Field(
        description="`mattermost`: a Markdown post through an incoming webhook."
    )
    username: str | None = Field(
        default=None, max_length=64, description="Post as this name (if the server allows)."
    )
    icon_url: str | None = Field(
        default=None, description="Post with this picture (an http(s) URL; if allowed)."
    )
    channel: str | None = Field(
        default=None,
        max_length=64,
        description="Post to this channel (its name, e.g. `town-square`) instead of the "
        "webhook's own.",
    )

    @field_validator("icon_url")
    @classmethod
    def _check_icon(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)


def escape(ch: str) -> str:
    """Markdown with a backslash; `@` followed by a zero-width space: no mentions."""
    return "@\u200b" if ch == "@" else markdown_escape(ch)


def _shown(text: str, limit: int) -> str:
    return clip(text, limit, escape=escape)


def _linked(label: str, link: str | None) -> str:
    if link is None or len(link) > LINK_MAX:
        return label
    return f"[{label}](<{link.replace('>', '%3E')}>)"


def alert_text(view: AlertView) -> list[str]:
    icon = ICONS.get(view.severity, ":bell:")
    rows = [f"{icon} **{_linked(_shown(one_line(view.title), TITLE_MAX), view.link)}**"]
    if view.summary:
        rows.append(_shown(view.summary, SUMMARY_MAX))
    facts = [f"*{_shown(view.rules_label, 300)}*", view.severity, f"score {view.score:g}"]
    if view.feed_name:
        facts.append(_shown(view.feed_name, 200))
    rows.append(" · ".join(facts))
    terms = ", ".join(view.terms())
    if terms:
        rows.append("Matched: " + _shown(terms, 400))
    rows.append(f"`{view.id}`")
    return rows


def notice_text(note: Notice) -> list[str]:
    icon = ICONS.get(note.severity, ":bell:")
    rows = [f"{icon} **{_shown(one_line(note.title), TITLE_MAX)}**"]
    rows += [_shown(line, 400) for line in note.lines]
    for entry in note.entries:
        extra = f" · {_shown(entry.note, 100)}" if entry.note else ""
        rows.append(f"- {_linked(_shown(one_line(entry.label), 200), entry.link)}{extra}")
    if note.more:
        rows.append(f"… and {note.more} more")
    if note.footer:
        rows.append(f"`{note.footer}`")
    return rows


def fit(rows: list[str]) -> str:
    """Whole lines, as many as fit TEXT_MAX; `…` where some were left out."""
    kept: list[str] = []
    for row in rows:
        if len("\n".join([*kept, row])) + 1 > TEXT_MAX:
            return "\n".join(kept) + "…" if kept else clip(row, TEXT_MAX)
        kept.append(row)
    return "\n".join(kept)


def message(hook: MattermostWebhook, alert: Alert) -> dict[str, object]:
    event = alert.typed()
    if isinstance(event, AlertCreated):
        rows = alert_text(AlertView.of(alert.id, event))
    else:
        rows = notice_text(notice(alert.id, event))
    document: dict[str, object] = {"text": fit(rows)}
    for key in ("username", "icon_url", "channel"):
        value = getattr(hook, key)
        if value:
            document[key] = value
    return document


def build(hook: WebhookConfig, alert: Alert, timestamp: int) -> OutgoingRequest:
    assert isinstance(hook, MattermostWebhook)
    headers = {"content-type": "application/json", "user-agent": f"monitor/{__version__}"}
    return OutgoingRequest(hook.url, headers, json_body(message(hook, alert)))


TARGET = Target(
    name=NAME,
    build=build,
    settings=MattermostWebhook,
    rate_limit=5.0,
    burst=10,
    concurrency=1,
    secret_fields=("url",),
    notes="Mattermost incoming webhook; the URL is the secret.",
)
