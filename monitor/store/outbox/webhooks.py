"""The state of each webhook: disabled after a 410 Gone (for every process on the store) until
enabled by hand or given a new URL; with its deliveries counted by state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from monitor.store.engine import begin
from monitor.store.tables import deliveries, webhook_states


@dataclass(frozen=True, slots=True)
class WebhookState:
    name: str
    disabled_at: datetime | None
    disabled_reason: str | None
    url_digest: str | None
    counts: Mapping[str, int]


class WebhookStates:
    """Disabling and enabling webhooks (part of `Outbox`)."""

    engine: Engine

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
