"""Feed leases of a `run --once` that died, and of one still running, seen by the next run.

A real `monitor run --once` subprocess polls feeds whose server holds its answers until the
test releases them; it is SIGKILLed there, or left running while a second run starts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config.settings import load_config
from monitor.runtime import once
from tests.conftest import run_cli
from tests.support.pipeline import HeldFeeds, write_config
from tests.support.servers import LocalServer

PATHS = ("/wire.xml", "/other.xml")


@pytest.fixture
def held(server: LocalServer) -> Iterator[HeldFeeds]:
    feeds = HeldFeeds(server, PATHS, hold=len(PATHS))
    yield feeds
    feeds.release.set()


def _start_polling(config: Path, log: Path, held: HeldFeeds) -> subprocess.Popen[bytes]:
    """A `run --once` subprocess, returned once every feed request of it has arrived."""
    with log.open("w") as output:  # the child has its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--once", "--config", str(config)],
            cwd=config,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ},
        )
    if not held.wait_for_arrivals(len(PATHS)):
        process.kill()
        process.wait(10)
        pytest.fail(log.read_text())
    return process


def _run(config: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("run", "--once", "--max-wait", "0s", "--config", str(config), cwd=config)


def test_a_run_once_killed_while_polling_does_not_hold_its_feeds(
    tmp_path: Path, held: HeldFeeds
) -> None:
    config = write_config(tmp_path / "config", feeds=held.urls())
    process = _start_polling(config, tmp_path / "killed.log", held)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert process.returncode == -signal.SIGKILL

    second = _run(config)  # the held requests are still held: this run is served at once

    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("2 feeds polled (2 fetched, 0 unchanged, 0 failed), 8 new")
    assert f"released 2 feeds claimed by process {process.pid}, which died" in second.stderr


def test_feeds_another_live_run_is_polling_are_said_to_be_skipped(
    tmp_path: Path, held: HeldFeeds
) -> None:
    config = write_config(tmp_path / "config", feeds=held.urls())
    process = _start_polling(config, tmp_path / "first.log", held)
    try:
        second = _run(config)
    finally:
        held.release.set()
        first_code = process.wait(60)

    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith(
        "0 feeds polled (0 fetched, 0 unchanged, 0 failed), "
        "2 feeds skipped (another running process is polling them), 0 new items"
    )
    assert "released" not in second.stderr  # alive: its leases stand
    assert first_code == 0
    assert "2 feeds polled (2 fetched" in (tmp_path / "first.log").read_text()


def _lease(config: Path) -> str | None:
    with closing(sqlite3.connect(config / "data" / "monitor.db")) as db:
        (until,) = db.execute("SELECT lease_until FROM feeds").fetchone()
    return str(until) if until is not None else None


async def test_a_cycle_renews_the_leases_it_still_holds_until_they_are_polled(
    tmp_path: Path, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = HeldFeeds(server, ["/slow.xml"], hold=1)
    config = load_config(write_config(tmp_path / "config", feeds=slow.urls()), {})
    monkeypatch.setattr(once, "RENEW_EVERY", timedelta(milliseconds=20))  # not 100 s
    cycle = asyncio.create_task(once.run_once(config, timedelta(0)))
    try:
        assert await asyncio.to_thread(slow.wait_for_arrivals, 1)
        claimed = _lease(config.directory)
        renewed = False
        for _ in range(1500):  # until the lease moves on (30 s at most)
            renewed = (_lease(config.directory) or "") > (claimed or "")
            if renewed:
                break
            await asyncio.sleep(0.02)
    finally:
        slow.release.set()
    summary = await cycle
    assert claimed is not None
    assert renewed
    assert (summary.feeds, summary.fetched) == (1, 1)
    assert _lease(config.directory) is None  # the poll's record ended it: renewed no more
