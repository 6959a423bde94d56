"""A loaded config made runnable: feeds refreshed and deliveries sent with shared HTTP clients,
and (`use_websub`) WebSub's subscriber and callback given what they need of it.

The pipeline outlives its config: `apply` swaps in a newly loaded one (a hot reload) between
refreshes. Each refresh reads the config it starts with, so rules change atomically: an item is
matched by the old rules or by the new ones, never by a mix.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

import httpx

from monitor.config.settings import FeedConfig, LoadedConfig
from monitor.delivery.dispatcher import Dispatcher, DispatchSummary
from monitor.pipeline.health import HealthReport, check_health
from monitor.pipeline.refresh import (
    RefreshOutcome,
    feed_settings,
    ingest_pushed,
    refresh_context,
    refresh_feed,
)
from monitor.pipeline.websub.callback import Callback, OnPush
from monitor.pipeline.websub.shared import InForce
from monitor.pipeline.websub.subscriber import Subscriber
from monitor.store import FeedState, Store
from monitor.store.retention import prune_item_text
from monitor.store.routing import prune_groups
from monitor.store.schedule import check_sooner

log = logging.getLogger(__name__)
GROUPS_KEPT = timedelta(days=7)  # story groups are kept this long after they close
FEED_LEASE = timedelta(minutes=5)  # a poll holds its feed this long at most; then others may


class Observer(Protocol):
    """What the runtime counts (monitor.runtime.metrics.Metrics is one): the layer above us."""

    def observe_refresh(self, outcome: RefreshOutcome) -> None: ...

    def observe_dispatch(self, summary: DispatchSummary) -> None: ...


class Pipeline:
    """Feeds and deliveries for one loaded config, sharing one HTTP client per direction."""

    def __init__(
        self,
        config: LoadedConfig,
        store: Store,
        feed_client: httpx.AsyncClient,
        delivery_client: httpx.AsyncClient,
        metrics: Observer | None = None,
        *,
        parse_in_processes: bool | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics
        self.context = refresh_context(
            store, feed_client, config, parse_in_processes=parse_in_processes
        )
        self.settings = feed_settings(config)
        self._delivery_client = delivery_client
        self.dispatcher = self._dispatcher(config)
        self.subscriber: Subscriber | None = None  # WebSub: set by `use_websub`

    def use_websub(
        self,
        hub_client: httpx.AsyncClient,
        on_push: OnPush | None = None,
        *,
        owner: str | None = None,
    ) -> Callback:
        """Subscribe to the hubs polled documents name (the daemon does, when it serves HTTP):
        returns the callback its HTTP server routes /websub/<token> to."""
        in_force = InForce(lambda: self.config, lambda: self.settings)
        self.subscriber = Subscriber(self.store.engine, hub_client, in_force, owner=owner)
        return Callback(self.store.engine, in_force, self.ingest_pushed, on_push)

    async def ingest_pushed(
        self, feed: FeedState, settings: FeedConfig, body: bytes, headers: Mapping[str, str]
    ) -> RefreshOutcome:
        """A document a hub pushed, recorded with the rules in force (no schedule change)."""
        return await ingest_pushed(self.context, feed, settings, body, headers)

    def _dispatcher(self, config: LoadedConfig) -> Dispatcher:
        hooks = {hook.name: hook for hook in config.settings.webhooks}
        budgets = {rule.id: rule.budget for rule in config.matcher.rules if rule.budget}
        return Dispatcher(self.store.outbox, self._delivery_client, hooks, budgets=budgets)

    def sync_feeds(self) -> None:
        sync_feeds(self.store, self.config)

    async def apply(self, config: LoadedConfig) -> None:
        """Put a newly loaded config in force: rules, feeds (synced to the store), webhooks.

        The swap happens on the event loop, between two steps of any refresh: a refresh that
        started before keeps the context it took, so it finishes on the old rules.
        """
        old = self.config
        self.config = config
        self.settings = feed_settings(config)
        self.context = self.context.reloaded(config)
        if config.settings.webhooks != old.settings.webhooks:  # else keep the lanes' state
            self.dispatcher = self._dispatcher(config)
        await asyncio.to_thread(self._sync_schedule, old, config)

    def _sync_schedule(self, old: LoadedConfig, new: LoadedConfig) -> None:
        self.sync_feeds()
        now = datetime.now(UTC)
        for feed in new.settings.feeds:  # a shortened interval counts from now
            before, after = _interval(old, feed.url), new.feed_interval(feed)
            if before is not None and after < before:
                check_sooner(self.store.engine, [feed.url], now + after)

    async def refresh(self, feed: FeedState) -> RefreshOutcome:
        outcome = await self._refresh(feed)
        if self.metrics is not None:
            self.metrics.observe_refresh(outcome)
        return outcome

    async def _refresh(self, feed: FeedState) -> RefreshOutcome:
        context, settings = self.context, self.settings.get(feed.url)
        if settings is None:  # removed from the config while queued
            return RefreshOutcome(feed.url, "unchanged")
        subscriber = self.subscriber
        try:
            if subscriber is not None:  # while a hub pushes, only a slow safety poll
                settings = await subscriber.polling(feed, settings)
            outcome = await refresh_feed(context, feed, settings)
        except Exception as exc:  # one feed must never take the others down
            log.exception(
                "%s: unexpected error while refreshing", feed.url, extra={"feed_url": feed.url}
            )
            return RefreshOutcome(feed.url, "failed", error=f"internal error: {exc!r}")
        if subscriber is not None:  # a hub named in the document: subscribe (never raises)
            await subscriber.after_poll(feed, settings, outcome)
        return outcome

    async def deliver_due(self) -> DispatchSummary:
        summary = await self.dispatcher.deliver_due()
        if self.metrics is not None:
            self.metrics.observe_dispatch(summary)
        return summary

    async def pending_count(self) -> int:
        """Deliveries still to send: pending, and held for a digest or quiet hours."""
        counts = await asyncio.to_thread(self.store.outbox.delivery_counts)
        return counts.get("pending", 0) + counts.get("held", 0)

    def check_feed_health(self) -> HealthReport:
        """Raise `feed.unhealthy` / `feed.recovered` where a feed's health changed (in a thread)."""
        return check_health(self.store.engine, self.config, datetime.now(UTC))

    def prune_item_text(self) -> int:
        """Forget the text of items older than the retention (runs in a worker thread)."""
        keep = self.config.settings.retention.item_text
        pruned = prune_item_text(self.store.engine, datetime.now(UTC) - keep)
        if pruned:
            log.info("retention: forgot the text of %d items older than %s", pruned, keep)
        groups = prune_groups(self.store.engine, datetime.now(UTC) - GROUPS_KEPT)
        if groups:
            log.info("retention: forgot %d story groups closed over %s ago", groups, GROUPS_KEPT)
        return pruned


def sync_feeds(store: Store, config: LoadedConfig) -> None:
    """The store's feeds as configured (added, renamed, made active or inactive)."""
    # a feed with `enabled: false` stays in the config but is inactive in the store: no
    # replica claims it, and no health check finds it silent
    configured = [(f.url, f.name) for f in config.settings.feeds if f.enabled]
    store.sync_feeds(configured, datetime.now(UTC))


def _interval(config: LoadedConfig, url: str) -> timedelta | None:
    for feed in config.settings.feeds:
        if feed.url == url:
            return config.feed_interval(feed)
    return None
