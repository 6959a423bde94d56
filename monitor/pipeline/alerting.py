"""Which of a document's items are new, and the alerts each new one raises.

    items -> not recorded yet (guid, link or text: monitor.feeds.identity against the store)
    -> may alert? (all of them, except on a feed's first poll: only within `backfill`)
    -> matched with the rules in force -> one alert per match; each webhook that wants some of
       them gets one: the best one's, listing the others

A polled document (monitor.pipeline.refresh.refresh_feed) and a pushed one (ingest_pushed) go
through the same steps; nothing is written here: the caller records the `SeenItem`s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from monitor.config.settings import FeedConfig, LoadedConfig
from monitor.delivery.grouping import StoryText, same_story
from monitor.delivery.settings import WebhookConfig, severity_rank
from monitor.events import alert_created, new_alert_id
from monitor.feeds.identity import Identified, StoredIdentities, identify, unseen
from monitor.http.urls import shown_url
from monitor.models import Item, Match
from monitor.store import FeedState, NewAlert, SeenItem, Store
from monitor.store.mutes import Mute

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
            alerts_for(config, entry.item, config.matcher.match(entry.item), now)
            if entry.item in alerting
            else (),
            key=entry.key,
            guid=entry.guid,
            content_hash=entry.content_hash,
        )
        for entry in fresh
    ]


async def apply_mutes(
    store: Store,
    config: LoadedConfig,
    feed: FeedState,
    seen: Sequence[SeenItem],
    *,
    now: datetime,
) -> list[SeenItem]:
    """`seen` with the alerts a mute in force covers (their rule, feed or story) marked muted:
    recorded, not sent (monitor.store.mutes). The last step before the poll is recorded, so
    alerts from article pages (monitor.pipeline.fulltext) are muted too."""
    if not any(entry.alerts for entry in seen):  # mutes are read only when something alerts
        return list(seen)
    in_force = await asyncio.to_thread(store.active_mutes, now)
    if not in_force:
        return list(seen)
    hooks = config.settings.webhooks
    return [_muted(entry, feed.url, in_force, hooks) for entry in seen]


def _muted(
    entry: SeenItem, feed_url: str, in_force: Sequence[Mute], hooks: Sequence[WebhookConfig]
) -> SeenItem:
    """The entry with its alerts marked muted where a mute covers their rule, feed or story.
    A webhook that had the item through a muted alert gets it through the best unmuted one
    it wants instead (alerts_for gave each webhook one alert: muting a rule must not silence
    the others)."""
    if not entry.alerts:
        return entry
    item = entry.item
    story = StoryText(item.title, item.summary, item.lang)
    why = {
        index: next((m for m in in_force if _covers(m, alert.rule_id, feed_url, story)), None)
        for index, alert in enumerate(entry.alerts)
    }
    served = {h for i, a in enumerate(entry.alerts) if why[i] is None for h in a.webhooks}
    freed = [h for i, a in enumerate(entry.alerts) if why[i] is not None for h in a.webhooks]
    extra: dict[int, list[str]] = {}
    for hook in (h for h in hooks if h.name in freed and h.name not in served):
        best = next(
            (
                i
                for i in sorted(why, key=lambda i: _rank(entry.alerts[i]), reverse=True)
                if why[i] is None and hook.wants(entry.alerts[i].rule_id, entry.alerts[i].severity)
            ),
            None,
        )
        if best is not None:
            extra.setdefault(best, []).append(hook.name)
    alerts = []
    for index, alert in enumerate(entry.alerts):
        mute = why[index]
        if mute is not None:
            alerts.append(replace(alert, muted=_why(mute)))
        else:
            alerts.append(replace(alert, webhooks=(*alert.webhooks, *extra.get(index, ()))))
    return replace(entry, alerts=tuple(alerts))


def _why(mute: Mute) -> str:
    until = mute.until.strftime("%Y-%m-%d %H:%M UTC")
    return f"muted by mute {mute.id} ({mute.describe()}) until {until}"


def _covers(mute: Mute, rule_id: str, feed_url: str, story: StoryText) -> bool:
    if mute.kind == "rule":
        return mute.target == rule_id
    if mute.kind == "feed":
        return mute.target == feed_url
    told = mute.story
    return told is not None and same_story(story, StoryText(told.title, told.summary, told.lang))


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


def alerts_for(
    config: LoadedConfig,
    item: Item,
    matches: Sequence[Match],
    now: datetime,
    *,
    taken: Collection[str] = (),
) -> tuple[NewAlert, ...]:
    """One alert per rule that matched (each rule keeps its record), and one delivery per
    webhook: an item several of a webhook's rules match reaches it once, as the alert of the
    best of them (severity, then score), which lists the others in `data.also`. Webhooks in
    `taken` already have an alert of this item."""
    matches = sorted(matches, key=_rank, reverse=True)
    taken = set(taken)
    alerts = []
    for match in matches:
        hooks = [
            h.name
            for h in config.settings.webhooks
            if h.name not in taken and h.wants(match.rule_id, match.severity)
        ]
        taken.update(hooks)
        also = [other for other in matches if other is not match]
        alerts.append(_new_alert(item, match, also, hooks, now))
    return tuple(alerts)


def _rank(ranked: Match | NewAlert) -> tuple[int, float]:
    """Which of an item's matches (or alerts) a webhook gets: severity, then score."""
    return severity_rank(ranked.severity), ranked.score


def _new_alert(
    item: Item, match: Match, also: Sequence[Match], hooks: Sequence[str], now: datetime
) -> NewAlert:
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
            alert_id, replace(item, feed_url=shown_url(item.feed_url)), match, now, also
        ),
        webhooks=tuple(hooks),
    )


# for the matches an article page adds (monitor.pipeline.fulltext): they alert the same way
may_alert = _alerting
