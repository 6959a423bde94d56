"""The console's reads (monitor.store.reads) over SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor.store import reads
from monitor.store.reads import AlertFilter, Cursor
from tests.web.seed import NOW, SECRET_FEED, Seeded


def test_alerts_come_newest_first_with_their_evidence(seeded: Seeded) -> None:
    page = reads.alerts_page(seeded.store.engine, AlertFilter())
    times = [alert.created_at for alert in page.alerts]
    assert times == sorted(times, reverse=True)
    assert len(page.alerts) == len(seeded.alert_ids) == 4
    assert page.next is None
    first = page.alerts[0]
    assert first.title.startswith("Кремль")
    assert first.lang == "ru"
    assert first.rule_title == "Russian–Cuban official contacts (test rule)"
    for hit in first.evidence:
        text = first.title if hit.field == "title" else first.summary
        assert text[hit.start : hit.end] == hit.text


def test_pages_follow_each_other_by_keyset(seeded: Seeded) -> None:
    engine = seeded.store.engine
    seen: list[str] = []
    cursor: Cursor | None = None
    while True:
        page = reads.alerts_page(engine, AlertFilter(), after=cursor, limit=1)
        seen.extend(alert.id for alert in page.alerts)
        if page.next is None:
            break
        cursor = Cursor.decode(page.next.encode())
    everything = reads.alerts_page(engine, AlertFilter(), limit=50)
    assert seen == [alert.id for alert in everything.alerts]


@pytest.mark.parametrize(
    ("where", "titles"),
    [
        (AlertFilter(rule="us-pressure-on-cuba"), {"US Treasury adds sanctions on Cuba"}),
        (AlertFilter(severity="medium"), {"US Treasury adds sanctions on Cuba"}),
        (AlertFilter(lang="es"), {"Delegación rusa llega a La Habana"}),
        (AlertFilter(since=NOW - timedelta(hours=10)),
         {"US Treasury adds sanctions on Cuba", "Кремль: Россия и Куба подписали соглашение"}),
        (AlertFilter(until=NOW - timedelta(hours=29)),
         {"Russian delegation arrives in Havana for talks"}),
    ],
)  # fmt: skip
def test_filters(seeded: Seeded, where: AlertFilter, titles: set[str]) -> None:
    page = reads.alerts_page(seeded.store.engine, where)
    assert {alert.title for alert in page.alerts} == titles


def test_feed_filter(seeded: Seeded) -> None:
    feed_id = next(feed.id for feed in seeded.store.feeds() if feed.url == SECRET_FEED)
    page = reads.alerts_page(seeded.store.engine, AlertFilter(feed=feed_id))
    assert {alert.lang for alert in page.alerts} == {"es", "ru"}


def test_cursor_refuses_what_it_did_not_write() -> None:
    assert Cursor.decode("garbage") is None
    assert Cursor.decode("2026-11-30T12:00:00~") is None  # naive and without an id
    cursor = Cursor(NOW, "alrt_x")
    assert Cursor.decode(cursor.encode()) == cursor


def test_deliveries_per_webhook(seeded: Seeded) -> None:
    found = reads.deliveries_of(seeded.store.engine, [seeded.failed])[seeded.failed]
    by_hook = {d.webhook: d for d in found}
    assert by_hook["ops"].state == "failed"
    assert by_hook["ops"].attempts == 1
    assert by_hook["ops"].last_status == 400
    assert by_hook["ops"].last_error == "HTTP 400: bad payload"
    assert by_hook["chat"].state == "delivered"
    assert reads.delivery(seeded.store.engine, by_hook["ops"].id) == by_hook["ops"]
    assert reads.delivery(seeded.store.engine, 10**9) is None


def test_feeds_with_health_and_items_per_day(seeded: Seeded) -> None:
    engine = seeded.store.engine
    views = {view.url: view for view in reads.feed_views(engine, NOW)}
    secret = views[SECRET_FEED]
    assert secret.health == "ok"
    assert secret.items == 2
    assert len(secret.per_day) == 7
    assert secret.per_day[-1] == 1  # today: the Russian item, 2 h before noon
    assert secret.per_day[-2] == 1  # yesterday: the Spanish one
    seeded.store.record_poll_failure(
        secret.id, NOW, error="HTTP 503", next_check_at=NOW + timedelta(minutes=5), status=503
    )
    failing = {view.url: view for view in reads.feed_views(engine, NOW)}[SECRET_FEED]
    assert failing.health == "failing"
    assert failing.last_error == "HTTP 503"
    seeded.store.record_poll_failure(
        secret.id, NOW, error="HTTP 410", next_check_at=NOW, status=410, gone=True
    )
    assert {v.url: v for v in reads.feed_views(engine, NOW)}[SECRET_FEED].health == "gone"


def test_rule_counts(seeded: Seeded) -> None:
    counts = reads.rule_counts(seeded.store.engine, NOW - timedelta(days=7))
    assert counts["russia-cuba-contacts"].alerts == 3
    assert counts["us-pressure-on-cuba"].alerts == 1
    assert counts["us-pressure-on-cuba"].last_alert_at == NOW - timedelta(hours=5)
    assert reads.rule_counts(seeded.store.engine, NOW) == {}
