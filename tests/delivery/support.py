"""Helpers for delivery tests: realistic alerts from tests/data/delivery, stores holding them."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.delivery.base import Alert
from monitor.delivery.settings import WebhookConfig
from monitor.models import Item
from monitor.store import NewAlert, SeenItem, Store
from tests.support.receiver import SECRET

DATA = Path(__file__).resolve().parents[1] / "data" / "delivery"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# the data of a valid feed.unhealthy (or feed.recovered) event
UNHEALTHY = {
    "feed": {"url": "https://tass.example/rss/v2.xml", "name": "TASS (English)"},
    "reason": "silent",
    "since": "2026-03-01T09:00:00Z",
    "last_success": "2026-03-01T11:50:00Z",
    "last_error": None,
    "error_count": 0,
    "usual_interval": 600,
}


def event(alert_id: str = "alrt_1", **item: Any) -> dict[str, Any]:
    """The sample `alert.created` event with its id (and any item fields) replaced."""
    document: dict[str, Any] = json.loads((DATA / "alert.json").read_text(encoding="utf-8"))
    document = copy.deepcopy(document)
    document["data"]["id"] = alert_id
    document["data"]["item"].update(item)
    return document


def alert(alert_id: str = "alrt_1", **item: Any) -> Alert:
    return Alert.parse(alert_id, json.dumps(event(alert_id, **item), ensure_ascii=False))


def hook(name: str = "hook", **settings: Any) -> WebhookConfig:
    base: dict[str, Any] = {"name": name, "url": "http://127.0.0.1:1/hook", "timeout": "5s"}
    if settings.get("format", "standard") == "standard" and "secret" not in settings:
        base["secret"] = SECRET
    return WebhookConfig.model_validate({**base, **settings})


def store_with_alerts(
    tmp_path: Path | None,
    count: int,
    hooks: Sequence[str] = ("hook",),
    *,
    start: int = 0,
    store: Store | None = None,
    feed_url: str = "http://feed",
) -> Store:
    """A SQLite store (or `store`) with `count` alerts, each due to every one of `hooks`."""
    if store is None:
        assert tmp_path is not None
        store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    now = datetime.now(UTC)
    store.sync_feeds([(feed_url, None)], now)
    (feed,) = [f for f in store.feeds() if f.url == feed_url]
    seen = []
    for i in range(start, start + count):
        alert_id = f"alrt_{i}"
        seen.append(
            SeenItem(
                Item(title=f"t{i}", guid=f"g{i}"),
                (
                    NewAlert(
                        alert_id,
                        "russia-cuba-contacts",
                        "high",
                        90.0,
                        event(alert_id),
                        tuple(hooks),
                    ),
                ),
            )
        )
    store.record_poll(
        feed.id,
        now - timedelta(seconds=1),
        next_check_at=now,
        etag=None,
        last_modified=None,
        title=None,
        seen=seen,
    )
    return store
