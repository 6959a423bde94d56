"""`refresh_feed`: the one pipeline function for a feed, read top to bottom.

conditional GET -> (failed: back off, record) -> (304: reschedule) -> parse -> keep what is new
-> match the new items -> alerts for the first poll only within `backfill` -> one transaction:
items seen + alerts + outbox rows + the feed's validators and next check
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from monitor.config import FeedConfig, LoadedConfig
from monitor.delivery.payload import alert_created, new_alert_id
from monitor.delivery.settings import WebhookConfig
from monitor.feeds.fetcher import FetchFailed, FetchLimits, NotModified, Validators, fetch_feed
from monitor.feeds.parser import ParseFailed, parse_feed
from monitor.matching import Matcher
from monitor.models import Item, Match
from monitor.store import FeedState, NewAlert, PollResult, SeenItem, Store

log = logging.getLogger(__name__)
MAX_BACKOFF = timedelta(hours=24)
JITTER = 0.1  # next checks are spread by up to 10 % of the interval


@dataclass(frozen=True, slots=True)
class RefreshContext:
    """What every refresh needs; built once per config by the daemon."""

    store: Store
    client: httpx.AsyncClient
    config: LoadedConfig
    limits: FetchLimits = field(default_factory=FetchLimits)
    # Parsing a feed at the size cap takes seconds and ~140 MB (measured, see tests/feeds): it
    # runs in a worker thread so the event loop keeps fetching and delivering, two at a time so
    # memory stays bounded.
    parse_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))

    @property
    def matcher(self) -> Matcher:
        return self.config.matcher


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    feed_url: str
    status: str  # fetched | unchanged | failed
    new_items: int = 0
    alerts: int = 0
    error: str | None = None


async def refresh_feed(
    ctx: RefreshContext, feed: FeedState, settings: FeedConfig
) -> RefreshOutcome:
    """Poll one feed and record what it brought. Never raises for the feed's own failures."""
    now = datetime.now(UTC)
    interval = ctx.config.feed_interval(settings)
    validators = Validators(etag=feed.etag, last_modified=feed.last_modified)
    fetched = await fetch_feed(ctx.client, feed.url, validators, ctx.limits)
    if isinstance(fetched, FetchFailed):
        return await _record_failure(ctx, feed, interval, str(fetched.error), fetched.retry_after)
    if fetched.permanent_redirect:
        log.warning(
            "%s moved permanently to %s; update the feed's url in the config",
            feed.url,
            fetched.permanent_redirect,
            extra={"feed_url": feed.url},
        )
    if isinstance(fetched, NotModified):
        await _record_success(ctx, feed, now, interval, fetched.validators)
        return RefreshOutcome(feed.url, "unchanged")
    async with ctx.parse_slots:
        parsed = await asyncio.to_thread(
            parse_feed,
            fetched.body,
            url=feed.url,
            base_url=fetched.url,
            headers=fetched.headers,
            feed_name=settings.name or "",
        )
    if isinstance(parsed, ParseFailed):
        return await _record_failure(ctx, feed, interval, str(parsed.error), None)
    fresh = await asyncio.to_thread(_unseen, ctx.store, feed.id, parsed.items)
    alerting = _alerting(fresh, feed, ctx.config.feed_backfill(settings), now)
    seen = [
        SeenItem(item, _alerts_for(ctx, item, now) if item in alerting else ()) for item in fresh
    ]
    result = await _record_success(
        ctx, feed, now, interval, fetched.validators, title=parsed.title, seen=seen
    )
    if result.new_items:
        log.info(
            "%s: %d new items, %d alerts",
            feed.url,
            result.new_items,
            result.alerts_created,
            extra={"feed_url": feed.url},
        )
    return RefreshOutcome(feed.url, "fetched", result.new_items, result.alerts_created)


def next_check(now: datetime, interval: timedelta, rng: random.Random | None = None) -> datetime:
    return now + interval * (1 + JITTER * (rng or random).random())


def backoff(interval: timedelta, errors: int, retry_after: timedelta | None) -> timedelta:
    """Wait after the `errors`-th failure in a row: doubling from the interval, capped at a day."""
    doubling: int = 2 ** min(errors - 1, 16)
    wait = min(interval * doubling, MAX_BACKOFF)
    wait = max(wait, interval)
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_BACKOFF))
    return wait


async def _record_success(
    ctx: RefreshContext,
    feed: FeedState,
    now: datetime,
    interval: timedelta,
    validators: Validators,
    *,
    title: str | None = None,
    seen: Sequence[SeenItem] = (),
) -> PollResult:
    return await asyncio.to_thread(
        ctx.store.record_poll,
        feed.id,
        now,
        next_check_at=next_check(now, interval),
        etag=validators.etag,
        last_modified=validators.last_modified,
        title=title,
        seen=seen,
    )


async def _record_failure(
    ctx: RefreshContext,
    feed: FeedState,
    interval: timedelta,
    error: str,
    retry_after: timedelta | None,
) -> RefreshOutcome:
    now = datetime.now(UTC)
    wait = backoff(interval, feed.error_count + 1, retry_after)
    await asyncio.to_thread(
        ctx.store.record_poll_failure,
        feed.id,
        now,
        error=error,
        next_check_at=next_check(now, wait),
    )
    log.warning(
        "%s: %s (failure %d in a row; next try in about %s)",
        feed.url,
        error,
        feed.error_count + 1,
        _rounded(wait),
        extra={"feed_url": feed.url},
    )
    return RefreshOutcome(feed.url, "failed", error=error)


def _unseen(store: Store, feed_id: int, items: Sequence[Item]) -> list[Item]:
    """The items not recorded yet, once each (a feed may repeat a guid)."""
    unique: dict[str, Item] = {}
    for item in items:
        unique.setdefault(item.dedupe_key(), item)
    known = store.known_keys(feed_id, unique)
    return [item for key, item in unique.items() if key not in known]


def _alerting(
    fresh: Sequence[Item], feed: FeedState, backfill: timedelta | str, now: datetime
) -> set[Item]:
    """Which new items may alert: all of them, except on a feed's first poll (`backfill`)."""
    if feed.first_polled_at is not None or backfill == "all":
        return set(fresh)
    if backfill == "none" or not isinstance(backfill, timedelta):
        return set()
    since = now - backfill
    return {item for item in fresh if item.published is not None and item.published >= since}


def _alerts_for(ctx: RefreshContext, item: Item, now: datetime) -> tuple[NewAlert, ...]:
    matches = ctx.matcher.match(item)
    hooks = ctx.config.settings.webhooks
    return tuple(_new_alert(item, match, hooks, now) for match in matches)


def _new_alert(item: Item, match: Match, hooks: Sequence[WebhookConfig], now: datetime) -> NewAlert:
    alert_id = new_alert_id(now)
    log.info(
        "alert %s: rule %s matched %r",
        alert_id,
        match.rule_id,
        item.title,
        extra={"alert_id": alert_id, "rule_id": match.rule_id, "feed_url": item.feed_url},
    )
    return NewAlert(
        id=alert_id,
        rule_id=match.rule_id,
        severity=match.severity,
        score=match.score,
        payload=alert_created(alert_id, item, match, now),
        webhooks=tuple(h.name for h in hooks if h.rules is None or match.rule_id in h.rules),
    )


def feed_settings(config: LoadedConfig) -> Mapping[str, FeedConfig]:
    return {feed.url: feed for feed in config.settings.feeds}


def _rounded(wait: timedelta) -> str:
    seconds = int(wait.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"
