"""`monitor match --feed FILE_OR_URL`: the items of one feed document, read as the daemon reads
them (the real fetcher with the config's fetch limits, the real parser), for a dry run."""

from __future__ import annotations

import asyncio
from pathlib import Path

from monitor.config.settings import LoadedConfig
from monitor.feeds.fetcher import Fetched, FetchLimits, Validators, fetch_feed, make_client
from monitor.feeds.parser import ParseFailed, parse_feed
from monitor.models import Item, Match
from monitor.pipeline.fulltext import dry_run_pages

PageRead = tuple[str, list[Match]]  # an article page's main text, and the matches it adds


class FeedInputError(Exception):
    """The feed could not be read or parsed; str() says why, for the user."""

    def __init__(self, message: str, *, fetching: bool = False) -> None:
        super().__init__(message)
        self.fetching = fetching  # a network or server problem, not the input's


def feed_items(source: str, limits: FetchLimits) -> list[tuple[Item, str]]:
    """The items of the feed at `source` (an http(s) URL or a file), each with its item id."""
    if source.startswith(("http://", "https://")):
        body, headers, url, base = _fetch(source, limits)
    else:
        body, headers, url, base = _read(Path(source), limits.max_bytes), {}, "", None
    # a file has no feed URL: every rule watches it, whatever its `feeds:` say
    parsed = parse_feed(body, url=url, headers=headers, base_url=base)
    if isinstance(parsed, ParseFailed):
        raise FeedInputError(f"{source}: {parsed.error}")
    return [(item, item.guid or item.link or item.content_hash()) for item in parsed.items]


def _read(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as stream:
            body = stream.read(max_bytes + 1)
    except OSError as exc:
        raise FeedInputError(f"{path}: cannot read: {exc.strerror}") from None
    if len(body) > max_bytes:
        raise FeedInputError(f"{path}: larger than the {max_bytes} bytes a feed may have")
    return body


def _fetch(url: str, limits: FetchLimits) -> tuple[bytes, dict[str, str], str, str]:
    async def get() -> Fetched:
        async with make_client(limits=limits) as client:
            result = await fetch_feed(client, url, Validators(), limits)
        if not isinstance(result, Fetched):
            error = getattr(result, "error", "not modified")
            raise FeedInputError(f"{url}: {error}", fetching=True)
        return result

    fetched = asyncio.run(get())
    return fetched.body, fetched.headers, url, fetched.url


def read_pages(
    config: LoadedConfig, items: list[tuple[Item, str]], source: str
) -> dict[Item, PageRead]:
    """`--fulltext`: the article pages the daemon would read for these items, read the same way
    (monitor.pipeline.fulltext.dry_run_pages), with the matches they add."""
    return asyncio.run(dry_run_pages(config, [item for item, _id in items], feed_url=source))
