"""What the console, the API and the Atom feed read (monitor.web): alerts, their deliveries,
feeds with their health, alert counts per rule. Read-only; SQLAlchemy Core, portable SQL.

Alerts are paged by keyset, newest first: a page ends with a `Cursor` (the last alert's time and
id) and the next page starts strictly after it, so a page costs the same at alert 100,000 as at
alert 1 (ix_alerts_newest, ix_alerts_rule_newest: migration 0009) and alerts created while a
reader pages do not shift what it sees.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.models import Item
from monitor.store.tables import alerts, deliveries, delivery_attempts, feeds, items

MAX_PAGE = 200
CURSOR_TIME = "%Y%m%dT%H%M%S.%fZ"


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page of alerts ended: the next page holds older alerts only."""

    created_at: datetime
    alert_id: str

    def encode(self) -> str:
        """Letters, digits and `._~` only: safe in a query string as it is."""
        return f"{self.created_at.astimezone(UTC).strftime(CURSOR_TIME)}~{self.alert_id}"

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """The cursor `encode` wrote; None for anything else (a hand-edited link)."""
        moment, _, alert_id = text.partition("~")
        try:
            created_at = datetime.strptime(moment, CURSOR_TIME).replace(tzinfo=UTC)
        except ValueError:
            return None
        return cls(created_at, alert_id) if alert_id else None


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts to show; None is no condition."""

    rule: str | None = None
    severity: str | None = None
    lang: str | None = None  # `es` also takes `es-419`
    feed: int | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """One matched word, as the alert's stored `matches` have it (offsets into its field)."""

    term: str
    field: str
    text: str
    start: int
    end: int
    score: float
    how: str | None = None


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert with its item, its evidence and the story group its deliveries put it in."""

    id: str
    rule_id: str
    rule_title: str
    severity: str
    score: float
    created_at: datetime
    title: str  # as matched: the offsets of `evidence` refer to it and to `summary`
    summary: str
    link: str | None
    published_at: datetime | None
    lang: str | None
    feed_id: int
    feed_url: str
    feed_name: str | None
    evidence: tuple[Evidence, ...] = ()
    group_id: str | None = None  # a webhook's story group (story_groups.id), if any


@dataclass(frozen=True, slots=True)
class AlertPage:
    alerts: list[AlertView]
    next: Cursor | None  # None: this was the last page


@dataclass(frozen=True, slots=True)
class DeliveryView:
    """One alert's delivery to one webhook."""

    id: int
    alert_id: str | None
    webhook: str
    state: str
    attempts: int  # attempts made (a replay resets the budget, not this count)
    last_error: str | None
    last_status: int | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class FeedView:
    """A feed with its health and the items it brought each day, oldest day first."""

    id: int
    url: str
    name: str | None
    title: str | None
    health: str  # ok | failing | silent | moved | gone | new (never polled)
    last_error: str | None
    error_count: int
    last_status: int | None
    moved_to: str | None
    next_check_at: datetime
    last_checked_at: datetime | None
    last_success_at: datetime | None
    last_new_item_at: datetime | None
    items: int  # items seen in all
    per_day: tuple[int, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class RuleCount:
    rule_id: str
    alerts: int
    last_alert_at: datetime | None


def _alert_columns() -> list[Any]:
    return [
        alerts.c.id,
        alerts.c.rule_id,
        alerts.c.severity,
        alerts.c.score,
        alerts.c.payload,
        alerts.c.created_at,
        items.c.title,
        items.c.link,
        items.c.published_at,
        items.c.lang,
        items.c.feed_id,
        feeds.c.url.label("feed_url"),
        feeds.c.name.label("feed_name"),
    ]


def _joined(query: sa.Select[Any]) -> sa.Select[Any]:
    return query.join(items, items.c.id == alerts.c.item_id).join(
        feeds, feeds.c.id == items.c.feed_id
    )


def _filtered(query: sa.Select[Any], where: AlertFilter) -> sa.Select[Any]:
    if where.rule is not None:
        query = query.where(alerts.c.rule_id == where.rule)
    if where.severity is not None:
        query = query.where(alerts.c.severity == where.severity)
    if where.lang is not None:
        query = query.where(
            sa.or_(items.c.lang == where.lang, items.c.lang.like(f"{where.lang}-%"))
        )
    if where.feed is not None:
        query = query.where(items.c.feed_id == where.feed)
    if where.since is not None:
        query = query.where(alerts.c.created_at >= where.since)
    if where.until is not None:
        query = query.where(alerts.c.created_at < where.until)
    return query


def alerts_page(
    engine: Engine, where: AlertFilter, *, after: Cursor | None = None, limit: int = 50
) -> AlertPage:
    """Alerts newest first (ties by id), after `after`, at most `limit` (1..MAX_PAGE)."""
    limit = max(1, min(limit, MAX_PAGE))
    query = _filtered(_joined(sa.select(*_alert_columns())), where)
    if after is not None:
        moment = sa.literal(after.created_at, type_=alerts.c.created_at.type)
        query = query.where(
            sa.or_(
                alerts.c.created_at < moment,
                sa.and_(alerts.c.created_at == moment, alerts.c.id < after.alert_id),
            )
        )
    query = query.order_by(alerts.c.created_at.desc(), alerts.c.id.desc()).limit(limit + 1)
    with engine.connect() as db:
        rows = db.execute(query).all()
        groups = _group_ids(db, [row.id for row in rows[:limit]])
    views = [_alert_view(row, groups.get(row.id)) for row in rows[:limit]]
    more = len(rows) > limit
    return AlertPage(views, Cursor(views[-1].created_at, views[-1].id) if more else None)


def alerts_by_id(engine: Engine, alert_ids: Sequence[str]) -> list[AlertView]:
    """These alerts (those that exist), newest first."""
    if not alert_ids:
        return []
    query = (
        _joined(sa.select(*_alert_columns()))
        .where(alerts.c.id.in_(list(alert_ids)))
        .order_by(alerts.c.created_at.desc(), alerts.c.id.desc())
    )
    with engine.connect() as db:
        rows = db.execute(query).all()
        groups = _group_ids(db, [row.id for row in rows])
    return [_alert_view(row, groups.get(row.id)) for row in rows]


def alerts_near(
    engine: Engine, rule_id: str, start: datetime, end: datetime, limit: int = MAX_PAGE
) -> list[AlertView]:
    """Alerts of one rule created in [start, end), oldest first: a story's candidates."""
    query = (
        _joined(sa.select(*_alert_columns()))
        .where(alerts.c.rule_id == rule_id, alerts.c.created_at >= start)
        .where(alerts.c.created_at < end)
        .order_by(alerts.c.created_at, alerts.c.id)
        .limit(limit)
    )
    with engine.connect() as db:
        rows = db.execute(query).all()
        groups = _group_ids(db, [row.id for row in rows])
    return [_alert_view(row, groups.get(row.id)) for row in rows]


def group_members(engine: Engine, group_id: str) -> list[str]:
    """The ids of the alerts a webhook's story group holds."""
    query = (
        sa.select(deliveries.c.alert_id)
        .where(deliveries.c.group_id == group_id, deliveries.c.alert_id.is_not(None))
        .distinct()
    )
    with engine.connect() as db:
        return [str(alert_id) for alert_id in db.scalars(query)]


def _group_ids(db: sa.Connection, alert_ids: list[str]) -> dict[str, str]:
    if not alert_ids:
        return {}
    query = (
        sa.select(deliveries.c.alert_id, sa.func.min(deliveries.c.group_id))
        .where(deliveries.c.alert_id.in_(alert_ids), deliveries.c.group_id.is_not(None))
        .group_by(deliveries.c.alert_id)
    )
    return {str(alert_id): str(group) for alert_id, group in db.execute(query)}


def _alert_view(row: sa.Row[Any], group_id: str | None) -> AlertView:
    data = _payload_data(row.payload)
    item, rule = _part(data, "item"), _part(data, "rule")
    return AlertView(
        id=row.id,
        rule_id=row.rule_id,
        rule_title=str(rule.get("title") or row.rule_id),
        severity=row.severity,
        score=row.score / 10,
        created_at=row.created_at,
        title=str(item.get("title") or row.title),
        summary=str(item.get("summary") or ""),
        link=row.link,
        published_at=row.published_at,
        lang=row.lang,
        feed_id=row.feed_id,
        feed_url=row.feed_url,
        feed_name=row.feed_name,
        evidence=_evidence(data.get("matches")),
        group_id=group_id,
    )


def _payload_data(payload: str) -> dict[str, object]:
    """The `data` of a stored alert.created body; empty if it cannot be read (never raises:
    one odd row must not take the page down)."""
    try:
        body = json.loads(payload)
    except ValueError:
        return {}
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else {}


def _part(data: dict[str, object], key: str) -> dict[str, object]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _evidence(matches: object) -> tuple[Evidence, ...]:
    if not isinstance(matches, list):
        return ()
    found: list[Evidence] = []
    for hit in matches:
        try:
            found.append(
                Evidence(
                    term=str(hit["term"]),
                    field=str(hit["field"]),
                    text=str(hit["text"]),
                    start=int(hit["start"]),
                    end=int(hit["end"]),
                    score=float(hit["score"]),
                    how=None if hit.get("how") is None else str(hit["how"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(found)


# deliveries ---------------------------------------------------------------------------------


def deliveries_of(engine: Engine, alert_ids: Sequence[str]) -> dict[str, list[DeliveryView]]:
    """Each alert's deliveries, by webhook name."""
    if not alert_ids:
        return {}
    made = (
        sa.select(sa.func.count())
        .where(delivery_attempts.c.delivery_id == deliveries.c.id)
        .scalar_subquery()
    )
    last_status = (
        sa.select(delivery_attempts.c.status_code)
        .where(delivery_attempts.c.delivery_id == deliveries.c.id)
        .order_by(delivery_attempts.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = (
        sa.select(deliveries, made.label("made"), last_status.label("last_status"))
        .where(deliveries.c.alert_id.in_(list(alert_ids)))
        .order_by(deliveries.c.alert_id, deliveries.c.webhook)
    )
    found: dict[str, list[DeliveryView]] = defaultdict(list)
    with engine.connect() as db:
        for row in db.execute(query):
            found[row.alert_id].append(
                DeliveryView(
                    id=row.id,
                    alert_id=row.alert_id,
                    webhook=row.webhook,
                    state=row.state,
                    attempts=int(row.made),
                    last_error=row.last_error,
                    last_status=row.last_status,
                    next_attempt_at=row.next_attempt_at,
                    delivered_at=row.delivered_at,
                )
            )
    return dict(found)


def delivery(engine: Engine, delivery_id: int) -> DeliveryView | None:
    with engine.connect() as db:
        alert_id = db.scalar(sa.select(deliveries.c.alert_id).where(deliveries.c.id == delivery_id))
    if alert_id is None:
        return None
    found = deliveries_of(engine, [alert_id]).get(alert_id, [])
    return next((view for view in found if view.id == delivery_id), None)


# feeds --------------------------------------------------------------------------------------


def feed_health(row: sa.Row[Any]) -> str:
    """One word for a feed's health, the worst first."""
    if row.gone_at is not None:
        return "gone"
    if row.unhealthy_reason == "failing" or row.error_count > 0:
        return "failing"
    if row.unhealthy_reason == "silent":
        return "silent"
    if row.moved_to:
        return "moved"
    if row.last_checked_at is None:
        return "new"
    return "ok"


def feed_names(engine: Engine) -> list[tuple[int, str | None, str]]:
    """(id, name, URL) of every active feed, by name: for choosing one."""
    query = sa.select(feeds.c.id, feeds.c.name, feeds.c.url).where(feeds.c.active)
    with engine.connect() as db:
        rows = db.execute(query.order_by(feeds.c.name, feeds.c.id)).all()
    return [(row.id, row.name, row.url) for row in rows]


def feed_views(engine: Engine, now: datetime, days: int = 7) -> list[FeedView]:
    """Every active feed, with its health and its items per day over the last `days` (UTC days,
    today last)."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=days - 1)
    counts = (
        sa.select(items.c.feed_id, sa.func.count().label("seen"))
        .group_by(items.c.feed_id)
        .subquery()
    )
    listing = (
        sa.select(feeds, sa.func.coalesce(counts.c.seen, 0).label("seen"))
        .outerjoin(counts, counts.c.feed_id == feeds.c.id)
        .where(feeds.c.active)
        .order_by(feeds.c.name, feeds.c.id)
    )
    # date() is a function on both backends: SQLite's of its stored text, PostgreSQL's cast
    day = sa.func.date(items.c.first_seen_at)
    recent = (
        sa.select(items.c.feed_id, day.label("day"), sa.func.count().label("seen"))
        .where(items.c.first_seen_at >= sa.literal(start, type_=items.c.first_seen_at.type))
        .group_by(items.c.feed_id, day)
    )
    per_day: dict[int, list[int]] = defaultdict(lambda: [0] * days)
    with engine.connect() as db:
        rows = db.execute(listing).all()
        for feed_id, seen_on, seen in db.execute(recent):
            index = (date.fromisoformat(str(seen_on)[:10]) - start.date()).days
            if 0 <= index < days:
                per_day[feed_id][index] += int(seen)
    return [
        _feed_view(row, tuple(per_day[row.id]) if row.id in per_day else (0,) * days)
        for row in rows
    ]


def _feed_view(row: sa.Row[Any], per_day: tuple[int, ...]) -> FeedView:
    return FeedView(
        id=row.id,
        url=row.url,
        name=row.name,
        title=row.title,
        health=feed_health(row),
        last_error=row.last_error,
        error_count=row.error_count,
        last_status=row.last_status,
        moved_to=row.moved_to,
        next_check_at=row.next_check_at,
        last_checked_at=row.last_checked_at,
        last_success_at=row.last_success_at,
        last_new_item_at=row.last_new_item_at,
        items=int(row.seen),
        per_day=per_day,
    )


# rules --------------------------------------------------------------------------------------


def rule_counts(engine: Engine, since: datetime) -> dict[str, RuleCount]:
    """Alerts per rule created since `since`, with the rule's latest alert."""
    query = (
        sa.select(
            alerts.c.rule_id,
            sa.func.count().label("alerts"),
            sa.func.max(alerts.c.created_at).label("last"),
        )
        .where(alerts.c.created_at >= since)
        .group_by(alerts.c.rule_id)
    )
    with engine.connect() as db:
        return {
            row.rule_id: RuleCount(row.rule_id, int(row.alerts), row.last)
            for row in db.execute(query)
        }


# items --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemChoice:
    """A stored item the playground offers to try rules on."""

    id: int
    title: str
    feed_name: str | None
    first_seen_at: datetime


def recent_items(engine: Engine, limit: int = 50) -> list[ItemChoice]:
    """The latest items whose text is still kept, newest first."""
    query = (
        sa.select(items.c.id, items.c.title, items.c.first_seen_at, feeds.c.name)
        .join(feeds, feeds.c.id == items.c.feed_id)
        .where(sa.or_(items.c.summary.is_not(None), items.c.content.is_not(None)))
        .order_by(items.c.first_seen_at.desc(), items.c.id.desc())
        .limit(limit)
    )
    with engine.connect() as db:
        return [
            ItemChoice(row.id, row.title, row.name, row.first_seen_at) for row in db.execute(query)
        ]


def stored_item(engine: Engine, item_id: int) -> Item | None:
    """One stored item as the matcher sees it (its feed's URL as configured)."""
    query = (
        sa.select(items, feeds.c.url.label("feed_url"), feeds.c.name.label("feed_name"))
        .join(feeds, feeds.c.id == items.c.feed_id)
        .where(items.c.id == item_id)
    )
    with engine.connect() as db:
        row = db.execute(query).first()
    if row is None:
        return None
    return Item(
        title=row.title,
        summary=row.summary or "",
        content=row.content or "",
        link=row.link,
        guid=row.guid,
        published=row.published_at,
        tags=tuple(json.loads(row.tags)) if row.tags else (),
        lang=row.lang,
        feed_url=row.feed_url,
        feed_name=row.feed_name or "",
    )
