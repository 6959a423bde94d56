"""`refresh_feed`: the one pipeline function for a feed, read top to bottom.

    take a poll slot -> conditional GET (per-host limits; a 301/308 is followed and recorded)
    -> failed: back off (doubling, Retry-After honoured; 410 stops polling) and record
    -> 304, or a body identical to the last: record the next check only
    -> parse (in a worker thread or process) -> the new items and their alerts
       (monitor.pipeline.alerting) -> the next check from the interval, Cache-Control/Expires,
       <ttl> and <skipHours>/<skipDays> (monitor.feeds.schedule)
    -> give the slot back -> one transaction, shared with the polls finishing alongside
       (monitor.store.writer): items seen, alerts, outbox rows, validators, the next check

`ingest_pushed` takes a document a WebSub hub pushed through the same parse and alerting steps,
leaving the feed's schedule alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from monitor.config.settings import FeedConfig, LoadedConfig
from monitor.durations import approximate_duration
from monitor.feeds.article import RobotsCache
from monitor.feeds.fetcher import (
    Fetched,
    FetchFailed,
    FetchLimits,
    NotModified,
    Validators,
    fetch_feed,
)
from monitor.feeds.hosts import HostLimiter
from monitor.feeds.parser import ParsedFeed, ParseFailed
from monitor.feeds.parsing import parse_off_loop, use_processes
from monitor.feeds.schedule import backoff, jittered, past_skips, polite_wait, spread
from monitor.http.headers import cache_hint
from monitor.pipeline.alerting import apply_mutes, seen_items
from monitor.pipeline.fulltext import PageReader, read_pages
from monitor.store import FeedState, SeenItem, Store
from monitor.store.store import PollFailure, PollRecord
from monitor.store.writer import PollWriter

log = logging.getLogger(__name__)
# more would wait for a connection of the shared client's pool, their deadline running
MAX_FEEDS_IN_FLIGHT = FetchLimits().max_connections


@dataclass(frozen=True, slots=True)
class RefreshContext:
    """What every refresh needs, for one config. `refresh_context` builds it; `reloaded` makes
    the one for a newly loaded config, keeping what must outlive a rule edit."""

    store: Store
    client: httpx.AsyncClient
    config: LoadedConfig
    limits: FetchLimits  # from the config's `fetch:` settings
    # per-host slots and spacing: kept across hot reloads while `fetch:` is unchanged, so the
    # spacing does not reset with every rule edit
    hosts: HostLimiter
    # Parsing a feed at the size cap takes seconds and a lot of memory: it runs off the event
    # loop (monitor.feeds.parsing), so fetching and delivering go on, and a few at a time, so
    # memory stays bounded. Kept across hot reloads.
    parse_slots: asyncio.Semaphore
    parse_in_processes: bool  # a large document in a worker process (monitor.feeds.parsing)
    writer: PollWriter  # one per store, kept across hot reloads: polls share transactions
    # Polls between the start of their fetch and the end of their matching: each may hold a
    # connection or a body. Kept across hot reloads. Waiting for the poll's transaction is
    # outside: polls holding their slot through it would leave the fetches idle while a batch
    # lingers and is written.
    poll_slots: asyncio.Semaphore
    # robots.txt of the hosts of article pages read for full text: kept across hot reloads
    robots: RobotsCache = dataclasses.field(default_factory=RobotsCache)

    def pages(self) -> PageReader:
        """What reading article pages for full text needs (monitor.pipeline.fulltext)."""
        return PageReader(
            self.store,
            self.client,
            self.hosts,
            self.robots,
            slots=self.parse_slots,
            limits=self.limits,
            settings=self.config.settings.fetch.fulltext,
        )

    def reloaded(self, config: LoadedConfig) -> RefreshContext:
        """The context for `config`: new rules and limits; the same slots, writer and (while
        `fetch:` is unchanged) host limiter."""
        fetch = config.settings.fetch
        hosts = self.hosts
        if not hosts.configured_as(fetch.per_host, fetch.host_spacing):
            hosts = HostLimiter(fetch.per_host, fetch.host_spacing)
        return dataclasses.replace(
            self,
            config=config,
            limits=fetch.limits(),
            hosts=hosts,
            parse_in_processes=use_processes(len(config.settings.feeds)),
        )


def refresh_context(
    store: Store,
    client: httpx.AsyncClient,
    config: LoadedConfig,
    *,
    poll_slots: asyncio.Semaphore | None = None,
    parse_in_processes: bool | None = None,
) -> RefreshContext:
    """The context of a pipeline's first config (`poll_slots`: MAX_FEEDS_IN_FLIGHT by default;
    `parse_in_processes`: by the feed count and the cores, unless given)."""
    fetch = config.settings.fetch
    return RefreshContext(
        store=store,
        client=client,
        config=config,
        limits=fetch.limits(),
        hosts=HostLimiter(fetch.per_host, fetch.host_spacing),
        parse_slots=asyncio.Semaphore(2 * (os.cpu_count() or 1)),
        parse_in_processes=use_processes(len(config.settings.feeds))
        if parse_in_processes is None
        else parse_in_processes,
        writer=PollWriter(store),
        poll_slots=poll_slots or asyncio.Semaphore(MAX_FEEDS_IN_FLIGHT),
    )


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
    # a failure's backoff, and whether it is one that will not pass by itself (a
    # PermanentFeedError: monitor.errors), for its log line
    retry_in: timedelta = timedelta(0)
    lasting: bool = False


async def refresh_feed(
    ctx: RefreshContext, feed: FeedState, settings: FeedConfig
) -> RefreshOutcome:
    """Poll one feed and record what it brought. Never raises for the feed's own failures."""
    async with ctx.poll_slots:  # from the fetch to the matching; not through the write
        polled = await _poll(ctx, feed, settings)
        await ctx.writer.make_room()  # a bounded number of outcomes wait to be written
    return await _write(ctx, feed, polled)


