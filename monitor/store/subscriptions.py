"""WebSub subscriptions in the store (`websub_subscriptions`, one row per feed).

The protocol lives in monitor.feeds.websub (the wire) and monitor.pipeline.websub (when to ask,
what a push does); these are its queries. A row's life:

    requested ── hub verifies (GET, our challenge echoed) ──> verified ── 80 % of lease ──> renewed
        │  └─ hub says hub.mode=denied ──> denied          │   (same token and secret; stays
        └─ hub answers the request with an error ──> failed │    verified while the hub re-verifies)
                                                            └─ lease ends unrenewed ──> expired
    feed removed or `websub: false` ──> unsubscribing ── hub verifies ──> row deleted

`next_action_at` is when the daemon looks at a row again: renew a verified one, or try a
failed, denied or expired one again; None while nothing is due.

Replicas sharing the database act on a due row one at a time: `claim_due` leases it to one owner
(`claimed_by`, `lease_until`; FOR UPDATE SKIP LOCKED on PostgreSQL, as feeds and deliveries are
claimed), `release` gives it back. A claim ends early when its owner's heartbeat row in `replicas`
has expired (the test monitor.store.replicas uses to free a dead replica's feeds and deliveries),
else when its lease does. A request replaces only the row it was decided on (`save_request`'s
`replacing`), so two daemons that decide at once to subscribe a feed send one request, not two.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.store.engine import begin, lease_free
from monitor.store.store import FeedState
from monitor.store.tables import feeds, replicas, websub_subscriptions
from monitor.store.upsert import conflict_insert

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


def for_push(engine: Engine, token: str) -> tuple[Subscription, FeedState] | None:
    """The subscription with this callback token and its feed, in one read (by the unique
    token's index): what a push needs before its body is read."""
    query = sa.select(subs, feeds).join(feeds, feeds.c.id == subs.c.feed_id)
    with engine.connect() as db:
        row = db.execute(query.where(subs.c.token == token)).first()
    if row is None:
        return None
    values = row._mapping
    feed = FeedState(**{f.name: values[feeds.c[f.name]] for f in fields(FeedState)})
    found = {f.name: values[subs.c[f.name]] for f in fields(Subscription) if f.name in subs.c}
    sub = Subscription(**found, feed_url=feed.url, feed_active=values[feeds.c.active])
    return sub, feed


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


def claim_due(
    engine: Engine,
    now: datetime,
    *,
    owner: str,
    lease: timedelta,
    opted_out: Collection[str] = (),
    limit: int = 100,
) -> list[Subscription]:
    """Lease to `owner` the rows due now (see `due`) and the live rows of `opted_out` feeds
    that no one else holds, soonest due first; the rows taken."""
    wanted = sa.or_(
        subs.c.next_action_at <= now,
        sa.and_(subs.c.state.in_(LIVE), feeds.c.active.is_(False)),
        sa.and_(subs.c.state.in_(LIVE), feeds.c.url.in_(list(opted_out))),
    )
    query = (
        sa.select(subs.c.token)
        .join(feeds, feeds.c.id == subs.c.feed_id)
        .where(wanted, _claim_free(now))
        .order_by(subs.c.next_action_at)
        .limit(limit)
        # PostgreSQL: replicas claiming at once take disjoint rows; only subscription rows are
        # locked (a feed row may be held by a poll's claim). SQLite has one writer.
        .with_for_update(skip_locked=True, of=subs)
    )
    with begin(engine) as db:
        tokens = list(db.scalars(query).all())
        if not tokens:
            return []
        # the claim is checked again: on SQLite another writer may have claimed since our read
        taken = db.scalars(
            sa.update(subs)
            .where(subs.c.token.in_(tokens), _claim_free(now))
            .values(claimed_by=owner, lease_until=now + lease)
            .returning(subs.c.token)
        ).all()
    if not taken:
        return []
    claimed = _select().where(subs.c.token.in_(list(taken))).order_by(subs.c.next_action_at)
    return _rows(engine, claimed)


def _claim_free(now: datetime) -> sa.ColumnElement[bool]:
    """Not held: never claimed, lease ended, or held by a replica whose heartbeat stopped."""
    dead = sa.select(replicas.c.id).where(replicas.c.expires_at < now)
    return sa.or_(
        lease_free(subs.c.lease_until, now), subs.c.claimed_by.in_(dead.scalar_subquery())
    )


def release(engine: Engine, tokens: Collection[str], owner: str) -> None:
    """Give back the claims `owner` holds on these rows (`claimed_by` stays: who acted last)."""
    if not tokens:
        return
    with begin(engine) as db:
        db.execute(
            sa.update(subs)
            .where(subs.c.token.in_(list(tokens)), subs.c.claimed_by == owner)
            .values(lease_until=None)
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
    replacing: str | None,
) -> bool:
    """A new subscription request, before it is sent: a hub may verify before it answers the
    request. `verify_by`: when it counts as failed if the hub has not verified it (written with
    the row, so no crash leaves it waiting forever).

    `replacing` is the token of the feed's row the request was decided on (None: there was
    none). Only that row is replaced: False, and nothing written, when the feed's row is another
    by now (another replica, or this one's timer, asked first), so the request is not sent twice.
    """
    with begin(engine) as db:
        if replacing is not None:
            db.execute(sa.delete(subs).where(subs.c.feed_id == feed_id, subs.c.token == replacing))
        inserted = db.execute(
            conflict_insert(engine.dialect.name, subs)
            .values(
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
            .on_conflict_do_nothing()  # the feed's row (primary key) is someone else's now
            .returning(subs.c.token)  # rowcount is -1 here on psycopg
        )
        return inserted.first() is not None


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
