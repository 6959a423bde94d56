"""Full text: the article pages of the new items some rule wants to read further.

    the new items of a poll or a push, with their alerts (monitor.pipeline.alerting)
    -> candidates: they may alert, have an http(s) link, and some rule that reads pages (its
       own `fulltext`, or every rule on a feed with `fulltext`) did not match them but passes
       its prefilter on the feed's text (Matcher.page_candidates; docs/rules.md, "Full text")
    -> pages read before, by this daemon or a replica (monitor.store.pages): not fetched again
    -> the others, at most `fetch.fulltext.max_pages_per_poll` of them: fetched
       (monitor.feeds.article: robots.txt, the host's turn, the address policy, the caps), their
       main text extracted in a worker thread, a few at a time (the parse slots), and recorded,
       text or failure, so that no page is fetched twice
    -> each candidate with a text: matched again, the text as its `content`; the candidate rules
       that match now add their alerts, their hits in `content` marked `source: page`

A page only adds alerts: what matched on the feed's text stands, and rules that do not read
pages never see the page's text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx

from monitor.config.settings import FeedConfig, FullTextSettings, LoadedConfig
from monitor.feeds.article import (
    PageFailed,
    RobotsCache,
    extract_text,
    page_limits,
    read_page,
)
from monitor.feeds.fetcher import FetchLimits, make_client
from monitor.feeds.hosts import HostLimiter
from monitor.http.urls import shown_url
from monitor.matching import Matcher
from monitor.models import Item, Match
from monitor.pipeline.alerting import alerts_for, may_alert
from monitor.store import FeedState, SeenItem, Store
from monitor.store.pages import StoredPage, prune_pages, record_pages, stored_pages

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PageReader:
    """What reading pages needs: the feeds' client, host turns and limits, and its own robots.txt
    cache (kept across hot reloads)."""

    store: Store
    client: httpx.AsyncClient
    hosts: HostLimiter
    robots: RobotsCache
    slots: asyncio.Semaphore  # extractions at once: the parse slots
    limits: FetchLimits  # the feeds' (the address policy); a page's size and deadline are its own
    settings: FullTextSettings


@dataclass(frozen=True, slots=True)
class _Candidate:
    index: int  # in the poll's new items
    url: str
    rules: tuple[str, ...]  # the rules that want the page


async def read_pages(
    reader: PageReader,
    config: LoadedConfig,
    feed: FeedState,
    settings: FeedConfig,
    seen: Sequence[SeenItem],
    *,
    now: datetime,
) -> list[SeenItem]:
    """`seen` with the alerts the article pages of its candidates add (docstring above)."""
    matcher = config.matcher
    if not seen or not (settings.fulltext or matcher.reads_pages):
        return list(seen)
    backfill = config.feed_backfill(settings)
    eligible = may_alert([entry.item for entry in seen], feed, backfill, now)
    wanted = _candidates(matcher, seen, eligible, every_rule=settings.fulltext)
    if not wanted:
        return list(seen)
    texts = await _texts(reader, feed, settings, [c.url for c in wanted], now)
    result = list(seen)
    added = 0
    for candidate in wanted:
        text = texts.get(candidate.url)
        if text:
            entry = seen[candidate.index]
            result[candidate.index] = _with_page(config, entry, candidate, text, now)
            added += len(result[candidate.index].alerts) - len(entry.alerts)
    if added:
        log.info("%s: %d alerts from article pages", feed.url, added, extra={"feed_url": feed.url})
    return result


def _candidates(
    matcher: Matcher, seen: Sequence[SeenItem], eligible: set[Item], *, every_rule: bool
) -> list[_Candidate]:
    found: list[_Candidate] = []
    for index, entry in enumerate(seen):
        link = entry.item.link or ""
        if entry.item not in eligible or not link.startswith(("http://", "https://")):
            continue
        matched = {alert.rule_id for alert in entry.alerts}
        rules = matcher.page_candidates(entry.item, matched, every_rule=every_rule)
        if rules:
            found.append(_Candidate(index, link, rules))
    return found


async def _texts(
    reader: PageReader, feed: FeedState, settings: FeedConfig, urls: list[str], now: datetime
) -> dict[str, str | None]:
    """The main text of each page (None: not readable), from the store or fetched now."""
    unique = list(dict.fromkeys(urls))
    stored = await asyncio.to_thread(stored_pages, reader.store.engine, unique)
    missing = [url for url in unique if url not in stored]
    budget = reader.settings.max_pages_per_poll
    if len(missing) > budget:
        log.warning(
            "%s: %d article pages not read: over fetch.fulltext.max_pages_per_poll (%d); "
            "those items are matched on the feed's text alone",
            feed.url,
            len(missing) - budget,
            budget,
            extra={"feed_url": feed.url},
        )
    limits = page_limits(
        reader.limits,
        max_bytes=reader.settings.max_size_kib * 1024,
        deadline=reader.settings.deadline.total_seconds(),
    )
    read = await asyncio.gather(
        *(_read(reader, url, limits, feed, settings, now=now) for url in missing[:budget])
    )
    if read:
        keep_since = now - reader.settings.keep
        await asyncio.to_thread(_record, reader.store, read, keep_since)
    texts = {url: page.text for url, page in stored.items()}
    texts.update((page.url, page.text) for page in read)
    return texts


async def _read(
    reader: PageReader,
    url: str,
    limits: FetchLimits,
    feed: FeedState,
    settings: FeedConfig,
    *,
    now: datetime,
) -> StoredPage:
    """One page's main text, or why there is none; never raises for the page's own faults."""
    page = await read_page(
        reader.client,
        url,
        limits,
        reader.robots,
        reader.hosts,
        feed_url=feed.url,
        headers=settings.request_headers(),
    )
    if isinstance(page, PageFailed):
        return _unread(feed, url, now, str(page.error))
    async with reader.slots:
        try:
            text = await asyncio.to_thread(extract_text, page)
        except Exception as error:
            return _unread(feed, url, now, f"text extraction failed: {type(error).__name__}")
    if text is None:
        return _unread(feed, url, now, "no main text found on the page")
    return StoredPage(url, now, text)


def _unread(feed: FeedState, url: str, now: datetime, error: str) -> StoredPage:
    log.info(
        "%s: article page %s not read: %s",
        feed.url,
        shown_url(url),
        error,
        extra={"feed_url": feed.url},
    )
    return StoredPage(url, now, None, error)


def _record(store: Store, read: Sequence[StoredPage], keep_since: datetime) -> None:
    record_pages(store.engine, read)
    prune_pages(store.engine, keep_since)  # indexed on fetched_at: cheap when nothing is old


def page_matches(matcher: Matcher, item: Item, text: str, rules: Collection[str]) -> list[Match]:
    """The matches of `rules` on `item` with `text` (its page's) as its content, their hits in
    `content` marked as the page's."""
    reread = dataclasses.replace(item, content=text)
    return [_from_page(match) for match in matcher.match(reread) if match.rule_id in rules]


async def dry_run_pages(
    config: LoadedConfig, items: Sequence[Item], *, feed_url: str
) -> dict[Item, tuple[str, list[Match]]]:
    """`monitor match --feed … --fulltext`: the page text and the page's matches of each item
    the daemon would read the page of (every item counts as new), fetched as the daemon fetches
    them (robots.txt, host turns, the address policy, the caps and the per-poll budget), recorded
    nowhere. A configured feed's `fulltext` and `headers:` apply."""
    fetch = config.settings.fetch
    configured = next((feed for feed in config.settings.feeds if feed.url == feed_url), None)
    every_rule = configured is not None and configured.fulltext
    headers = configured.request_headers() if configured is not None else {}
    wanted = [
        (item, rules)
        for item in items
        if (rules := _rules_wanting(config.matcher, item, every_rule=every_rule))
    ]
    limits = page_limits(
        fetch.limits(),
        max_bytes=fetch.fulltext.max_size_kib * 1024,
        deadline=fetch.fulltext.deadline.total_seconds(),
    )
    robots, hosts = RobotsCache(), HostLimiter(fetch.per_host, fetch.host_spacing)
    links = list(dict.fromkeys(item.link or "" for item, _rules in wanted))
    async with make_client(limits=limits) as client:
        texts = await asyncio.gather(
            *(
                _dry_read(
                    client,
                    link,
                    limits=limits,
                    robots=robots,
                    hosts=hosts,
                    feed_url=feed_url,
                    headers=headers,
                )
                for link in links[: fetch.fulltext.max_pages_per_poll]
            )
        )
    by_link = dict(zip(links, texts, strict=False))
    return {
        item: (text, page_matches(config.matcher, item, text, rules))
        for item, rules in wanted
        if (text := by_link.get(item.link or ""))
    }


def _rules_wanting(matcher: Matcher, item: Item, *, every_rule: bool) -> tuple[str, ...]:
    if not (item.link or "").startswith(("http://", "https://")):
        return ()
    matched = {match.rule_id for match in matcher.match(item)}
    return matcher.page_candidates(item, matched, every_rule=every_rule)


async def _dry_read(
    client: httpx.AsyncClient,
    url: str,
    *,
    limits: FetchLimits,
    robots: RobotsCache,
    hosts: HostLimiter,
    feed_url: str,
    headers: Mapping[str, str],
) -> str | None:
    page = await read_page(client, url, limits, robots, hosts, feed_url=feed_url, headers=headers)
    if isinstance(page, PageFailed):
        log.warning("article page %s not read: %s", shown_url(url), page.error)
        return None
    try:
        return await asyncio.to_thread(extract_text, page)
    except Exception as error:
        log.warning("article page %s: text extraction failed: %r", shown_url(url), error)
        return None


def _with_page(
    config: LoadedConfig, entry: SeenItem, candidate: _Candidate, text: str, now: datetime
) -> SeenItem:
    """The entry with the alerts of the candidate rules that match with the page's text."""
    matches = page_matches(config.matcher, entry.item, text, candidate.rules)
    if not matches:
        return entry
    taken = {hook for alert in entry.alerts for hook in alert.webhooks}
    alerts = alerts_for(config, entry.item, matches, now, taken=taken)
    return dataclasses.replace(entry, alerts=(*entry.alerts, *alerts))


def _from_page(match: Match) -> Match:
    """The match with its hits in `content` marked as the page's."""
    hits = tuple(
        dataclasses.replace(hit, source="page") if hit.field == "content" else hit
        for hit in match.hits
    )
    return dataclasses.replace(match, hits=hits)
