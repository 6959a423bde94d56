"""Format `cloudevents`: the alert as a CloudEvents 1.0 event in structured JSON mode.

One `application/cloudevents+json` document with the required attributes `specversion`, `id`
(the `webhook-id`), `source` (`/monitor/rules/<rule id>`; `/monitor/digests`, `/monitor/feeds`
for digests and feed events) and `type` (`org.monitor.` + the event type, e.g.
`org.monitor.alert.created`), plus `time`, `subject` (the item's link or guid; a feed event's
feed URL), `datacontenttype` and `data` (the event's `data` object). With a `secret`, the
Standard Webhooks headers sign the document too.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from monitor import __version__
from monitor.delivery.base import Alert, OutgoingRequest, Target, json_body, web_link
from monitor.delivery.settings import WebhookConfig
from monitor.delivery.standard import signature_headers
from monitor.events import (
    AlertCreated,
    AlertDigest,
    AlertUpdated,
    Event,
    FeedRecovered,
    FeedUnhealthy,
)
from monitor.events import document as document_of

NAME = "cloudevents"
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
EVENT_TYPE = "org.monitor.alert.created"  # other events: org.monitor.<type>


class CloudEventsWebhook(WebhookConfig):
    """The settings of format `cloudevents`: the keys every webhook has."""

    format: Literal["cloudevents"] = Field(
        description="`cloudevents`: CloudEvents 1.0 structured JSON (signed when `secret` is set)."
    )


def source(event: Event) -> str:
    """`/monitor/rules/<rule>` for alerts, `/monitor/digests` and `/monitor/feeds` otherwise."""
    match event:
        case FeedUnhealthy() | FeedRecovered():
            return "/monitor/feeds"
        case AlertDigest():
            return "/monitor/digests"
        case AlertCreated() | AlertUpdated():
            return f"/monitor/rules/{event.data.rule.id or 'unknown'}"


def subject(event: Event) -> str | None:
    """The item's link (or guid) for alerts, the feed's URL for feed events; none for digests."""
    match event:
        case AlertCreated() | AlertUpdated():
            item = event.data.item
            return web_link(item.link) or item.guid or None
        case FeedUnhealthy() | FeedRecovered():
            return event.data.feed.url or None
        case AlertDigest():
            return None


def event_document(alert: Alert) -> dict[str, object]:
    event = alert.typed()
    document: dict[str, object] = {
        "specversion": "1.0",
        "id": alert.id,
        "source": source(event),
        "type": f"org.monitor.{event.type}",
        "datacontenttype": "application/json",
        # keys sorted, as in the stored body: every format carries the same `data` bytes
        "data": _sorted(document_of(event)["data"]),
        "time": event.timestamp,
    }
    about = subject(event)
    if about:
        document["subject"] = about
    return document


def _sorted(value: object) -> object:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def build(hook: WebhookConfig, alert: Alert, timestamp: int) -> OutgoingRequest:
    body = json_body(event_document(alert))
    headers = {
        "content-type": CONTENT_TYPE,
        "user-agent": f"monitor/{__version__}",
        **signature_headers(hook, alert.id, timestamp, body),
    }
    return OutgoingRequest(hook.url, headers, body)


TARGET = Target(
    name=NAME,
    build=build,
    settings=CloudEventsWebhook,
    concurrency=8,
    secret_fields=("url", "secret"),
    notes="CloudEvents 1.0, structured content mode, JSON event format.",
)
