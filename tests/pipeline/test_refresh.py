"""refresh_feed in process, over a real server and a real SQLite store."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config.settings import load_config
from monitor.feeds.bounds import MAX_ENTRIES
from monitor.feeds.fetcher import make_client
from monitor.pipeline.refresh import feed_settings, refresh_context, refresh_feed
from monitor.store import PollResult, Store
from monitor.store.store import PollFailure, PollRecord
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.servers import LocalServer


async def test_a_poll_waiting_for_its_write_leaves_its_slot_to_the_next_fetch(
    tmp_path: Path, server: LocalServer
) -> None:
    """With one poll slot, a second feed is fetched while the first one's transaction is held
    up: a poll holds its slot from fetch to matching, not while its outcome is written."""
    paths = {"/wire.xml": "havana-wire.xml", "/prensa.xml": "prensa-es.xml"}
    for path, name in paths.items():
        serve_feed(server, path, feed_document(name))
    urls = [server.url(path) for path in paths]
    config = load_config(
        write_config(tmp_path / "config", feeds=[{"url": url} for url in urls]), environ={}
    )
    store = await asyncio.to_thread(Store.open, config.storage_url)
    writing, writes_may_go = threading.Event(), threading.Event()
    record_polls = store.record_polls

    def held_up(polls: Sequence[PollRecord | PollFailure]) -> list[PollResult | None]:
        writing.set()
        assert writes_may_go.wait(10)
        return record_polls(polls)

    store.record_polls = held_up  # type: ignore[method-assign]
    try:
        now = datetime.now(UTC)
        store.sync_feeds([(url, None) for url in urls], now)
        first, second = sorted(
            store.claim_feeds(now, timedelta(minutes=5), due_only=False),
            key=lambda feed: urls.index(feed.url),
        )
        settings = feed_settings(config)
        async with make_client() as client:
            context = refresh_context(store, client, config, poll_slots=asyncio.Semaphore(1))
            polls = [asyncio.create_task(refresh_feed(context, first, settings[first.url]))]
            assert await asyncio.to_thread(writing.wait, 10)  # the first poll is being written
            polls.append(asyncio.create_task(refresh_feed(context, second, settings[second.url])))
            fetched_second = await asyncio.to_thread(
                server.wait_for, lambda requests: any(r.path == "/prensa.xml" for r in requests), 5
            )
            writes_may_go.set()
            outcomes = await asyncio.gather(*polls)
        assert fetched_second
        assert [(o.feed_url, o.status) for o in outcomes] == [(url, "fetched") for url in urls]
        assert all(outcome.new_items > 0 for outcome in outcomes)
        assert [feed.last_status for feed in store.feeds()] == [200, 200]
    finally:
        writes_may_go.set()
        await asyncio.to_thread(store.close)


def test_a_reload_keeps_the_slots_and_the_writer_and_takes_the_new_limits(tmp_path: Path) -> None:
    """What outlives a rule edit (poll and parse slots, the group-commit writer) is kept by
    `reloaded`; what the new config says (its fetch limits, its rules) is taken from it."""
    directory = write_config(tmp_path / "config", feeds=[{"url": "http://127.0.0.1:9/feed.xml"}])
    config = load_config(directory, environ={})
    context = refresh_context(None, None, config)  # type: ignore[arg-type]
    text = (directory / "monitor.yaml").read_text(encoding="utf-8")
    (directory / "monitor.yaml").write_text(text + "fetch:\n  max_size_mib: 1\n", encoding="utf-8")
    newer = load_config(directory, environ={})
    reloaded = context.reloaded(newer)
    assert reloaded.config is newer
    assert reloaded.limits == newer.settings.fetch.limits() != context.limits
    kept = ("poll_slots", "parse_slots", "writer", "hosts")
    assert all(getattr(reloaded, name) is getattr(context, name) for name in kept)


async def test_a_failure_that_will_not_pass_by_itself_says_so(
    tmp_path: Path, server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A 404 (a PermanentFeedError) and a 503 (transient) are retried on the same schedule; the
    404's log line also asks the user to look at the feed."""
    server.static("/missing.xml", b"not here", status=404)
    server.static("/busy.xml", b"try later", status=503)
    urls = [server.url("/missing.xml"), server.url("/busy.xml")]
    config = load_config(
        write_config(tmp_path / "config", feeds=[{"url": url} for url in urls]), environ={}
    )
    store = await asyncio.to_thread(Store.open, config.storage_url)
    try:
        now = datetime.now(UTC)
        store.sync_feeds([(url, None) for url in urls], now)
        claimed = store.claim_feeds(now, timedelta(minutes=5), due_only=False)
        settings = feed_settings(config)
        async with make_client() as client:
            context = refresh_context(store, client, config)
            with caplog.at_level("WARNING", logger="monitor.pipeline.refresh"):
                outcomes = [await refresh_feed(context, f, settings[f.url]) for f in claimed]
        checks = {feed.url: feed.next_check_at for feed in store.feeds()}
    finally:
        await asyncio.to_thread(store.close)
    assert {o.status for o in outcomes} == {"failed"}
    lines = {
        url: [r.getMessage() for r in caplog.records if r.getMessage().startswith(url)]
        for url in urls
    }
    (missing,), (busy,) = lines[urls[0]], lines[urls[1]]
    assert missing.endswith(
        "(failure 1 in a row; next try in about 10m); "
        "this failure will not pass by itself: check the feed"
    ), missing
    assert busy.endswith("(failure 1 in a row; next try in about 10m)"), busy
    waits = [checks[url] - now for url in urls]
    assert all(timedelta(minutes=10) <= wait <= timedelta(minutes=12) for wait in waits), waits


