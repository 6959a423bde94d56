"""Queuing events that are not alerts (alert rows are written by `Store.record_poll`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.events import envelope, new_event_id
from monitor.store.engine import begin
from monitor.store.outbox.states import PENDING
from monitor.store.tables import deliveries


class Queue:
    """The outbox's way in for events other than alerts (part of `Outbox`)."""

    engine: Engine

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
