"""One sample event of each type: what `json` templates are rendered with at config load.

A template that fails on these fails on real events too; its author learns it from
`monitor check` (and a reload refuses it) rather than from failed deliveries. The samples fill
every optional field a webhook's settings allow (`group` on alerts only with `group:`).
"""

from __future__ import annotations

import json
from typing import Any

from monitor.delivery.base import Alert
from monitor.events import EventType

_FEED = {"url": "https://wire.example.org/world/rss.xml", "name": "Example Wire — World"}
_RULE = {"id": "russia-cuba-contacts", "title": "Russian-Cuban state contacts", "severity": "high"}
_ITEM = {
    "guid": "wire-1001",
    "title": "Russian warships arrive in Havana for a five-day port call",
    "link": "https://wire.example.org/world/2026/03/01/havana-port-call",
    "summary": "A frigate and a tanker of the Russian Northern Fleet docked in Havana.",
    "published": "2026-03-01T11:58:00Z",
    "feed": _FEED,
}
_MATCHES = [
    {"term": "Havana", "field": "title", "text": "Havana", "start": 29, "end": 35, "score": 100.0}
]
_SOURCE = {k: _ITEM[k] for k in ("title", "link", "published", "feed")}
_SOURCES = [{"alert_id": "alrt_sample_first", **_SOURCE}, {"alert_id": "alrt_sample", **_SOURCE}]
_GROUP = {"id": "alrt_sample_first", "count": 2, "sources": _SOURCES}
_ALERT = {"id": "alrt_sample", "rule": _RULE, "score": 93.5, "matches": _MATCHES, "item": _ITEM}
_HEALTH = {
    "feed": _FEED,
    "reason": "failing",
    "since": "2026-03-01T09:00:00Z",
    "last_success": "2026-03-01T08:50:00Z",
    "last_error": "HTTP 503",
    "error_count": 12,
    "usual_interval": 600,
}
_STORY = {
    "group": "alrt_sample_first",
    "rule": _RULE,
    "severity": "high",
    "score": 93.5,
    "item": _ITEM,
    "sources": 2,
}
_DATA: dict[EventType, dict[str, Any]] = {
    "alert.created": _ALERT,
    "alert.updated": {**_ALERT, "group": _GROUP},
    "alert.digest": {
        "id": "dgst_sample",
        "window": {"start": "2026-03-01T08:00:00Z", "end": "2026-03-01T12:00:00Z"},
        "count": 2,
        "part": {"number": 1, "of": 1},
        "stories": [_STORY, {**_STORY, "group": None, "score": None, "sources": 1}],
    },
    "feed.unhealthy": _HEALTH,
    "feed.recovered": _HEALTH,
}


def sample(event_type: EventType, *, grouped: bool = False) -> Alert:
    """A valid event of `event_type`, as a stored alert; `grouped`: as a webhook with `group:`
    is sent it (an `alert.created` then opens a story and carries its `group`)."""
    data = _DATA[event_type]
    if grouped and event_type == "alert.created":
        data = {**data, "group": {**_GROUP, "count": 1, "sources": _SOURCES[:1]}}
    body = {"type": event_type, "timestamp": "2026-03-01T12:00:02Z", "data": data}
    alert = Alert.parse(str(data.get("id", "evt_sample")), json.dumps(body, ensure_ascii=False))
    assert alert.event is not None, event_type  # the samples follow monitor.events
    return alert
