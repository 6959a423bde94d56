"""`refresh_feed`: the one pipeline function for a feed, read top to bottom.

conditional GET (per-host limits) -> failed: back off (Retry-After, 410 stops) and record
-> 304, or a body identical to the last: reschedule -> parse (in a worker thread)
-> keep what is new (guid, link or text: monitor.feeds.identity) -> match the new items
-> on a feed's first poll alert only within `backfill` -> one transaction: items seen +
alerts + outbox rows + validators + the next check (monitor.feeds.schedule)
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

import httpx

from monitor.config.settings import FeedConfig, LoadedConfig
from monitor.delivery.settings import WebhookConfig
from monitor.durations import approximate_duration
from monitor.events import alert_created, new_alert_id
from monitor.feeds.fetcher import (
    Fetched,
    FetchFailed,
    FetchLimits,
    NotModified,
    Validators,
    fetch_feed,
)
from monitor.feeds.hosts import HostLimiter
from monitor.feeds.identity import Identified, StoredIdentities, identify, unseen
from monitor.feeds.parser import ParsedFeed, ParseFailed
from monitor.feeds.parsing import parse_off_loop, use_processes
from monitor.feeds.schedule import backoff, jittered, past_skips, polite_wait
from monitor.http.headers import cache_hint
from monitor.matching import Matcher
from monitor.models import Item, Match
from monitor.store import FeedState, NewAlert, SeenItem, Store
from monitor.store.store import PollFailure, PollRecord
from monitor.store.writer import PollWriter

log = logging.getLogger(__name__)
# more would wait for a connection of the shared client's pool, their deadline running
MAX_FEEDS_IN_FLIGHT = FetchLimits().max_connections


@dataclass(frozen=True, slots=True)
class RefreshContext:
    """What every refresh needs; built once per config by the daemon."""

    store: Store
    client: httpx.AsyncClient
    config: LoadedConfig
    limits: FetchLimits = field(init=False)  # from the config's `fetch:` settings
    # kept across hot reloads (dataclasses.replace) while `fetch:` is unchanged: per-host
    # spacing must not reset with every rule edit
    host_limiter: HostLimiter | None = None
    # Parsing a feed at the size cap takes seconds and ~140 MB (measured, see tests/feeds): it
    # runs off the event loop (monitor.feeds.parsing), so fetching and delivering go on, and a
    # few at a time, so memory stays bounded.
    parse_slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(2 * (os.cpu_count() or 1))
    )
    parse_in_processes: bool = field(init=False)
    # one per store, kept across hot reloads like the host limiter: polls share transactions
    poll_writer: PollWriter | None = None
    # Polls between the start of their fetch and the end of their matching: each may hold a
    # connection or a body. Kept across hot reloads. Waiting for the poll's transaction is
    # outside: polls that held their slot through it left the fetches idle for a batch's
    # linger and write (measured on the farm's warm cycle: 1,000 polls in 1.57 s, 1.30 s out).
    in_flight: asyncio.Semaphore | None = None

    def __post_init__(self) -> None:
        fetch = self.config.settings.fetch
        object.__setattr__(self, "limits", fetch.limits())
        limiter = self.host_limiter
        if limiter is None or not limiter.configured_as(fetch.per_host, fetch.host_spacing):
            limiter = HostLimiter(fetch.per_host, fetch.host_spacing)
            object.__setattr__(self, "host_limiter", limiter)
        feed_count = len(self.config.settings.feeds)
        object.__setattr__(self, "parse_in_processes", use_processes(feed_count))
        if self.poll_writer is None:
            object.__setattr__(self, "poll_writer", PollWriter(self.store))
        if self.in_flight is None:
            object.__setattr__(self, "in_flight", asyncio.Semaphore(MAX_FEEDS_IN_FLIGHT))

    @property
    def hosts(self) -> HostLimiter:
        return cast(HostLimiter, self.host_limiter)  # always set by __post_init__

    @property
    def slots(self) -> asyncio.Semaphore:
        return cast(asyncio.Semaphore, self.in_flight)  # always set by __post_init__

    @property
    def writer(self) -> PollWriter:
        return cast(PollWriter, self.poll_writer)  # always set by __post_init__

    @property
    def matcher(self) -> Matcher:
        return self.config.matcher


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    feed_url: str
    status: str  # fetched | unchanged | failed; pushed (ingest_pushed)
    new_items: int = 0
    alerts: int = 0
    error: str | None = None
    # WebSub (monitor.pipeline.websub): the hubs and rel="self" link a fetched document advertised
    hubs: tuple[str, ...] = ()
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class _Polled:
    """A poll done up to its write: the row to record, and the outcome to report once it is."""

    record: PollRecord | PollFailure
    outcome: RefreshOutcome
    retry_in: timedelta | None = None  # a failure's backoff, for its log line


async def refresh_feed(
    ctx: RefreshContext, feed: FeedState, settings: FeedConfig
) -> RefreshOutcome:
    """Poll one feed and record what it brought. Never raises for the feed's own failures."""
    async with ctx.slots:
        polled = await _poll(ctx, feed, settings)
        await ctx.writer.make_room()  # a bounded number of outcomes wait to be written
    if isinstance(polled.record, PollFailure):
        await ctx.writer.record_failure(polled.record)
        _log_failure(feed, polled.record, polled.retry_in or timedelta(0))
        return polled.outcome
    result = await ctx.writer.record(polled.record)
    if polled.outcome.status != "fetched":
        return polled.outcome
    if result.new_items:
        log.info(
            "%s: %d new items, %d alerts",
            feed.url,
            result.new_items,
            result.alerts_created,
            extra={"feed_url": feed.url},
        )
    return dataclasses.replace(
        polled.outcome, new_items=result.new_items, alerts=result.alerts_created
    )


