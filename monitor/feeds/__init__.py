"""Fetching and parsing feeds: the first two stages of the pipeline.

    fetcher.fetch_feed   URL -> Fetched | NotModified | FetchFailed   (httpx, conditional, capped)
    parser.parse_feed    bytes -> ParsedFeed | ParseFailed            (feedparser, JSON Feed)
    refresh              the one pipeline function for a feed (fetch, parse, store, alert)

Helpers: sniff (what a body is), compression (capped Content-Encoding), caching (Retry-After,
max-age, Expires), charset (a second opinion on wrongly declared charsets), jsonfeed, normalize
(plain text, absolute links, sane dates).
"""

from monitor.feeds.fetcher import (
    Fetched,
    FetchFailed,
    FetchLimits,
    NotModified,
    Validators,
    cache_hint,
    fetch_feed,
    make_client,
    retry_after,
)
from monitor.feeds.parser import ParsedFeed, ParseFailed, parse_feed

__all__ = [
    "FetchFailed",
    "FetchLimits",
    "Fetched",
    "NotModified",
    "ParseFailed",
    "ParsedFeed",
    "Validators",
    "cache_hint",
    "fetch_feed",
    "make_client",
    "parse_feed",
    "retry_after",
]