async def _poll(ctx: RefreshContext, feed: FeedState, settings: FeedConfig) -> _Polled:
    """The poll up to its write: fetched, then failed, unchanged, or parsed and matched."""
    now = datetime.now(UTC)
    interval = ctx.config.feed_interval(settings)
    fetched = await _fetch(ctx, feed, settings)
    moved_to = _moved(feed, fetched.permanent_redirect)
    if isinstance(fetched, FetchFailed):
        return _failed(feed, interval, fetched, moved_to)
    if isinstance(fetched, NotModified) or (digest := fetched.digest) == feed.content_digest:
        # 304, or a server without validators sending the very bytes we parsed last time
        return _unchanged(feed, now, interval, fetched, moved_to=moved_to)
    parsed = await _parse(
        ctx,
        feed,
        settings,
        fetched.body,
        base_url=fetched.url,
        headers=fetched.headers,
        known=feed.entry_digests or b"",
    )
    if isinstance(parsed, ParseFailed):
        failed = FetchFailed(parsed.error, fetched.status, None, fetched.headers, fetched.elapsed)
        return _failed(feed, interval, failed, moved_to)
    for loss in parsed.losses:  # items past the caps were never seen: the user must know
        log.warning("%s: %s", feed.url, loss, extra={"feed_url": feed.url})
    seen = await seen_items(ctx.store, ctx.config, feed, settings, parsed.items, now=now)
    seen = await read_pages(ctx.pages(), ctx.config, feed, settings, seen, now=now)
    seen = await apply_mutes(ctx.store, ctx.config, feed, seen, now=now)
    return _parsed(
        feed, now, interval, fetched, parsed, seen=seen, digest=digest, moved_to=moved_to
    )


async def _fetch(
    ctx: RefreshContext, feed: FeedState, settings: FeedConfig
) -> Fetched | NotModified | FetchFailed:
    """A conditional GET with the validators of the last poll, in the host's turn."""
    validators = Validators(etag=feed.etag, last_modified=feed.last_modified)
    async with ctx.hosts.slot(feed.fetch_url):
        return await fetch_feed(
            ctx.client,
            feed.fetch_url,
            validators,
            ctx.limits,
            configured=feed.url,
            headers=settings.request_headers(),
            user_agent=settings.user_agent,
            proxy=settings.proxy_url(),
        )


async def _parse(
    ctx: RefreshContext,
    feed: FeedState,
    settings: FeedConfig,
    body: bytes,
    *,
    base_url: str,
    headers: Mapping[str, str],
    known: bytes = b"",
) -> ParsedFeed | ParseFailed:
    """Parse off the event loop, a few documents at a time (ctx.parse_slots), without the
    entries whose digests are `known`: those of the last document parsed."""
    async with ctx.parse_slots:
        parsed = await parse_off_loop(
            body,
            url=feed.url,
            base_url=base_url,
            headers=headers,
            feed_name=settings.name or "",
            processes=ctx.parse_in_processes,
            known=known,
        )
    if isinstance(parsed, ParsedFeed) and parsed.known_entries:
        log.debug(
            "%s: %d entries as in the last document, not parsed again; %d parsed",
            feed.url,
            parsed.known_entries,
            len(parsed.items),
            extra={"feed_url": feed.url},
        )
    return _in_declared_language(parsed, settings.lang)


def _in_declared_language(
    parsed: ParsedFeed | ParseFailed, lang: str | None
) -> ParsedFeed | ParseFailed:
    """The items in the feed's configured `lang:`, over what the document says of them."""
    if lang is None or isinstance(parsed, ParseFailed):
        return parsed
    items = [dataclasses.replace(item, lang=lang) for item in parsed.items]
    return dataclasses.replace(parsed, items=items)