async def test_entries_past_the_cap_are_not_dropped_silently(
    tmp_path: Path, server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    items = "".join(
        f"<item><title>Story {n}</title><link>https://a.example/{n}</link></item>"
        for n in range(MAX_ENTRIES + 5)
    )
    body = f"<rss version='2.0'><channel><title>Big</title>{items}</channel></rss>".encode()
    server.static("/big.xml", body, headers={"Content-Type": "application/rss+xml"})
    url = server.url("/big.xml")
    config = load_config(write_config(tmp_path / "config", feeds=[{"url": url}]), environ={})
    store = await asyncio.to_thread(Store.open, config.storage_url)
    try:
        now = datetime.now(UTC)
        store.sync_feeds([(url, None)], now)
        (feed,) = store.claim_feeds(now, timedelta(minutes=5), due_only=False)
        async with make_client() as client:
            context = refresh_context(store, client, config)
            with caplog.at_level("WARNING", logger="monitor.pipeline.refresh"):
                outcome = await refresh_feed(context, feed, feed_settings(config)[url])
    finally:
        await asyncio.to_thread(store.close)
    assert outcome.status == "fetched"
    assert outcome.new_items == MAX_ENTRIES
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [f"{url}: read only the first {MAX_ENTRIES} of its {MAX_ENTRIES + 5} entries"]


def _wire(*numbers: int) -> bytes:
    items = "".join(
        f"<item><title>Story {n}</title><link>https://a.example/{n}</link>"
        f"<guid>urn:wire:{n}</guid><description>Text of story {n}.</description></item>"
        for n in numbers
    )
    return f"<rss version='2.0'><channel><title>Wire</title>{items}</channel></rss>".encode()


async def test_a_changed_feed_parses_only_the_entries_its_last_document_lacked(
    tmp_path: Path, server: LocalServer, storage_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Three items, then a fourth: the second poll parses one entry and records it; a 304
    keeps the digests for the next change. Over a real server and each store."""
    url = server.url("/wire.xml")
    directory = write_config(tmp_path / "config", feeds=[{"url": url}], storage=storage_url)
    config = load_config(directory, environ={})
    store = await asyncio.to_thread(Store.open, config.storage_url)

    async def poll() -> tuple[str, int]:
        now = datetime.now(UTC)
        (feed,) = store.claim_feeds(now, timedelta(minutes=5), due_only=False)
        async with make_client() as client:
            context = refresh_context(store, client, config)
            outcome = await refresh_feed(context, feed, feed_settings(config)[url])
        return outcome.status, outcome.new_items

    def digests() -> int:
        (feed,) = store.feeds()
        return len(feed.entry_digests or b"")

    try:
        store.sync_feeds([(url, None)], datetime.now(UTC))
        serve_feed(server, "/wire.xml", _wire(3, 2, 1))
        assert await poll() == ("fetched", 3)
        assert digests() == 3 * 8
        serve_feed(server, "/wire.xml", _wire(4, 3, 2, 1))
        with caplog.at_level("DEBUG", logger="monitor.pipeline.refresh"):
            assert await poll() == ("fetched", 1)
        assert f"{url}: 3 entries as in the last document, not parsed again; 1 parsed" in [
            record.getMessage() for record in caplog.records
        ]
        assert await poll() == ("unchanged", 0)
        assert digests() == 4 * 8
        (feed,) = store.feeds()
        assert len(store.item_identities(feed.id, guids=["urn:wire:4"], links=[], hashes=[])) == 1
    finally:
        await asyncio.to_thread(store.close)
