"""What the subscriber and the callback both read: the config in force, as WebSub sees it, and
a feed's return to its normal interval when its subscription stops carrying it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from monitor.config.settings import FeedConfig, LoadedConfig, WebSubSettings
from monitor.http.guard import AddressPolicy
from monitor.store.schedule import check_sooner
from monitor.store.subscriptions import Subscription


@dataclass(frozen=True, slots=True)
class InForce:
    """The config in force (a hot reload swaps it between two reads): `config` gives the
    loaded config, `feeds` its feeds by URL (monitor.pipeline.pipeline keeps both)."""

    config: Callable[[], LoadedConfig]
    feeds: Callable[[], Mapping[str, FeedConfig]]

    @property
    def websub(self) -> WebSubSettings | None:
        """The `websub:` settings; None while WebSub is off."""
        return self.config().settings.websub

    def feed(self, url: str) -> FeedConfig | None:
        return self.feeds().get(url)

    def enabled_for(self, feed: FeedConfig | None) -> bool:
        return self.websub is not None and feed is not None and feed.websub

    def opted_out(self) -> list[str]:
        """The URLs of feeds set to `websub: false`: unsubscribed, never subscribed again."""
        return [feed.url for feed in self.config().settings.feeds if not feed.websub]

    def interval(self, feed: FeedConfig) -> timedelta:
        return self.config().feed_interval(feed)

    def interval_of(self, url: str) -> timedelta | None:
        """The poll interval of the feed at `url`; None once it left the config."""
        feed = self.feed(url)
        return self.interval(feed) if feed is not None else None

    @property
    def address_policy(self) -> AddressPolicy:
        """Where hub requests may connect: hubs are named by feeds (fetch.allow_private…)."""
        return self.config().settings.fetch.limits().address_policy

    def lease(self, fallback: int | None) -> int:
        """The lease to ask for, in seconds: the config's, else `fallback` (WebSub just off)."""
        settings = self.websub
        return int(settings.lease.total_seconds()) if settings else fallback or 0


async def poll_soon(engine: Engine, in_force: InForce, sub: Subscription, now: datetime) -> None:
    """Back to the feed's normal interval: a safety-poll date further off is brought in."""
    interval = in_force.interval_of(sub.feed_url)
    if interval is not None:
        await asyncio.to_thread(check_sooner, engine, [sub.feed_url], now + interval)
