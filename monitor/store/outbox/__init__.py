"""The outbox: deliveries due, claimed with a lease, their attempts and states.

Alert rows are written by `Store.record_poll` in the transaction that records an item as seen;
other events (`feed.unhealthy`, digests, …) by `Outbox.enqueue_event`. From then on this package
owns them: claim what is due (recording who claimed it), record each attempt, release the claims
of a process that died (claims), requeue failed deliveries and orphan those of removed webhooks
(requeue), keep the state of each webhook, disabled after a 410 (webhooks), and list them
(listing). `Outbox` is all of these over one engine.

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

from sqlalchemy.engine import Engine

from monitor.store.outbox.claims import AttemptRecord, Claims, DueDelivery
from monitor.store.outbox.listing import (
    AlertListing,
    AlertRow,
    AlertSummary,
    DeliveryRow,
    Listing,
)
from monitor.store.outbox.queue import Queue
from monitor.store.outbox.requeue import Requeue
from monitor.store.outbox.states import (
    ALERT_CREATED,
    DELIVERED,
    DIGEST_EVENT,
    DIGESTED,
    FAILED,
    HELD,
    MUTED,
    ORPHANED,
    PENDING,
    STATES,
)
from monitor.store.outbox.webhooks import WebhookState, WebhookStates
from monitor.store.writes import WriteStatus

__all__ = [
    "ALERT_CREATED",
    "DELIVERED",
    "DIGESTED",
    "DIGEST_EVENT",
    "FAILED",
    "HELD",
    "MUTED",
    "ORPHANED",
    "PENDING",
    "STATES",
    "AlertRow",
    "AlertSummary",
    "AttemptRecord",
    "DeliveryRow",
    "DueDelivery",
    "Outbox",
    "WebhookState",
]


class Outbox(Queue, Claims, Requeue, WebhookStates, Listing, AlertListing):
    """Deliveries: one row per (event, webhook), `pending` until `delivered` or `failed`."""

    def __init__(self, engine: Engine, writes: WriteStatus | None = None) -> None:
        self.engine = engine
        # how recording attempts fares, for /healthz (the store's, shared with its poll writer)
        self.writes = writes or WriteStatus()
