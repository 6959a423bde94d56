"""Format `cloudevents`: the alert as a CloudEvents 1.0 event in structured JSON mode.

One `application/cloudevents+json` document with the required attributes `specversion`, `id`
(the `webhook-id`), `source` (`/monitor/rules/<rule id>`; `/monitor/digests`, `/monitor/feeds`
for digests and feed events) and `type` (`org.monitor.` + the event type, e.g.
`org.monitor.alert.created`), plus `time`, `subject` (the item's link or guid; a feed event's
feed URL), `datacontenttype` and `data` (the event's `data` object). With a `secret`, the
Standard Webhooks headers sign the document too.
"""

from __future__ import annotations

from monitor import __version__
from monitor.delivery.base import Alert, OutgoingRequest, Target, json_body
from monitor.delivery.settings import WebhookConfig
from monitor.delivery.standard import signature_headers

NAME = "cloudevents"
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
EVENT_TYPE = "org.monitor.alert.created"  # other events: org.monitor.<type>


def source(alert: Alert) -> str:
    """`/monitor/rules/<rule>` for alerts, `/monitor/digests` and `/monitor/feeds` otherwise."""
    if alert.type.startswith("feed."):
        return "/monitor/feeds"
    if alert.type == "alert.digest":
        return "/monitor/digests"
    return f"/monitor/rules/{alert.rule_id or 'unknown'}"


def event(alert: Alert) -> dict[str, object]:
    document: dict[str, object] = {
        "specversion": "1.0",
        "id": alert.id,
        "source": source(alert),
        "type": f"org.monitor.{alert.type}",
        "datacontenttype": "application/json",
        "data": dict(alert.data),
    }
    if alert.timestamp:
        document["time"] = alert.timestamp
    item = alert.data.get("item")
    guid = item.get("guid") if isinstance(item, dict) else None
    feed = alert.data.get("feed")
    feed_url = feed.get("url") if isinstance(feed, dict) else None
    subject = alert.link or next((s for s in (guid, feed_url) if isinstance(s, str) and s), None)
    if subject:
        document["subject"] = subject
    return document


def build(hook: WebhookConfig, alert: Alert, timestamp: int) -> OutgoingRequest:
    body = json_body(event(alert))
    headers = {
        "content-type": CONTENT_TYPE,
        "user-agent": f"monitor/{__version__}",
        **signature_headers(hook, alert.id, timestamp, body),
    }
    return OutgoingRequest(hook.url, headers, body)


TARGET = Target(
    name=NAME,
    build=build,
    concurrency=8,
    secret_fields=("url", "secret"),
    notes="CloudEvents 1.0, structured content mode, JSON event format.",
)