async def _poll(ctx: RefreshContext, feed: FeedState, settings: FeedConfig) -> _Polled:
    now = datetime.now(UTC)
    interval = ctx.config.feed_interval(settings)
    validators = Validators(etag=feed.etag, last_modified=feed.last_modified)
    async with ctx.hosts.slot(feed.fetch_url):
        fetched = await fetch_feed(
            ctx.client, feed.fetch_url, validators, ctx.limits, configured=feed.url
        )
    moved_to = _moved(feed, fetched.permanent_redirect)
    if isinstance(fetched, FetchFailed):
        return _failure(feed, interval, fetched, moved_to)
    if isinstance(fetched, NotModified) or (digest := fetched.digest) == feed.content_digest:
        # 304, or a server without validators sending the very bytes we parsed last time
        wait = polite_wait(interval, cache_hint(fetched.headers, now))
        poll = _success(
            feed, now, wait, fetched.validators, status=_status(fetched), moved_to=moved_to
        )
        return _Polled(poll, RefreshOutcome(feed.url, "unchanged"))
    async with ctx.parse_slots:
        parsed = await parse_off_loop(
            fetched.body,
            url=feed.url,
            base_url=fetched.url,
            headers=fetched.headers,
            feed_name=settings.name or "",
            processes=ctx.parse_in_processes,
        )
    if isinstance(parsed, ParseFailed):
        failed = FetchFailed(parsed.error, fetched.status, None, fetched.headers, fetched.elapsed)
        return _failure(feed, interval, failed, moved_to)
    seen = await _seen_items(ctx, feed, settings, parsed, now)
    poll = _success(
        feed,
        now,
        polite_wait(interval, cache_hint(fetched.headers, now), parsed.ttl),
        fetched.validators,
        parsed=parsed,
        seen=seen,
        status=fetched.status,
        digest=digest,
        moved_to=moved_to,
    )
    outcome = RefreshOutcome(feed.url, "fetched", hubs=parsed.hub_links, topic=parsed.self_link)
    return _Polled(poll, outcome)


