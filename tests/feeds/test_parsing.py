"""Parsing in worker processes gives exactly what parsing in a thread gives; workers start
for a large document only, never because parses queue up, and stop once idle."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from monitor.feeds.parser import ParsedFeed, ParseFailed, parse_feed
from monitor.feeds.parsing import (
    IDLE_SECONDS,
    LARGE_BODY,
    POOL_MIN_FEEDS,
    Parsers,
    parse_off_loop,
    use_processes,
)
from tests.support.clock import ManualClock
from tests.support.pipeline import feed_document

URL = "http://127.0.0.1/wire.xml"
HEADERS = {"content-type": "application/rss+xml"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def parsers(clock: ManualClock) -> Iterator[Parsers]:
    parsers = Parsers(clock=clock, workers=1)
    yield parsers
    parsers.stop()


def parse(body: bytes) -> partial[ParsedFeed | ParseFailed]:
    return partial(parse_feed, body, url=URL, base_url=URL, headers=HEADERS, feed_name="Wire")


def large_document() -> bytes:
    """The test feed made larger than LARGE_BODY by a comment, which parses to the same items."""
    body = feed_document("havana-wire.xml")
    start = body.index(b"<rss")
    return body[:start] + b"<!--" + b" " * LARGE_BODY + b"-->\n" + body[start:]


async def parse_in(parsers: Parsers, body: bytes) -> ParsedFeed | ParseFailed:
    return await parse_off_loop(
        body,
        url=URL,
        base_url=URL,
        headers=HEADERS,
        feed_name="Wire",
        processes=True,
        parsers=parsers,
    )


async def exited(workers: set[multiprocessing.process.BaseProcess]) -> bool:
    for worker in workers:
        await asyncio.to_thread(worker.join, 60)
    return not any(worker.is_alive() for worker in workers)


async def test_processes_and_threads_parse_alike() -> None:
    body = feed_document("havana-wire.xml")
    common = {"url": URL, "base_url": URL, "headers": HEADERS, "feed_name": "Wire"}
    in_thread = await parse_off_loop(body, processes=False, **common)  # type: ignore[arg-type]
    in_process = await parse_off_loop(body, processes=True, **common)  # type: ignore[arg-type]
    assert isinstance(in_process, ParsedFeed)
    assert in_process == in_thread
    assert len(in_process.items) == 4


async def test_parses_queued_up_stay_in_threads(parsers: Parsers) -> None:
    """However many wait: workers would cost two processes for little (the module's reason)."""
    body = feed_document("havana-wire.xml")
    expected = parse(body)()
    gate = threading.Event()

    def held() -> ParsedFeed | ParseFailed:
        gate.wait(60)
        return parse(body)()

    before = set(multiprocessing.active_children())
    holding = [asyncio.create_task(parsers.parse(held, size=0, processes=True)) for _ in range(4)]
    await asyncio.sleep(0)  # all are in their threads now
    assert await parse_in(parsers, body) == expected  # a fifth: in a thread too
    assert not parsers.pool_running
    gate.set()
    assert [await task for task in holding] == [expected] * 4
    assert set(multiprocessing.active_children()) == before


async def test_workers_stop_once_idle_and_small_documents_never_use_them(
    parsers: Parsers, clock: ManualClock
) -> None:
    large, small = large_document(), feed_document("havana-wire.xml")
    expected = parse(large)()
    before = set(multiprocessing.active_children())
    assert await parse_in(parsers, large) == expected
    assert parsers.pool_running
    workers = set(multiprocessing.active_children()) - before
    assert len(workers) == 1

    clock.now += IDLE_SECONDS - 1
    assert not parsers.stop_if_idle()
    assert await parse_in(parsers, small) == parse(small)()  # in a thread, the pool running
    clock.now += 1
    assert parsers.stop_if_idle()  # the small one did not count: idle since the large one
    assert not parsers.pool_running
    assert await exited(workers)
    assert await parse_in(parsers, large) == expected  # the next large one starts new workers
    clock.now += IDLE_SECONDS - 1  # idle counts from the last parse in a worker
    assert not parsers.stop_if_idle()
    clock.now += 1
    assert parsers.stop_if_idle()


async def test_a_large_document_parses_in_a_worker(parsers: Parsers) -> None:
    body = large_document()
    assert len(body) > LARGE_BODY
    result = await parse_in(parsers, body)
    assert parsers.pool_running
    assert isinstance(result, ParsedFeed)
    assert result == parse(body)()
    assert len(result.items) == 4


async def test_without_processes_nothing_starts_workers(parsers: Parsers) -> None:
    result = await parsers.parse(parse(large_document()), size=LARGE_BODY, processes=False)
    assert isinstance(result, ParsedFeed)
    assert not parsers.pool_running


async def test_the_idle_timer_stops_the_workers() -> None:
    parsers = Parsers(idle_seconds=0.0, workers=1)  # the real clock, and no wait
    before = set(multiprocessing.active_children())
    await parse_in(parsers, large_document())
    workers = set(multiprocessing.active_children()) - before
    assert workers
    for _ in range(100):  # the timer runs on one of the loop's next turns
        if not parsers.pool_running:
            break
        await asyncio.sleep(0)
    assert not parsers.pool_running
    assert await exited(workers)


async def test_a_killed_worker_costs_one_parse_in_a_thread(parsers: Parsers) -> None:
    body = large_document()
    before = set(multiprocessing.active_children())
    await parse_in(parsers, body)
    (worker,) = set(multiprocessing.active_children()) - before
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    assert await exited({worker})
    result = await parse_in(parsers, body)  # the broken pool fails it: parsed in a thread
    assert isinstance(result, ParsedFeed)
    assert not parsers.pool_running
    assert await parse_in(parsers, body) == result  # and the next one starts new workers
    assert parsers.pool_running


def test_small_configs_parse_in_threads() -> None:
    assert not use_processes(POOL_MIN_FEEDS - 1)


SCRIPT = """\
from concurrent.futures import ProcessPoolExecutor

from monitor.cli.main import entry  # what the `monitor` console script imports
from monitor.processes import forkserver, name_main_after_the_package

NAMES = (
    "monitor.cli.main", "sqlalchemy", "pydantic", "httpx", "monitor.feeds.fetcher",
    "monitor.feeds.parser",
)
CHECK = f"[name in __import__('sys').modules for name in {NAMES}]"
if __name__ == "__main__":
    name_main_after_the_package()  # as entry() does first
    with ProcessPoolExecutor(1, mp_context=forkserver()) as pool:
        print(pool.submit(eval, CHECK).result())
"""


def test_a_worker_of_a_script_holds_the_parser_not_the_application(tmp_path: Path) -> None:
    """Started from a script, as from the `monitor` console script, a worker does not run the
    script again: it has the parser the forkserver preloaded, not monitor.cli.main, nor the
    fetching side that shares the parser's package."""
    script = tmp_path / "monitor-like"
    script.write_text(SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[False, False, False, False, False, True]"
