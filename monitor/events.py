"""The alert as an event: ids and the `alert.created` body every target renders from.

The body is built once, when the alert is written to the outbox, and stored; every attempt sends
the same bytes, so receivers that deduplicate on `webhook-id` also see an identical payload.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from monitor.models import Item, Match

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_event_id(prefix: str = "evt", now: datetime | None = None) -> str:
    """`evt_` + a ULID-like id (48 bits of milliseconds, 80 random bits): sortable by time."""
    millis = int((now.timestamp() if now else time.time()) * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, index = divmod(value, 32)
        chars.append(_CROCKFORD[index])
    return f"{prefix}_" + "".join(reversed(chars))


def envelope(event_type: str, data: Mapping[str, object], now: datetime) -> dict[str, object]:
    """`{"type", "timestamp", "data"}`: the shape of every event monitor sends."""
    return {
        "type": event_type,
        "timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": dict(data),
    }


def new_alert_id(now: datetime | None = None) -> str:
    """`alrt_` + a ULID-like id (new_event_id): sortable by time."""
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