async def ingest_pushed(
    ctx: RefreshContext,
    feed: FeedState,
    settings: FeedConfig,
    body: bytes,
    headers: Mapping[str, str],
) -> RefreshOutcome:
    """A document a WebSub hub pushed (monitor.pipeline.websub): parsed, deduplicated, matched and
    recorded like a polled body, leaving the feed's schedule, validators and errors alone."""
    now = datetime.now(UTC)
    async with ctx.parse_slots:
        parsed = await parse_off_loop(
            body,
            url=feed.url,
            base_url=feed.fetch_url,
            headers=headers,
            feed_name=settings.name or "",
            processes=ctx.parse_in_processes,
        )
    if isinstance(parsed, ParseFailed):
        return RefreshOutcome(feed.url, "failed", error=str(parsed.error))
    seen = await _seen_items(ctx, feed, settings, parsed, now)
    result = await asyncio.to_thread(ctx.store.record_push, feed.id, now, seen)
    log.info(
        "%s: %d new items, %d alerts (pushed by the WebSub hub)",
        feed.url,
        result.new_items,
        result.alerts_created,
        extra={"feed_url": feed.url},
    )
    return RefreshOutcome(feed.url, "pushed", result.new_items, result.alerts_created)


async def _seen_items(
    ctx: RefreshContext, feed: FeedState, settings: FeedConfig, parsed: ParsedFeed, now: datetime
) -> list[SeenItem]:
    """The document's new items, each with the alerts it raises (backfill on a first poll)."""
    fresh = await asyncio.to_thread(_unseen, ctx.store, feed.id, parsed.items)
    backfill = ctx.config.feed_backfill(settings)
    alerting = _alerting([entry.item for entry in fresh], feed, backfill, now)
    return [
        SeenItem(
            entry.item,
            _alerts_for(ctx, entry.item, now) if entry.item in alerting else (),
            key=entry.key,
            guid=entry.guid,
        )
        for entry in fresh
    ]


def _moved(feed: FeedState, permanent_redirect: str | None) -> str | None:
    """A new 301/308 target worth recording (and telling the user about), else None."""
    if not permanent_redirect or permanent_redirect == feed.fetch_url:
        return None
    log.warning(
        "%s moved permanently to %s; polling the new address (update the config to match)",
        feed.url,
        permanent_redirect,
        extra={"feed_url": feed.url},
    )
    return permanent_redirect


def _status(fetched: Fetched | NotModified) -> int:
    return 304 if isinstance(fetched, NotModified) else fetched.status


def _success(
    feed: FeedState,
    now: datetime,
    wait: timedelta,
    validators: Validators,
    *,
    parsed: ParsedFeed | None = None,
    seen: Sequence[SeenItem] = (),
    status: int,
    digest: str | None = None,
    moved_to: str | None = None,
) -> PollRecord:
    next_check = jittered(now, wait)
    if parsed is not None:
        next_check = past_skips(next_check, parsed.skip_hours, parsed.skip_days)
    return PollRecord(
        feed.id,
        now,
        next_check_at=next_check,
        etag=validators.etag,
        last_modified=validators.last_modified,
        title=parsed.title if parsed is not None else None,
        seen=tuple(seen),
        status=status,
        content_digest=digest,
        moved_to=moved_to,
        owner=feed.claimed_by,
    )


def _failure(
    feed: FeedState, interval: timedelta, failed: FetchFailed, moved_to: str | None
) -> _Polled:
    """The failure to record, and when the next try will be."""
    now = datetime.now(UTC)
    error = str(failed.error)
    wait = backoff(interval, feed.error_count + 1, failed.retry_after)
    failure = PollFailure(
        feed.id,
        now,
        error=error,
        next_check_at=jittered(now, wait),
        status=failed.status,
        gone=failed.status == 410,
        moved_to=moved_to,
        owner=feed.claimed_by,
    )
    return _Polled(failure, RefreshOutcome(feed.url, "failed", error=error), retry_in=wait)


def _log_failure(feed: FeedState, failure: PollFailure, retry_in: timedelta) -> None:
    """What the user reads of a failure once it is recorded."""
    if failure.gone:
        log.error(
            "%s: %s; polling stopped: remove the feed from the config, or change its url",
            feed.url,
            failure.error,
            extra={"feed_url": feed.url},
        )
    else:
        log.warning(
            "%s: %s (failure %d in a row; next try in about %s)",
            feed.url,
            failure.error,
            feed.error_count + 1,
            approximate_duration(retry_in),
            extra={"feed_url": feed.url},
        )


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
        webhooks=tuple(h.name for h in hooks if h.wants(match.rule_id, match.severity)),
    )


def feed_settings(config: LoadedConfig) -> Mapping[str, FeedConfig]:
    return {feed.url: feed for feed in config.settings.feeds}