async def _write(ctx: RefreshContext, feed: FeedState, polled: _Polled) -> RefreshOutcome:
    """Record the poll (in a transaction shared with others) and say what it brought."""
    if isinstance(polled.record, PollFailure):
        await ctx.writer.record_failure(polled.record)
        _log_failure(feed, polled.record, polled.retry_in, lasting=polled.lasting)
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
    parsed = await _parse(ctx, feed, settings, body, base_url=feed.fetch_url, headers=headers)
    if isinstance(parsed, ParseFailed):
        return RefreshOutcome(feed.url, "failed", error=str(parsed.error))
    seen = await seen_items(ctx.store, ctx.config, feed, settings, parsed.items, now=now)
    seen = await read_pages(ctx.pages(), ctx.config, feed, settings, seen, now=now)
    seen = await apply_mutes(ctx.store, ctx.config, feed, seen, now=now)
    result = await asyncio.to_thread(ctx.store.record_push, feed.id, now, seen)
    log.info(
        "%s: %d new items, %d alerts (pushed by the WebSub hub)",
        feed.url,
        result.new_items,
        result.alerts_created,
        extra={"feed_url": feed.url},
    )
    return RefreshOutcome(feed.url, "pushed", result.new_items, result.alerts_created)


# -- the poll's record: what the store keeps, and when to look again ----------------------------


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


def _unchanged(
    feed: FeedState,
    now: datetime,
    interval: timedelta,
    fetched: Fetched | NotModified,
    *,
    moved_to: str | None,
) -> _Polled:
    """Nothing new: the validators and the next check (the publisher may ask for a later one)."""
    status = 304 if isinstance(fetched, NotModified) else fetched.status
    wait = polite_wait(interval, cache_hint(fetched.headers, now))
    next_check = _next_check(feed, now, wait, interval)
    record = _record(feed, now, next_check, fetched.validators, status=status, moved_to=moved_to)
    return _Polled(record, RefreshOutcome(feed.url, "unchanged"))


def _next_check(feed: FeedState, now: datetime, wait: timedelta, interval: timedelta) -> datetime:
    if feed.first_polled_at is None:  # all the feeds added with it were due now too: spread
        return spread(now, wait, interval)
    return jittered(now, wait)


def _parsed(
    feed: FeedState,
    now: datetime,
    interval: timedelta,
    fetched: Fetched,
    parsed: ParsedFeed,
    *,
    seen: Sequence[SeenItem],
    digest: str,
    moved_to: str | None,
) -> _Polled:
    """A document read: its new items, and the next check outside the publisher's skips."""
    wait = polite_wait(interval, cache_hint(fetched.headers, now), parsed.ttl)
    next_check = _next_check(feed, now, wait, interval)
    next_check = past_skips(next_check, parsed.skip_hours, parsed.skip_days)
    record = dataclasses.replace(
        _record(
            feed, now, next_check, fetched.validators, status=fetched.status, moved_to=moved_to
        ),
        title=parsed.title,
        seen=tuple(seen),
        content_digest=digest,
        entry_digests=parsed.entry_digests,
    )
    outcome = RefreshOutcome(feed.url, "fetched", hubs=parsed.hub_links, topic=parsed.self_link)
    return _Polled(record, outcome)


def _record(
    feed: FeedState,
    now: datetime,
    next_check: datetime,
    validators: Validators,
    *,
    status: int,
    moved_to: str | None,
) -> PollRecord:
    """What every successful poll records; a parsed document adds its title, items, digest."""
    return PollRecord(
        feed.id,
        now,
        next_check_at=next_check,
        etag=validators.etag,
        last_modified=validators.last_modified,
        title=None,
        status=status,
        moved_to=moved_to,
        owner=feed.claimed_by,
    )


def _failed(
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
    outcome = RefreshOutcome(feed.url, "failed", error=error)
    return _Polled(failure, outcome, retry_in=wait, lasting=not failed.transient)


def _log_failure(
    feed: FeedState, failure: PollFailure, retry_in: timedelta, *, lasting: bool
) -> None:
    """What the user reads of a failure once it is recorded: a lasting one (a 4xx, not a feed,
    over a limit) is retried on the same schedule, but asks the user to look."""
    if failure.gone:
        log.error(
            "%s: %s; polling stopped: remove the feed from the config, or change its url",
            feed.url,
            failure.error,
            extra={"feed_url": feed.url},
        )
    else:
        log.warning(
            "%s: %s (failure %d in a row; next try in about %s)%s",
            feed.url,
            failure.error,
            feed.error_count + 1,
            approximate_duration(retry_in),
            "; this failure will not pass by itself: check the feed" if lasting else "",
            extra={"feed_url": feed.url},
        )


def feed_settings(config: LoadedConfig) -> Mapping[str, FeedConfig]:
    """The feeds in force by URL; one with `enabled: false` is as if absent."""
    return {feed.url: feed for feed in config.settings.feeds if feed.enabled}
