"""The alert as an event: ids and the `alert.created` body every target renders from.

The body is built once, when the alert is written to the outbox, and stored; every attempt sends
the same bytes, so receivers that deduplicate on `webhook-id` also see an identical payload.
"""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.models import Item, Match
from monitor.store.outbox import new_event_id


def new_alert_id(now: datetime | None = None) -> str:
    """`alrt_` + a ULID-like id (monitor.store.outbox.new_event_id): sortable by time."""
    return new_event_id("alrt", now)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def alert_created(alert_id: str, item: Item, match: Match, now: datetime) -> dict[str, object]:
    """The `alert.created` event of the contract."""
    return {
        "type": "alert.created",
        "timestamp": iso(now),
        "data": {
            "id": alert_id,
            "rule": {"id": match.rule_id, "title": match.rule_title, "severity": match.severity},
            "score": round(match.score, 1),
            "matches": match.matches_json(),
            "item": {
                "guid": item.guid,
                "title": item.title,
                "link": item.link,
                "summary": item.summary,
                "published": iso(item.published),
                "feed": {"url": item.feed_url, "name": item.feed_name},
            },
        },
    }
