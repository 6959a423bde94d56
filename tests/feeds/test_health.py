"""Feed health: when a feed counts as failing or silent, and the store side over SQLite and
PostgreSQL (usual cadence from real items, each change announced once)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from monitor.config.settings import HealthSettings, LoadedConfig, load_config
from monitor.models import Item
from monitor.pipeline.health import FAILING, SILENT, Diagnosis, check_health, diagnose, silent_limit
from monitor.store import FeedState, SeenItem, Store
from monitor.store.health import health_candidates, record_health_change, usual_gap
from monitor.store.tables import deliveries

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DEFAULTS = HealthSettings()


def _feed(**state: object) -> FeedState:
    fields: dict[str, object] = {
        "id": 1,
        "url": "http://feeds.test/wire.xml",
        "name": "Wire",
        "title": None,
        "etag": None,
        "last_modified": None,
        "next_check_at": NOW,
        "error_count": 0,
        "last_error": None,
        "first_polled_at": NOW - timedelta(days=30),
        "last_success_at": NOW,
        "last_checked_at": NOW,
        "last_new_item_at": NOW - timedelta(hours=1),
    }
    return FeedState(**(fields | state))  # type: ignore[arg-type]


def test_a_feed_failing_longer_than_failing_after_is_unhealthy() -> None:
    since = NOW - timedelta(hours=6)
    assert diagnose(_feed(failing_since=since, error_count=9), DEFAULTS, None, NOW) == Diagnosis(
        FAILING, since
    )
    almost = _feed(failing_since=NOW - timedelta(hours=5, minutes=59), error_count=8)
    assert diagnose(almost, DEFAULTS, None, NOW) is None
    never = HealthSettings(failing_after=None)
    assert diagnose(_feed(failing_since=NOW - timedelta(days=9)), never, None, NOW) is None


def test_silence_is_measured_against_the_feeds_own_cadence() -> None:
    hourly = timedelta(hours=1)
    quiet_day = _feed(last_new_item_at=NOW - timedelta(days=1))
    # an hourly feed quiet for a day: 24 gaps, but silent_min (2 d) is the floor
    assert silent_limit(DEFAULTS, hourly) == timedelta(days=2)
    assert diagnose(quiet_day, DEFAULTS, hourly, NOW) is None
    quiet_three_days = _feed(last_new_item_at=NOW - timedelta(days=3))
    assert diagnose(quiet_three_days, DEFAULTS, hourly, NOW) == Diagnosis(
        SILENT, NOW - timedelta(days=3)
    )
    # a weekly newsletter quiet for three weeks is fine; for ten weeks it is not
    weekly = timedelta(weeks=1)
    assert diagnose(_feed(last_new_item_at=NOW - timedelta(weeks=3)), DEFAULTS, weekly, NOW) is None
    long_quiet = _feed(last_new_item_at=NOW - timedelta(weeks=10))
    assert diagnose(long_quiet, DEFAULTS, weekly, NOW) is not None
    # unknown cadence: silent_min alone; never polled with news: counted from the first poll
    never_news = _feed(last_new_item_at=None, first_polled_at=NOW - timedelta(days=2))
    assert diagnose(never_news, DEFAULTS, None, NOW) == Diagnosis(SILENT, NOW - timedelta(days=2))
    off = HealthSettings(silent_after=None)
    assert diagnose(quiet_three_days, off, hourly, NOW) is None


def test_failing_wins_over_silent() -> None:
    both = _feed(
        failing_since=NOW - timedelta(days=4),
        error_count=40,
        last_new_item_at=NOW - timedelta(days=5),
    )
    found = diagnose(both, DEFAULTS, None, NOW)
    assert found is not None
    assert found.reason == FAILING


# the store side ----------------------------------------------------------------------------


@pytest.fixture
def store(storage_url: str) -> Iterator[Store]:
    opened = Store.open(storage_url)
    yield opened
    opened.close()


def _config(tmp_path: Path, storage_url: str, health: dict[str, object]) -> LoadedConfig:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "none.yaml").write_text("rules: []\n", encoding="utf-8")
    hooks = [("ops", ["feed.unhealthy"]), ("all", ["feed.unhealthy", "feed.recovered"])]
    document = {
        "storage": storage_url,
        "health": health,
        "feeds": [{"url": "http://feeds.test/wire.xml", "name": "Wire"}],
        "webhooks": [
            *(
                {
                    "name": name,
                    "url": f"http://hooks.test/{name}",
                    "format": "ntfy",
                    "events": events,
                }
                for name, events in hooks
            ),
            {"name": "alerts", "url": "http://hooks.test/alerts", "format": "ntfy"},
        ],
    }
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return load_config(tmp_path, {})


def _poll(store: Store, feed_id: int, when: datetime, *titles: str) -> None:
    store.record_poll(
        feed_id,
        when,
        next_check_at=when + timedelta(minutes=10),
        etag=None,
        last_modified=None,
        title="Wire",
        seen=[SeenItem(Item(title=t, guid=t)) for t in titles],
    )


def _queued(store: Store) -> list[tuple[str, str, dict[str, object]]]:
    with store.engine.connect() as db:
        rows = db.execute(
            sa.select(deliveries.c.webhook, deliveries.c.event, deliveries.c.payload).order_by(
                deliveries.c.id
            )
        ).all()
    return [(row.webhook, row.event, json.loads(row.payload)) for row in rows]


def test_usual_gap_is_the_median_between_polls_that_brought_news(store: Store) -> None:
    store.sync_feeds([("http://feeds.test/wire.xml", "Wire")], NOW)
    feed_id = store.feeds()[0].id
    start = NOW - timedelta(days=2)
    _poll(store, feed_id, start, "a", "b", "c")  # a first poll brings many at one time
    assert usual_gap(store.engine, feed_id) is None
    for hours, title in ((2, "d"), (4, "e"), (6, "f"), (30, "g")):
        _poll(store, feed_id, start + timedelta(hours=hours), title)
    # gaps 2 h, 2 h, 2 h, 24 h: the median ignores the one long night
    assert usual_gap(store.engine, feed_id) == timedelta(hours=2)


def test_a_silent_feed_is_announced_once_then_recovers_once(
    store: Store, tmp_path: Path, storage_url: str
) -> None:
    config = _config(tmp_path, storage_url, {"silent_after": 10, "silent_min": "1d"})
    store.sync_feeds([("http://feeds.test/wire.xml", "Wire")], NOW - timedelta(days=9))
    feed_id = store.feeds()[0].id
    start = NOW - timedelta(days=9)
    for hours in range(0, 5 * 6, 6):  # news every 6 hours, then nothing
        _poll(store, feed_id, start + timedelta(hours=hours), f"item {hours}")
    last_news = start + timedelta(hours=24)

    # 10 x 6 h = 60 h of silence allowed
    assert check_health(store.engine, config, last_news + timedelta(hours=59)).unhealthy == 0
    found = check_health(store.engine, config, last_news + timedelta(hours=61))
    assert found.unhealthy == 1
    assert check_health(store.engine, config, last_news + timedelta(hours=62)).unhealthy == 0

    queued = _queued(store)
    assert [(hook, event) for hook, event, _ in queued] == [
        ("ops", "feed.unhealthy"),
        ("all", "feed.unhealthy"),
    ]
    data = queued[0][2]["data"]
    assert isinstance(data, dict)
    assert data["reason"] == "silent"
    assert data["usual_interval"] == 6 * 3600
    assert data["since"] == last_news.isoformat().replace("+00:00", "Z")
    assert store.feeds()[0].unhealthy_reason == "silent"

    _poll(store, feed_id, NOW, "fresh news")
    assert check_health(store.engine, config, NOW).recovered == 1
    assert check_health(store.engine, config, NOW).recovered == 0
    events = [(hook, event) for hook, event, _ in _queued(store)]
    assert events[2:] == [("all", "feed.recovered")]  # `ops` did not ask for recoveries
    assert store.feeds()[0].unhealthy_since is None


def test_replicas_checking_at_once_announce_a_change_once(
    store: Store, tmp_path: Path, storage_url: str
) -> None:
    config = _config(tmp_path, storage_url, {"failing_after": "1h"})
    store.sync_feeds([("http://feeds.test/wire.xml", "Wire")], NOW)
    feed_id = store.feeds()[0].id
    store.record_poll_failure(
        feed_id, NOW - timedelta(hours=2), error="HTTP 503", next_check_at=NOW
    )
    store.record_poll_failure(
        feed_id, NOW - timedelta(hours=1), error="HTTP 503", next_check_at=NOW
    )
    assert store.feeds()[0].failing_since == NOW - timedelta(hours=2)

    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(lambda _: check_health(store.engine, config, NOW), range(4)))

    assert sum(report.unhealthy for report in reports) == 1
    assert [(hook, event) for hook, event, _ in _queued(store)] == [
        ("ops", "feed.unhealthy"),
        ("all", "feed.unhealthy"),
    ]


def test_a_diagnosis_made_stale_by_a_poll_is_not_announced(
    store: Store, tmp_path: Path, storage_url: str
) -> None:
    config = _config(tmp_path, storage_url, {"failing_after": "1h"})
    store.sync_feeds([("http://feeds.test/wire.xml", "Wire")], NOW)
    feed_id = store.feeds()[0].id
    store.record_poll_failure(
        feed_id, NOW - timedelta(hours=2), error="HTTP 503", next_check_at=NOW
    )
    (seen,) = health_candidates(store.engine, NOW, timedelta(hours=1), None)
    _poll(store, feed_id, NOW - timedelta(minutes=1), "back")  # it works again meanwhile

    found = diagnose(seen, config.settings.health, None, NOW)
    assert found is not None  # what the check read says failing...
    changed = record_health_change(
        store.engine,
        feed_id,
        NOW,
        reason=found.reason,
        event={},
        webhooks=["ops"],
        checked_at=seen.last_checked_at,
    )
    assert not changed  # ...but the feed was polled since: nothing is announced
    assert _queued(store) == []
    assert check_health(store.engine, config, NOW).unhealthy == 0
