"""The states of an outbox row and the event types the store itself knows."""

from __future__ import annotations

PENDING, DELIVERED, FAILED, HELD, DIGESTED = "pending", "delivered", "failed", "held", "digested"
ORPHANED = "orphaned"
MUTED = "muted"  # recorded while its rule, feed or story was muted (`monitor mute`); never sent
STATES = (PENDING, DELIVERED, FAILED, HELD, DIGESTED, ORPHANED, MUTED)
ALERT_CREATED = "alert.created"
DIGEST_EVENT = "alert.digest"
