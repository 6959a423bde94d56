"""Format `discord`: one embed for a Discord webhook, sent with `?wait=true`.

With `wait=true` Discord answers only once the message is stored, so a refused message is a
visible error instead of a silent 204. Limits from Discord's embed reference (counted in UTF-16
units): title 256, description 4,096, at most 25 fields of name 256 and value 1,024, footer
2,048, author 256, and 6,000 for all of them together; `content` 2,000. Mentions are disabled
(`allowed_mentions`), so a feed cannot ping @everyone. Rate limits: the `X-RateLimit-*` headers
of each answer (a bucket's remaining requests and when it resets) pause the target, and a 429's
JSON `retry_after` is honored.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from monitor import __version__
from monitor.delivery.base import (
    SEVERITY_COLORS,
    Alert,
    OutgoingRequest,
    RateHint,
    Target,
    json_body,
)
from monitor.delivery.settings import WebhookConfig
from monitor.delivery.text import clip, markdown_escape, one_line, utf16

NAME = "discord"
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
TOTAL_MAX = 6000
SUMMARY_BUDGET = 3000  # leaves room for the rest under TOTAL_MAX
URL_MAX = 2048


def wait_url(url: str) -> str:
    """The webhook URL with `wait=true` added to whatever query it has (e.g. `thread_id`)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "wait"]
    query.append(("wait", "true"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _clip(text: str, limit: int) -> str:
    return clip(text, limit, escape=markdown_escape, measure=utf16)


def embed(alert: Alert) -> dict[str, object]:
    fields = [
        {"name": "Rule", "value": _clip(alert.rule_title or alert.rule_id or "?", 256)},
        {"name": "Severity", "value": alert.severity, "inline": True},
    ]
    if alert.score is not None:
        fields.append({"name": "Score", "value": f"{alert.score:g}", "inline": True})
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
    if alert.published or alert.timestamp:
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


def message(alert: Alert) -> dict[str, object]:
    return {
        "username": "monitor",
        "allowed_mentions": {"parse": []},
        "embeds": [embed(alert)],
    }


def build(hook: WebhookConfig, alert: Alert, timestamp: int) -> OutgoingRequest:
    headers = {"content-type": "application/json", "user-agent": f"monitor/{__version__}"}
    return OutgoingRequest(wait_url(hook.url), headers, json_body(message(alert)))


def hint(response: httpx.Response) -> RateHint:
    """Pause the target while its bucket is empty, or for a 429's `retry_after`."""
    pause: float | None = None
    if response.status_code == 429:
        try:
            body = json.loads(response.content or b"{}")
        except ValueError:
            body = {}
        value = body.get("retry_after") if isinstance(body, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            pause = float(value)
    if pause is None and response.headers.get("x-ratelimit-remaining") == "0":
        try:
            pause = max(float(response.headers.get("x-ratelimit-reset-after", "")), 0.0)
        except ValueError:
            pause = None
    return RateHint(None if pause is None else timedelta(seconds=min(pause, 3600.0)))


TARGET = Target(
    name=NAME,
    build=build,
    rate_limit=2.5,  # a webhook's bucket is typically 5 requests per 2 seconds
    burst=5,
    concurrency=1,
    secret_fields=("url",),
    hint=hint,
    notes="Discord webhook (?wait=true); the URL holds the webhook token.",
)
