"""The article page behind an item's link: fetched politely and safely, its main text extracted.

    read_page(client, url, limits, robots, hosts, feed_url=…, headers=…)
      ├── robots.txt of the page's origin (fetched once per origin and ROBOTS_TTL, bounded)
      │     disallows our User-Agent ─────────────────────────────> PageFailed (disallowed)
      ├── GET as a feed is fetched (monitor.feeds.fetcher): capped bytes, a deadline, redirects
      │     followed by hand; every origin but the feed's own was chosen by the feed, so it is
      │     checked against the address policy where it connects and is sent none of the feed's
      │     headers; each request in the host's turn (monitor.feeds.hosts) ──> PageFailed
      ├── not HTML ──────────────────────────────────────────────> PageFailed
      └── the HTML ───────────────────────────────────────────────> Page
    extract_text(page) -> the main text (trafilatura), or None: a worker thread runs it

Extraction costs CPU in proportion to the page: the byte cap of the fetch is what bounds it.
trafilatura and its dependencies take a noticeable time to import, so they are imported on the
first extraction, never by a daemon that reads no pages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import urllib.robotparser
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

from monitor.errors import FeedError, PermanentFeedError, TransientFeedError
from monitor.feeds.fetcher import (
    USER_AGENT,
    Fetched,
    FetchFailed,
    FetchLimits,
    Validators,
    fetch_feed,
)
from monitor.feeds.hosts import HostLimiter
from monitor.http.guard import Origin, origin

ROBOTS_TTL = 3600.0  # seconds a robots.txt is trusted (RFC 9309 asks for at most a day)
ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: parse at least 500 KiB
MAX_TEXT_CHARS = 50_000  # of a page's main text: what matching and the store take of it
_HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass(frozen=True, slots=True)
class Page:
    url: str  # after redirects
    body: bytes  # the HTML, as served (Content-Encoding undone)


@dataclass(frozen=True, slots=True)
class PageFailed:
    error: FeedError  # str() is for users; transient or permanent as for feeds
    disallowed: bool = False  # robots.txt said no


@dataclass(slots=True)
class _Rules:
    parser: urllib.robotparser.RobotFileParser
    until: float
    unavailable: FeedError | None = None  # no robots.txt could be read: nothing is fetched


@dataclass
class RobotsCache:
    """robots.txt per origin, for `ttl` seconds of `clock`; kept across hot reloads."""

    ttl: float = ROBOTS_TTL
    clock: Callable[[], float] = time.monotonic
    user_agent: str = USER_AGENT
    _rules: dict[Origin, _Rules] = field(default_factory=dict)
    _locks: dict[Origin, asyncio.Lock] = field(default_factory=dict)

    async def refusal(
        self,
        client: httpx.AsyncClient,
        url: str,
        limits: FetchLimits,
        hosts: HostLimiter,
        *,
        feed_url: str,
    ) -> PageFailed | None:
        """None when the robots.txt of `url`'s origin lets our User-Agent fetch it; else why
        not (its rules, or no robots.txt to be had)."""
        key = origin(url)
        async with self._locks.setdefault(key, asyncio.Lock()):  # one fetch per origin
            rules = self._rules.get(key)
            if rules is None or rules.until <= self.clock():
                rules = await _robots(client, key, limits, hosts, feed_url=feed_url)
                rules.until = self.clock() + self.ttl
                self._rules[key] = rules
        if rules.unavailable is not None:
            error = type(rules.unavailable)(f"robots.txt not readable: {rules.unavailable}")
            return PageFailed(error, disallowed=True)
        if not rules.parser.can_fetch(self.user_agent, url):
            return PageFailed(PermanentFeedError("disallowed by robots.txt"), disallowed=True)
        return None


async def _robots(
    client: httpx.AsyncClient,
    key: Origin,
    limits: FetchLimits,
    hosts: HostLimiter,
    *,
    feed_url: str,
) -> _Rules:
    """The origin's rules, as RFC 9309 reads an answer: a 4xx (none there) allows everything;
    a 5xx, a 429 or no answer disallows everything until the next look."""
    scheme, host, port = key
    default = {"http": 80, "https": 443}.get(scheme)
    shown_host = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{shown_host}{'' if port == default else f':{port}'}/robots.txt"
    bounded = dataclasses.replace(limits, max_bytes=min(limits.max_bytes, ROBOTS_MAX_BYTES))
    async with hosts.slot(url):
        result = await fetch_feed(client, url, Validators(), bounded, configured=feed_url)
    parser = urllib.robotparser.RobotFileParser(url)
    if isinstance(result, Fetched):
        parser.parse(result.body.decode("utf-8", errors="replace").splitlines())
        return _Rules(parser, 0.0)
    status = result.status if isinstance(result, FetchFailed) else None
    if status is not None and 400 <= status < 500 and status != 429:
        parser.parse([])  # no rules: everything allowed
        return _Rules(parser, 0.0)
    parser.parse(["User-agent: *", "Disallow: /"])
    error = result.error if isinstance(result, FetchFailed) else TransientFeedError("HTTP 304")
    return _Rules(parser, 0.0, unavailable=error)


async def read_page(
    client: httpx.AsyncClient,
    url: str,
    limits: FetchLimits,
    robots: RobotsCache,
    hosts: HostLimiter,
    *,
    feed_url: str,
    headers: Mapping[str, str] | None = None,
) -> Page | PageFailed:
    """The HTML at `url` (an item's link in the feed at `feed_url`); never raises for the
    page's own failures. `headers` (the feed's) go to the feed's own origin only."""
    if not url.startswith(("http://", "https://")):
        return PageFailed(PermanentFeedError(f"not an http(s) link: {url[:200]}"))
    refused = await robots.refusal(client, url, limits, hosts, feed_url=feed_url)
    if refused is not None:
        return refused
    async with hosts.slot(url):
        result = await fetch_feed(
            client, url, Validators(), limits, configured=feed_url, headers=headers
        )
    if isinstance(result, FetchFailed):
        return PageFailed(result.error)
    if not isinstance(result, Fetched):  # a 304 to a request that had no validators
        return PageFailed(TransientFeedError("HTTP 304 to an unconditional request"))
    kind = result.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind and kind not in _HTML_TYPES:
        return PageFailed(PermanentFeedError(f"not an HTML page ({kind[:100]})"))
    return Page(result.url, result.body)


def extract_text(page: Page) -> str | None:
    """The page's main text (no navigation, ads or comments), at most MAX_TEXT_CHARS; None when
    the extractor finds none. Blocking and CPU-bound: run it in a worker thread."""
    import trafilatura  # noqa: PLC0415 - heavy: imported only where pages are read (docstring)

    text = trafilatura.extract(
        page.body,
        url=page.url,
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
    )
    if not text or not text.strip():
        return None
    return text[:MAX_TEXT_CHARS]


def page_limits(limits: FetchLimits, *, max_bytes: int, deadline: float) -> FetchLimits:
    """The limits of a page fetch: the feed limits' address policy and timeouts, the page's
    own size and deadline."""
    return dataclasses.replace(limits, max_bytes=max_bytes, deadline=deadline)
