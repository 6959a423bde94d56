"""The outbox: deliveries due, claimed with a lease, their attempts and states.

Alert rows are written by `Store.record_poll` in the transaction that records an item as seen;
other events (`feed.unhealthy`, digests, …) by `Outbox.enqueue_event`. From then on this module
owns them: claim what is due (recording who claimed it), record each attempt, release the claims
of a process that died, requeue failed deliveries, keep the state of each webhook (disabled after
a 410) and answer what is next.

A row is one event for one webhook. `event` is its type (`alert.created` unless said otherwise);
`message_id` the `webhook-id` it is sent with, the same on every attempt (null: the alert's id);
`payload` the body (null: the alert's stored `alert.created`); `alert_id` is null for events that
belong to no one alert. States: `pending` (due at `next_attempt_at`), `delivered`, `failed`
(retries spent), `held` (kept for a digest or until quiet hours end, released at
`next_attempt_at`: neither sent nor lost), `digested` (sent inside the digest `digest_id`;
`delivered` once that digest is) and `orphaned` (its webhook was removed from the config while
it was pending or held; `next_attempt_at` is when that was noticed; kept, listed, replayable).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.events import envelope, new_event_id
from monitor.store.engine import begin, lease_free
from monitor.store.tables import alerts, deliveries, delivery_attempts, items, webhook_states

PENDING, DELIVERED, FAILED, HELD, DIGESTED = "pending", "delivered", "failed", "held", "digested"
ORPHANED = "orphaned"
STATES = (PENDING, DELIVERED, FAILED, HELD, DIGESTED, ORPHANED)
ALERT_CREATED = "alert.created"
DIGEST_EVENT = "alert.digest"


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """One claimed delivery: what to send (`payload`), as which `webhook-id`, to which webhook."""

    id: int
    alert_id: str | None
    webhook: str
    attempts: int
    payload: str
    message_id: str | None = None
    event: str = ALERT_CREATED
    reply_to: str | None = None  # the target's id of the message an update may edit

    @property
    def webhook_id(self) -> str:
        """The `webhook-id` of every attempt: the event's own id, else the alert's."""
        return self.message_id or self.alert_id or f"delivery_{self.id}"


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """The outcome of one delivery attempt, as the store keeps it."""

    outcome: str  # delivered | transient | permanent | gone
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class AlertRow:
    alert_id: str
    rule_id: str
    webhook: str | None
    state: str | None
    attempts: int
    created_at: datetime
    title: str
    last_error: str | None
    severity: str = ""
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WebhookState:
    name: str
    disabled_at: datetime | None
    disabled_reason: str | None
    url_digest: str | None
    counts: Mapping[str, int]


class Outbox:
    """Deliveries: one row per (alert, webhook), `pending` until `delivered` or `failed`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # claiming ------------------------------------------------------------------------------

    def enqueue_event(
        self,
        event_type: str,
        data: Mapping[str, object],
        webhooks: Iterable[str],
        now: datetime,
        *,
        db: Connection | None = None,
        event_id: str | None = None,
    ) -> str:
        """Queue one event that is not an alert (`feed.unhealthy`, …) for each of `webhooks`.

        The body is `{"type": event_type, "timestamp": now, "data": data}`, sent with
        `webhook-id` = the returned id (`evt_…`, or `event_id`) on every attempt and retried like
        an alert. Pick the webhooks with `WebhookConfig.wants_event(event_type)`. With `db` (a
        connection inside the caller's transaction) the rows are written in that transaction,
        atomically with whatever else it writes; without it, in a transaction of their own.
        Queuing an id twice for a webhook is ignored (the first one stands).
        """
        message_id = event_id or new_event_id(now=now)
        payload = json.dumps(envelope(event_type, data, now), ensure_ascii=False, sort_keys=True)
        rows: list[dict[str, object]] = [
            {
                "alert_id": None,
                "webhook": name,
                "state": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "event": event_type,
                "message_id": message_id,
                "payload": payload,
                "routed_at": now,
            }
            for name in dict.fromkeys(webhooks)
        ]
        if not rows:
            return message_id
        if db is not None:
            _insert_new(db, rows)
        else:
            with begin(self.engine) as own:
                _insert_new(own, rows)
        return message_id

    def claim_deliveries(
        self,
        now: datetime,
        lease: timedelta,
        webhooks: Iterable[str] | Mapping[str, int],
        limit: int = 100,
        *,
        owner: str | None = None,
        routed_only: Collection[str] = (),
    ) -> list[DueDelivery]:
        """Lease due deliveries: up to `limit` in all, or per webhook when given a mapping.

        For the webhooks in `routed_only` (those with groups, digests or quiet hours) only rows
        already routed (monitor.delivery.noise) are taken."""
        wanted = dict(webhooks) if isinstance(webhooks, Mapping) else dict.fromkeys(webhooks, limit)
        wanted = {name: count for name, count in wanted.items() if count > 0}
        if not wanted:
            return []
        routed = set(routed_only)
        with begin(self.engine) as db:
            if isinstance(webhooks, Mapping):
                ids = [
                    i
                    for name, count in wanted.items()
                    for i in db.scalars(self._due([name], now, name in routed).limit(count)).all()
                ]
            else:
                plain = [name for name in wanted if name not in routed]
                ids = list(db.scalars(self._due(plain, now).limit(limit)).all()) if plain else []
                ids += [
                    i
                    for name in wanted
                    if name in routed
                    for i in db.scalars(self._due([name], now, True).limit(limit)).all()
                ][: max(limit - len(ids), 0)]
            if not ids:
                return []
            # the lease check is repeated: on SQLite another writer may have leased since our read
            taken = set(
                db.scalars(
                    sa.update(deliveries)
                    .where(
                        deliveries.c.id.in_(ids),
                        deliveries.c.state == PENDING,
                        lease_free(deliveries.c.lease_until, now),
                    )
                    .values(lease_until=now + lease, claimed_by=owner)
                    .returning(deliveries.c.id)
                ).all()
            )
            first = deliveries.alias("first")  # a group's first delivery: what an update edits
            rows = {
                row.id: row
                for row in db.execute(
                    sa.select(
                        deliveries.c.id,
                        deliveries.c.alert_id,
                        deliveries.c.webhook,
                        deliveries.c.attempts,
                        deliveries.c.message_id,
                        deliveries.c.event,
                        sa.func.coalesce(deliveries.c.payload, alerts.c.payload).label("body"),
                        first.c.remote_id.label("reply_to"),
                    )
                    .outerjoin(alerts, alerts.c.id == deliveries.c.alert_id)
                    .outerjoin(
                        first,
                        sa.and_(
                            deliveries.c.group_id.is_not(None),
                            first.c.alert_id == deliveries.c.group_id,
                            first.c.webhook == deliveries.c.webhook,
                            first.c.id != deliveries.c.id,
                        ),
                    )
                    .where(deliveries.c.id.in_(taken))
                )
            }
            return [
                DueDelivery(
                    row.id,
                    row.alert_id,
                    row.webhook,
                    row.attempts,
                    row.body or "{}",
                    row.message_id,
                    row.event,
                    row.reply_to,
                )
                for row in (rows[i] for i in ids if i in rows)
            ]

    @staticmethod
    def _due(names: list[str], now: datetime, routed: bool = False) -> sa.Select[tuple[int]]:
        query = (
            sa.select(deliveries.c.id)
            .where(
                deliveries.c.state == PENDING,
                deliveries.c.next_attempt_at <= now,
                deliveries.c.webhook.in_(names),
                lease_free(deliveries.c.lease_until, now),
            )
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            # PostgreSQL: replicas claiming together take disjoint rows (SQLite ignores it)
            .with_for_update(skip_locked=True)
        )
        return query.where(deliveries.c.routed_at.is_not(None)) if routed else query

    def leases_held(self, now: datetime, webhooks: Iterable[str]) -> dict[str, int]:
        """Owners holding unexpired leases on pending deliveries of `webhooks`, with counts."""
        names = list(webhooks)
        if not names:
            return {}
        query = (
            sa.select(deliveries.c.claimed_by, sa.func.count())
            .where(
                deliveries.c.state == PENDING,
                deliveries.c.webhook.in_(names),
                deliveries.c.lease_until >= now,
                deliveries.c.claimed_by.is_not(None),
            )
            .group_by(deliveries.c.claimed_by)
        )
        with self.engine.connect() as db:
            return {str(owner): int(count) for owner, count in db.execute(query)}

    def release(self, owner: str, delivery_ids: Sequence[int] | None = None) -> int:
        """End the leases `owner` holds (all, or those of `delivery_ids`): the work is due again."""
        query = sa.update(deliveries).where(
            deliveries.c.claimed_by == owner, deliveries.c.state == PENDING
        )
        if delivery_ids is not None:
            query = query.where(deliveries.c.id.in_(list(delivery_ids)))
        with begin(self.engine) as db:
            return int(db.execute(query.values(lease_until=None, claimed_by=None)).rowcount)

    def record_attempt(
        self,
        delivery_id: int,
        now: datetime,
        attempt: AttemptRecord,
        *,
        state: str,
        next_attempt_at: datetime | None,
        remote_id: str | None = None,
        owner: str | None = None,
        counted: bool = True,
    ) -> bool:
        """Record one attempt and the delivery's new state; `remote_id` is the target's id of
        the message sent (kept, so later updates of its story can edit it). A digest delivered
        marks the deliveries it carried delivered too. `counted=False` (a rate limit) leaves
        the retry budget (`attempts`) as it was.

        The state changes only if the row is still as it was claimed: `pending` and claimed by
        `owner`. An outcome arriving after the claim ended (the lease ran out and another
        process claimed it, it was routed again, released, replayed) is kept in the attempts'
        history only, and False returned: the row belongs to whoever holds it now."""
        with begin(self.engine) as db:
            db.execute(
                sa.insert(delivery_attempts).values(
                    delivery_id=delivery_id,
                    attempted_at=now,
                    status_code=attempt.status_code,
                    outcome=attempt.outcome,
                    error=attempt.error,
                    duration_ms=attempt.duration_ms,
                )
            )
            changed = db.execute(
                sa.update(deliveries)
                .where(
                    deliveries.c.id == delivery_id,
                    deliveries.c.state == PENDING,
                    deliveries.c.claimed_by.is_not_distinct_from(owner),
                )
                .values(
                    state=state,
                    attempts=deliveries.c.attempts + (1 if counted else 0),
                    next_attempt_at=next_attempt_at,
                    lease_until=None,
                    claimed_by=None,
                    last_error=attempt.error,
                    delivered_at=now if state == DELIVERED else None,
                    **({"remote_id": remote_id[:100]} if remote_id else {}),
                )
            ).rowcount
            if not changed:
                return False
            if state == DELIVERED:
                carrier = (
                    sa.select(deliveries.c.webhook, deliveries.c.message_id, deliveries.c.event)
                    .where(deliveries.c.id == delivery_id)
                    .subquery()
                )
                row = db.execute(sa.select(carrier)).first()
                if row is not None and row.event == DIGEST_EVENT and row.message_id:
                    db.execute(
                        sa.update(deliveries)
                        .where(
                            deliveries.c.webhook == row.webhook,
                            deliveries.c.digest_id == row.message_id,
                            deliveries.c.state == DIGESTED,
                        )
                        .values(state=DELIVERED, delivered_at=now)
                    )
        return True

    def rate_limited_since(self, delivery_id: int) -> datetime | None:
        """When the delivery's latest run of 429 answers began (None: its last attempt was not
        a 429): a rate limit costs no retry, for a while (monitor.delivery.dispatcher)."""
        made = delivery_attempts.c
        with self.engine.connect() as db:
            other = db.scalar(
                sa.select(sa.func.max(made.attempted_at)).where(
                    made.delivery_id == delivery_id,
                    made.status_code.is_distinct_from(429),
                )
            )
            query = sa.select(sa.func.min(made.attempted_at)).where(
                made.delivery_id == delivery_id, made.status_code == 429
            )
            if other is not None:
                query = query.where(made.attempted_at > other)
            value = db.scalar(query)
            return value if isinstance(value, datetime) else None

    def next_delivery_at(self, webhooks: Iterable[str]) -> datetime | None:
        times = [t for t in self.next_delivery_times(webhooks).values() if t is not None]
        return min(times, default=None)

    def next_delivery_times(self, webhooks: Iterable[str]) -> dict[str, datetime]:
        """Per webhook, when its next pending delivery may be claimed (due and lease ended), or
        its next held one released (a digest window or quiet hours ending)."""
        names = list(webhooks)
        if not names:
            return {}
        ready = sa.case(
            (
                sa.and_(
                    deliveries.c.lease_until.is_not(None),
                    deliveries.c.lease_until > deliveries.c.next_attempt_at,
                ),
                deliveries.c.lease_until,
            ),
            else_=deliveries.c.next_attempt_at,
        )
        query = (
            sa.select(deliveries.c.webhook, sa.func.min(ready))
            .where(deliveries.c.state.in_((PENDING, HELD)), deliveries.c.webhook.in_(names))
            .group_by(deliveries.c.webhook)
        )
        with self.engine.connect() as db:
            result: dict[str, datetime] = {}
            for name, value in db.execute(query):
                if isinstance(value, datetime):  # UTCDateTime: the CASE keeps the column type
                    result[str(name)] = value
            return result

    # webhooks removed from the config --------------------------------------------------------

    def orphan(self, configured: Collection[str], now: datetime) -> dict[str, int]:
        """Mark `orphaned` the pending and held deliveries (not in flight) of every webhook not
        in `configured`; per webhook, how many. Nothing is deleted."""
        query = (
            sa.update(deliveries)
            .where(
                deliveries.c.state.in_((PENDING, HELD)),
                deliveries.c.webhook.not_in(list(configured)),
                lease_free(deliveries.c.lease_until, now),
            )
            .values(
                state=ORPHANED,
                next_attempt_at=now,
                lease_until=None,
                claimed_by=None,
                last_error=f"orphaned: its webhook is not in the config "
                f"(since {now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}); put it back, then replay",
            )
            .returning(deliveries.c.webhook)
        )
        with begin(self.engine) as db:
            counts: dict[str, int] = {}
            for name in db.scalars(query):
                counts[name] = counts.get(name, 0) + 1
            return counts

    def revive_orphans(
        self, webhooks: Collection[str], since: datetime, now: datetime
    ) -> dict[str, int]:
        """Make due again the deliveries of `webhooks` orphaned at or after `since` (by a
        process whose config lacked a webhook this one has); per webhook, how many."""
        names = list(webhooks)
        if not names:
            return {}
        recent = sa.and_(
            deliveries.c.state == ORPHANED,
            deliveries.c.next_attempt_at >= since,
            deliveries.c.webhook.in_(names),
        )
        with self.engine.connect() as db:  # a read first: nearly always there is nothing
            if db.scalar(sa.select(deliveries.c.id).where(recent).limit(1)) is None:
                return {}
        with begin(self.engine) as db:
            counts: dict[str, int] = {}
            for name in db.scalars(
                sa.update(deliveries)
                .where(recent)
                .values(state=PENDING, next_attempt_at=now, last_error=None)
                .returning(deliveries.c.webhook)
            ):
                counts[name] = counts.get(name, 0) + 1
            return counts

    # requeue -------------------------------------------------------------------------------

    def requeue(
        self,
        now: datetime,
        *,
        alert_ids: Sequence[str] = (),
        failed: bool = False,
        webhook: str | None = None,
    ) -> int:
        """Make deliveries due now with a fresh retry budget: of `alert_ids` (any state but
        in flight), or every `failed` one; only to `webhook` when given. Returns how many."""
        query = sa.update(deliveries).where(lease_free(deliveries.c.lease_until, now))
        if failed:
            query = query.where(deliveries.c.state == FAILED)
        if alert_ids:
            query = query.where(
                sa.or_(
                    deliveries.c.alert_id.in_(list(alert_ids)),
                    deliveries.c.message_id.in_(list(alert_ids)),  # digests, feed events
                )
            )
        elif not failed:
            return 0
        if webhook is not None:
            query = query.where(deliveries.c.webhook == webhook)
        with begin(self.engine) as db:
            result = db.execute(
                query.values(
                    state=PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    delivered_at=None,
                    lease_until=None,
                    claimed_by=None,
                )
            )
            return int(result.rowcount)

    def known_alerts(self, alert_ids: Sequence[str]) -> set[str]:
        """Which of `alert_ids` name an alert, or an event in the outbox (digest, feed event)."""
        ids = list(alert_ids)
        with self.engine.connect() as db:
            known = set(db.scalars(sa.select(alerts.c.id).where(alerts.c.id.in_(ids))))
            return known | {
                str(i)
                for i in db.scalars(
                    sa.select(deliveries.c.message_id).where(deliveries.c.message_id.in_(ids))
                )
            }

    # webhook states ------------------------------------------------------------------------

    def disable_webhook(self, name: str, now: datetime, reason: str, url_digest: str) -> None:
        values = {"disabled_at": now, "disabled_reason": reason[:2000], "url_digest": url_digest}
        with begin(self.engine) as db:
            done = db.execute(
                sa.update(webhook_states)
                .where(webhook_states.c.name == name)
                .values(updated_at=now, **values)
            )
            if done.rowcount == 0:
                db.execute(sa.insert(webhook_states).values(name=name, updated_at=now, **values))

    def enable_webhook(self, name: str, now: datetime) -> bool:
        """Re-enable a disabled webhook; False when it was not disabled."""
        with begin(self.engine) as db:
            done = db.execute(
                sa.update(webhook_states)
                .where(webhook_states.c.name == name, webhook_states.c.disabled_at.is_not(None))
                .values(disabled_at=None, disabled_reason=None, url_digest=None, updated_at=now)
            )
            return bool(done.rowcount)

    def disabled_webhooks(self) -> dict[str, tuple[str | None, str | None]]:
        """Disabled webhooks: name -> (reason, digest of the URL that was disabled)."""
        with self.engine.connect() as db:
            rows = db.execute(
                sa.select(
                    webhook_states.c.name,
                    webhook_states.c.disabled_reason,
                    webhook_states.c.url_digest,
                ).where(webhook_states.c.disabled_at.is_not(None))
            )
            return {row.name: (row.disabled_reason, row.url_digest) for row in rows}

    def webhook_states(self) -> dict[str, WebhookState]:
        """Every webhook the store knows (by state row or deliveries), with delivery counts."""
        with self.engine.connect() as db:
            counts: dict[str, dict[str, int]] = {}
            for name, state, count in db.execute(
                sa.select(deliveries.c.webhook, deliveries.c.state, sa.func.count()).group_by(
                    deliveries.c.webhook, deliveries.c.state
                )
            ):
                counts.setdefault(name, {})[state] = int(count)
            result = {
                name: WebhookState(name, None, None, None, by_state)
                for name, by_state in counts.items()
            }
            for row in db.execute(sa.select(webhook_states)):
                result[row.name] = WebhookState(
                    row.name,
                    row.disabled_at,
                    row.disabled_reason,
                    row.url_digest,
                    counts.get(row.name, {}),
                )
            return result

    # listing -------------------------------------------------------------------------------

    def recent_alerts(
        self, limit: int = 50, *, rule_id: str | None = None, state: str | None = None
    ) -> list[AlertRow]:
        """The latest alerts, one row per (alert, webhook); `attempts` counts every attempt."""
        made = (
            sa.select(sa.func.count())
            .where(delivery_attempts.c.delivery_id == deliveries.c.id)
            .scalar_subquery()
        )
        query = (
            sa.select(
                alerts.c.id,
                alerts.c.rule_id,
                alerts.c.severity,
                alerts.c.created_at,
                items.c.title,
                deliveries.c.webhook,
                deliveries.c.state,
                made.label("made"),
                deliveries.c.last_error,
                deliveries.c.next_attempt_at,
                deliveries.c.delivered_at,
            )
            .join(items, items.c.id == alerts.c.item_id)
            .outerjoin(deliveries, deliveries.c.alert_id == alerts.c.id)
            .order_by(alerts.c.created_at.desc(), alerts.c.id.desc(), deliveries.c.webhook)
            .limit(limit)
        )
        if rule_id is not None:
            query = query.where(alerts.c.rule_id == rule_id)
        if state is not None:
            query = query.where(deliveries.c.state == state)
        with self.engine.connect() as db:
            return [
                AlertRow(
                    row.id,
                    row.rule_id,
                    row.webhook,
                    row.state,
                    int(row.made or 0),
                    row.created_at,
                    row.title,
                    row.last_error,
                    row.severity,
                    row.next_attempt_at if row.state in (PENDING, HELD) else None,
                    row.delivered_at,
                )
                for row in db.execute(query)
            ]

    def delivery_counts(self) -> dict[str, int]:
        with self.engine.connect() as db:
            rows = db.execute(
                sa.select(deliveries.c.state, sa.func.count()).group_by(deliveries.c.state)
            )
            return {state: int(count) for state, count in rows}


def _insert_new(db: Connection, rows: Sequence[dict[str, object]]) -> None:
    """Insert outbox rows, skipping any whose (message_id, webhook) is already queued."""
    known = {
        (message_id, webhook)
        for message_id, webhook in db.execute(
            sa.select(deliveries.c.message_id, deliveries.c.webhook).where(
                deliveries.c.message_id.in_({str(row["message_id"]) for row in rows})
            )
        )
    }
    fresh = [row for row in rows if (row["message_id"], row["webhook"]) not in known]
    if fresh:
        db.execute(sa.insert(deliveries), fresh)
