"""WebSub subscriptions in the store (`websub_subscriptions`, one row per feed).

The protocol lives in monitor.feeds.websub; these are its queries. A row's life:

    requested ── hub verifies (GET, our challenge echoed) ──> verified ── 80 % of lease ──> renewed
        │  └─ hub says hub.mode=denied ──> denied          │   (same token and secret; stays
        └─ hub answers the request with an error ──> failed │    verified while the hub re-verifies)
                                                            └─ lease ends unrenewed ──> expired
    feed removed or `websub: false` ──> unsubscribing ── hub verifies ──> row deleted

`next_action_at` is when the daemon looks at a row again: renew a verified one, or try a
failed, denied or expired one again; None while nothing is due.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.store.engine import begin
from monitor.store.tables import feeds, websub_subscriptions

REQUESTED = "requested"
VERIFIED = "verified"
DENIED = "denied"
EXPIRED = "expired"
FAILED = "failed"
UNSUBSCRIBING = "unsubscribing"
LIVE = (REQUESTED, VERIFIED)  # the hub may push to these

subs = websub_subscriptions


@dataclass(frozen=True, slots=True)
class Subscription:
    feed_id: int
    feed_url: str
    feed_active: bool
    hub: str
    topic: str
    token: str
    callback: str
    secret: str
    state: str
    lease_seconds: int | None
    requested_at: datetime
    verified_at: datetime | None
    expires_at: datetime | None
    next_action_at: datetime | None
    last_push_at: datetime | None
    pushes: int
    last_error: str | None


def _select() -> sa.Select[tuple[object, ...]]:
    columns = (subs, feeds.c.url.label("feed_url"), feeds.c.active.label("feed_active"))
    return sa.select(*columns).join(feeds, feeds.c.id == subs.c.feed_id)


def _rows(engine: Engine, query: sa.Select[tuple[object, ...]]) -> list[Subscription]:
    with engine.connect() as db:
        return [_subscription(row) for row in db.execute(query)]


def _subscription(row: sa.Row[tuple[object, ...]]) -> Subscription:
    values = row._mapping
    return Subscription(**{name: values[name] for name in Subscription.__slots__})


def for_feed(engine: Engine, feed_id: int) -> Subscription | None:
    found = _rows(engine, _select().where(subs.c.feed_id == feed_id))
    return found[0] if found else None


def by_token(engine: Engine, token: str) -> Subscription | None:
    found = _rows(engine, _select().where(subs.c.token == token))
    return found[0] if found else None


def every(engine: Engine) -> list[Subscription]:
    return _rows(engine, _select().order_by(subs.c.feed_id))


def due(engine: Engine, now: datetime) -> list[Subscription]:
    """Rows whose next action has come, and live rows whose feed left the config."""
    return _rows(
        engine,
        _select().where(
            sa.or_(
                subs.c.next_action_at <= now,
                sa.and_(subs.c.state.in_(LIVE), feeds.c.active.is_(False)),
            )
        ),
    )


def live_for(engine: Engine, urls: Collection[str]) -> list[Subscription]:
    """Live subscriptions of these feeds (e.g. feeds set to `websub: false`)."""
    if not urls:
        return []
    return _rows(engine, _select().where(subs.c.state.in_(LIVE), feeds.c.url.in_(list(urls))))


def save_request(
    engine: Engine,
    feed_id: int,
    *,
    hub: str,
    topic: str,
    token: str,
    callback: str,
    secret: str,
    now: datetime,
    verify_by: datetime,
) -> None:
    """A new subscription request (replacing the feed's previous one, if any), before it is sent:
    a hub may verify before it answers the request. `verify_by`: when it counts as failed if
    the hub has not verified it (written with the row, so no crash leaves it waiting forever)."""
    with begin(engine) as db:
        db.execute(sa.delete(subs).where(subs.c.feed_id == feed_id))
        db.execute(
            sa.insert(subs).values(
                feed_id=feed_id,
                hub=hub,
                topic=topic,
                token=token,
                callback=callback,
                secret=secret,
                state=REQUESTED,
                requested_at=now,
                next_action_at=verify_by,
                pushes=0,
            )
        )


def update(
    engine: Engine,
    token: str,
    *,
    states: Sequence[str] | None = None,
    **values: object,
) -> bool:
    """Set columns of the row with this token, only while its state is one of `states`."""
    query = sa.update(subs).where(subs.c.token == token)
    if states is not None:
        query = query.where(subs.c.state.in_(list(states)))
    if "last_error" in values and isinstance(values["last_error"], str):
        values["last_error"] = values["last_error"][:2000]
    with begin(engine) as db:
        return bool(db.execute(query.values(**values)).rowcount)


def count_push(engine: Engine, token: str, now: datetime) -> None:
    with begin(engine) as db:
        db.execute(
            sa.update(subs)
            .where(subs.c.token == token)
            .values(last_push_at=now, pushes=subs.c.pushes + 1)
        )


def delete(engine: Engine, token: str) -> bool:
    with begin(engine) as db:
        return bool(db.execute(sa.delete(subs).where(subs.c.token == token)).rowcount)
