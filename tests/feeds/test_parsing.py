"""Parsing in worker processes gives exactly what parsing in a thread gives."""

from __future__ import annotations

from monitor.feeds.parser import ParsedFeed
from monitor.feeds.parsing import POOL_MIN_FEEDS, parse_off_loop, use_processes
from tests.support.pipeline import feed_document


async def test_processes_and_threads_parse_alike() -> None:
    body = feed_document("havana-wire.xml")
    common = {
        "url": "http://127.0.0.1/wire.xml",
        "base_url": "http://127.0.0.1/wire.xml",
        "headers": {"content-type": "application/rss+xml"},
        "feed_name": "Wire",
    }
    in_thread = await parse_off_loop(body, processes=False, **common)  # type: ignore[arg-type]
    in_process = await parse_off_loop(body, processes=True, **common)  # type: ignore[arg-type]
    assert isinstance(in_process, ParsedFeed)
    assert in_process == in_thread
    assert len(in_process.items) == 4


def test_small_configs_parse_in_threads() -> None:
    assert not use_processes(POOL_MIN_FEEDS - 1)
