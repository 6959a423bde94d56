"""Mutes (`monitor mute`): a rule, a feed or a story muted until a time.

An alert raised while what it belongs to is muted is recorded as usual, with its deliveries in
state `muted`: never sent, listed by `monitor alerts`, sent by `monitor replay` if wanted. A
mute ends at its time or with `monitor unmute`; it changes nothing already queued.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.http.urls import shown_url
from monitor.store.engine import begin
from monitor.store.tables import alerts, items, mutes

MuteKind = Literal["rule", "feed", "story"]
KINDS: tuple[MuteKind, ...] = ("rule", "feed", "story")


@dataclass(frozen=True, slots=True)
class MutedStory:
    title: str
    summary: str
    lang: str | None


@dataclass(frozen=True, slots=True)
class Mute:
    id: int
    kind: MuteKind
    target: str  # the rule id, the feed URL, or the id of the alert whose story it is
    until: datetime
    created_at: datetime
    reason: str | None = None
    story: MutedStory | None = None

    def describe(self) -> str:
        """`rule havana-visits`, `feed https://…`, `story of alrt_…`."""
        if self.kind == "feed":
            return f"feed {shown_url(self.target)}"  # its credentials, if any, masked
        return f"story of {self.target}" if self.kind == "story" else f"{self.kind} {self.target}"


def add(
    engine: Engine,
    kind: MuteKind,
    target: str,
    *,
    now: datetime,
    until: datetime,
    reason: str | None = None,
    story: MutedStory | None = None,
) -> Mute:
    text = None if story is None else json.dumps([story.title, story.summary, story.lang])
    with begin(engine) as db:
        new_id = db.execute(
            sa.insert(mutes)
            .values(
                kind=kind,
                target=target,
                story=text,
                reason=reason,
                created_at=now,
                until=until,
            )
            .returning(mutes.c.id)
        ).scalar_one()
    return Mute(int(new_id), kind, target, until, now, reason, story)


def active(engine: Engine, now: datetime) -> list[Mute]:
    """The mutes in force at `now`, oldest first."""
    query = (
        sa.select(mutes)
        .where(mutes.c.until > now, mutes.c.lifted_at.is_(None))
        .order_by(mutes.c.id)
    )
    with engine.connect() as db:
        return [_mute(row) for row in db.execute(query)]


def lift(engine: Engine, ids: Sequence[int], now: datetime) -> list[int]:
    """End these mutes now (`monitor unmute`); the ids that were in force."""
    with begin(engine) as db:
        lifted = db.execute(
            sa.update(mutes)
            .where(mutes.c.id.in_(list(ids)), mutes.c.until > now, mutes.c.lifted_at.is_(None))
            .values(lifted_at=now)
            .returning(mutes.c.id)
        )
        return sorted(int(row[0]) for row in lifted)


def story_of(engine: Engine, alert_id: str) -> MutedStory | None:
    """The title, summary and language of the item an alert was raised for."""
    query = (
        sa.select(items.c.title, items.c.summary, items.c.lang)
        .join(alerts, alerts.c.item_id == items.c.id)
        .where(alerts.c.id == alert_id)
    )
    with engine.connect() as db:
        row = db.execute(query).first()
    return None if row is None else MutedStory(row.title or "", row.summary or "", row.lang)


def _mute(row: sa.Row[tuple[object, ...]]) -> Mute:
    story = None
    if row.story:
        title, summary, lang = json.loads(str(row.story))
        story = MutedStory(title or "", summary or "", lang)
    kind = str(row.kind)
    assert kind in KINDS, kind
    return Mute(
        id=int(row.id),
        kind=kind,
        target=str(row.target),
        until=row.until,
        created_at=row.created_at,
        reason=None if row.reason is None else str(row.reason),
        story=story,
    )
