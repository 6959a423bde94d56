"""What a dispatcher settles with the other processes sharing its store before it claims.

- Claims of dead processes: claims carry the claiming process (monitor.store.owners); those of
  dead processes on this machine are released, so a `run --once` after a crash delivers at once.
  Claims of processes elsewhere end with their lease.
- Webhooks removed from the config: their undelivered deliveries become `orphaned` (kept,
  listed, replayable), once per config; those orphaned lately by a replica on an older config,
  for a webhook this config has, are made due again.
- Webhooks routed elsewhere: replicas must share webhook settings. A webhook plain here (no
  group, digest or quiet hours) that another process routes is left to that process, so a
  story is not told twice, once grouped and once not.
- Disabled webhooks: a 410 disables a webhook for every process (`webhook_states`); a disabled
  webhook whose URL changed in this config is enabled again. Every pass reads the store's
  disabled webhooks (one small query, made anyway), so `monitor webhooks --enable NAME` takes
  effect in a running daemon at its next pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from monitor.delivery.settings import WebhookConfig
from monitor.store import Outbox, owners, routing

# these are the dispatcher's messages: they keep its logger, the one operators filter on
log = logging.getLogger("monitor.delivery.dispatcher")
ORPHAN_GRACE = timedelta(minutes=10)  # orphaned this recently by another config: revived
OTHERS_CHECK = timedelta(minutes=1)  # how often a plain webhook is checked for other routers
OTHERS_RECENT = timedelta(minutes=10)  # a group opened or a row held this recently: routed


class Coordinator:
    """One dispatcher's view of the other processes on its store, for one config."""

    def __init__(self, outbox: Outbox, webhooks: Mapping[str, WebhookConfig], owner: str) -> None:
        self.outbox = outbox
        self.webhooks = webhooks
        self.owner = owner
        self.gone: set[str] = set()  # disabled by this process (a 410), not enabled since
        self._disabling: Counter[str] = Counter()  # 410s met whose disabling is being written
        # plain here, but another process (a replica on another config) routes them: only
        # their routed deliveries are claimed here (see check_routed_elsewhere)
        self.deferred: set[str] = set()
        self._started = datetime.now(UTC)
        self._deferred_checked = -OTHERS_CHECK.total_seconds()
        self._orphaned = False  # deliveries of webhooks not in this config marked (once)
        self._revived_at = -OTHERS_CHECK.total_seconds()

    async def release_dead_claims(self) -> None:
        now = datetime.now(UTC)
        held = await asyncio.to_thread(self.outbox.leases_held, now, list(self.webhooks))
        for claimed_by, count in held.items():
            if claimed_by != self.owner and owners.is_dead(claimed_by):
                released = await asyncio.to_thread(self.outbox.release, claimed_by)
                dead = owners.Owner.parse(claimed_by)
                log.warning(
                    "released %d of %d deliveries claimed by process %s, which died; "
                    "delivering them now",
                    released,
                    count,
                    dead.pid if dead else "?",
                )

    async def orphans(self) -> None:
        """Once per config: the pending and held deliveries of webhooks no longer in the config
        become `orphaned`, kept and listed, not left pending forever. Then once a minute:
        deliveries of a webhook this config has, orphaned in the last ORPHAN_GRACE (by a replica
        on an older config), are made due again."""
        now = datetime.now(UTC)
        try:
            if not self._orphaned:
                counts = await asyncio.to_thread(self.outbox.orphan, list(self.webhooks), now)
                self._orphaned = True
                _log_orphaned(counts)
            if time.monotonic() - self._revived_at < OTHERS_CHECK.total_seconds():
                return
            self._revived_at = time.monotonic()
            revived = await asyncio.to_thread(
                self.outbox.revive_orphans, list(self.webhooks), now - ORPHAN_GRACE, now
            )
        except Exception:
            log.exception("cannot check the deliveries of webhooks removed from the config")
            return
        for name, count in sorted(revived.items()):
            log.warning(
                "webhook %s: %d deliveries orphaned in the last %d minutes by a process "
                "whose config lacks it are due again here (replicas must share the config)",
                name,
                count,
                ORPHAN_GRACE.total_seconds() // 60,
                extra={"webhook": name},
            )

    async def check_routed_elsewhere(self, plain: list[str]) -> None:
        """Of the webhooks `plain` here, defer those another process routes (it opened a story
        group or held a delivery lately, since this config was put in force): this process
        then claims only their routed deliveries. Checked once a minute."""
        if time.monotonic() - self._deferred_checked < OTHERS_CHECK.total_seconds():
            return
        self._deferred_checked = time.monotonic()
        since = max(self._started, datetime.now(UTC) - OTHERS_RECENT)
        try:
            others = await asyncio.to_thread(
                routing.routed_by_others, self.outbox.engine, plain, since
            )
        except Exception:
            log.exception("cannot check whether other processes route these webhooks")
            return
        for name in sorted(others - self.deferred):
            log.warning(
                "webhook %s has no group, digest or quiet hours here, but another process "
                "routes it with them: replicas must share webhook settings. Its new alerts are "
                "left to that process while it does",
                name,
                extra={"webhook": name},
            )
        for name in sorted(self.deferred - others):
            log.info(
                "webhook %s: no other process routes it any more; sending its alerts here",
                name,
                extra={"webhook": name},
            )
        self.deferred = others

    async def enabled(self) -> list[str]:
        """Configured webhooks not disabled; a disabled one whose URL changed is re-enabled, and
        one this process disabled that the store says is enabled (`monitor webhooks --enable`)
        is live again."""
        disabled = await asyncio.to_thread(self.outbox.disabled_webhooks)
        enabled = []
        for name, hook in self.webhooks.items():
            if name not in disabled:
                self._enabled_elsewhere(name)
                enabled.append(name)
                continue
            reason, digest = disabled[name]
            if digest is not None and digest != hook.url_digest():
                await asyncio.to_thread(self.outbox.enable_webhook, name, datetime.now(UTC))
                log.warning(
                    "webhook %s was disabled (%s); its URL changed, so it is enabled again",
                    name,
                    reason,
                    extra={"webhook": name},
                )
                self.gone.discard(name)
                enabled.append(name)
        return enabled

    def _enabled_elsewhere(self, name: str) -> None:
        """The store has `name` enabled: if this process had it disabled (and is not writing
        that down right now), someone enabled it since."""
        if name in self.gone and self._disabling[name] <= 0:
            self.gone.discard(name)
            log.warning(
                "webhook %s was enabled again (`monitor webhooks --enable`); sending its alerts",
                name,
                extra={"webhook": name},
            )

    def live(self, names: list[str]) -> list[str]:
        """Those of `names` not disabled by a 410 this process met: a list of enabled webhooks
        taken before an attempt met it stays right."""
        return [name for name in names if name not in self.gone]

    async def disable(self, hook: WebhookConfig, now: datetime, reason: str) -> None:
        """The receiver answered 410 Gone: disable the webhook for every process."""
        first = hook.name not in self.gone
        self.gone.add(hook.name)
        self._disabling[hook.name] += 1
        try:
            await asyncio.to_thread(
                self.outbox.disable_webhook, hook.name, now, reason, hook.url_digest()
            )
        finally:
            self._disabling[hook.name] -= 1
        if first:
            log.error(
                "webhook %s answered 410 Gone: disabled; its alerts stay queued. Fix its URL in "
                "the config, or run `monitor webhooks --enable %s`",
                hook.name,
                hook.name,
                extra={"webhook": hook.name},
            )


def _log_orphaned(counts: Mapping[str, int]) -> None:
    for name, count in sorted(counts.items()):
        log.warning(
            "webhook %s is not in the config: its %d undelivered deliveries are "
            "kept as orphaned (`monitor alerts --state orphaned`; put it back, then "
            "`monitor replay ID… --webhook %s`)",
            name,
            count,
            name,
            extra={"webhook": name},
        )
