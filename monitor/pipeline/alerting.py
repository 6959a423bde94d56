"""Which of a document's items are new, and the alerts each new one raises.

    items -> not recorded yet (guid, link or text: monitor.feeds.identity against the store)
    -> may alert? (all of them, except on a feed's first poll: only within `backfill`)
    -> matched with the rules in force -> one alert per match, for the webhooks that want it

A polled document (monitor.pipeline.refresh.refresh_feed) and a pushed one (ingest_pushed) go
through the same steps; nothing is written here: the caller records the `SeenItem`s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from monitor.config.settings import FeedConfig, LoadedConfig
from monitor.delivery.settings import WebhookConfig
from monitor.events import alert_created, new_alert_id
from monitor.feeds.identity import Identified, StoredIdentities, identify, unseen
from monitor.http.urls import shown_url
from monitor.models import Item, Match
from monitor.store import FeedState, NewAlert, SeenItem, Store

log = logging.getLogger(__name__)


async def seen_items(
    store: Store,
    config: LoadedConfig,
    feed: FeedState,
    settings: FeedConfig,
    items: Sequence[Item],
    *,
    now: datetime,
) -> list[SeenItem]:
    """The new ones of `items`, each with the alerts it raises (backfill on a first poll)."""
    fresh = await asyncio.to_thread(_unseen, store, feed.id, items)
    backfill = config.feed_backfill(settings)
    alerting = _alerting([entry.item for entry in fresh], feed, backfill, now)
    return [
        SeenItem(
            entry.item,
            _alerts_for(config, entry.item, now) if entry.item in alerting else (),
            key=entry.key,
            guid=entry.guid,
        )
        for entry in fresh
    ]


def _unseen(store: Store, feed_id: int, items: Sequence[Item]) -> list[Identified]:
    """The items not recorded yet, once each, by guid, link or text (monitor.feeds.identity)."""
    candidates = identify(items)
    rows = store.item_identities(
        feed_id,
        guids=[c.guid for c in candidates if c.guid],
        links=[c.link for c in candidates if c.link],
        hashes=[c.content_hash for c in candidates],
    )
    stored = StoredIdentities(
        guids=frozenset(guid for guid, _link, _hash in rows if guid),
        links=frozenset(link for _guid, link, _hash in rows if link),
        hashes=frozenset(content_hash for _guid, _link, content_hash in rows),
        link_hashes=frozenset((link, content_hash) for _guid, link, content_hash in rows if link),
    )
    return unseen(candidates, stored)


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


def _alerts_for(config: LoadedConfig, item: Item, now: datetime) -> tuple[NewAlert, ...]:
    matches = config.matcher.match(item)
    hooks = config.settings.webhooks
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
        # the feed's URL goes to receivers and chat channels: its credentials must not
        payload=alert_created(
            alert_id, replace(item, feed_url=shown_url(item.feed_url)), match, now
        ),
        webhooks=tuple(h.name for h in hooks if h.wants(match.rule_id, match.severity)),
    )


# for the matches an article page adds (monitor.pipeline.fulltext): they alert the same way
may_alert = _alerting
new_alert = _new_alert
