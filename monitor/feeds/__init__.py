"""Fetching and parsing feeds: the first two stages of the pipeline.

    fetcher.fetch_feed   URL -> Fetched | NotModified | FetchFailed   (httpx, conditional, capped)
    parser.parse_feed    bytes -> ParsedFeed | ParseFailed            (feedparser, JSON Feed)
    refresh              the one pipeline function for a feed (fetch, parse, store, alert)

Helpers: sniff (what a body is), compression (capped Content-Encoding), caching (Retry-After,
max-age, Expires), charset (a second opinion on wrongly declared charsets), jsonfeed, normalize
(plain text, absolute links, sane dates).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

# Imported on first use: a parse worker (monitor.processes) imports the parser alone, not the
# fetching side (httpx, the address guard) that every worker would otherwise hold.
_FETCHER = "monitor.feeds.fetcher"
_PARSER = "monitor.feeds.parser"
_ON_USE = {
    **dict.fromkeys(
        (
            "FetchFailed",
            "FetchLimits",
            "Fetched",
            "NotModified",
            "Validators",
            "cache_hint",
            "fetch_feed",
            "make_client",
            "retry_after",
        ),
        _FETCHER,
    ),
    **dict.fromkeys(("ParseFailed", "ParsedFeed", "parse_feed"), _PARSER),
}


def __getattr__(name: str) -> object:
    if name in _ON_USE:
        return getattr(importlib.import_module(_ON_USE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
