"""A loaded config made runnable: feeds refreshed and deliveries sent with shared HTTP clients."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import httpx

from monitor.config import LoadedConfig
from monitor.delivery.dispatcher import Dispatcher
from monitor.feeds.fetcher import FetchLimits
from monitor.feeds.refresh import RefreshContext, RefreshOutcome, feed_settings, refresh_feed
from monitor.store import FeedState, Store

log = logging.getLogger(__name__)
FEED_LEASE = timedelta(minutes=5)  # a poll holds its feed this long at most; then others may
MAX_FEEDS_IN_FLIGHT = FetchLimits().max_connections  # more would wait for the pool, on the clock


class Pipeline:
    """Feeds and deliveries for one loaded config, sharing one HTTP client per direction."""

    def __init__(
        self,
        config: LoadedConfig,
        store: Store,
        feed_client: httpx.AsyncClient,
        delivery_client: httpx.AsyncClient,
    ) -> None:
        self.config = config
        self.store = store
        self.context = RefreshContext(store=store, client=feed_client, config=config)
        self.settings = feed_settings(config)
        self.dispatcher = Dispatcher(
            store.outbox, delivery_client, {hook.name: hook for hook in config.settings.webhooks}
        )
        self._slots = asyncio.Semaphore(MAX_FEEDS_IN_FLIGHT)

    def sync_feeds(self) -> None:
        configured = [(feed.url, feed.name) for feed in self.config.settings.feeds]
        self.store.sync_feeds(configured, datetime.now(UTC))

    async def refresh(self, feed: FeedState) -> RefreshOutcome:
        async with self._slots:
            settings = self.settings.get(feed.url)
            if settings is None:  # removed from the config while queued
                return RefreshOutcome(feed.url, "unchanged")
            try:
                return await refresh_feed(self.context, feed, settings)
            except Exception as exc:  # one feed must never take the others down
                log.exception(
                    "%s: unexpected error while refreshing", feed.url, extra={"feed_url": feed.url}
                )
                return RefreshOutcome(feed.url, "failed", error=f"internal error: {exc!r}")

    async def pending_count(self) -> int:
        counts = await asyncio.to_thread(self.store.outbox.delivery_counts)
        return counts.get("pending", 0)
