"""`run --once` split between processes (monitor.runtime.split): the real command as a process
(the in-process CLI of other tests never forks: the test servers' threads run there), feeds and
receivers on 127.0.0.1, SQLite."""

from __future__ import annotations

import os
import re
import select
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from monitor.config.settings import LoadedConfig, load_config
from monitor.runtime import split
from tests.conftest import run_cli
from tests.support.cli import run_process
from tests.support.pipeline import HeldFeeds, feed_document, serve_feed, write_config
from tests.support.receiver import SECRET, SignedReceiver
from tests.support.servers import LocalServer

SUMMARY = re.compile(
    r"(?P<feeds>\d+) feeds? polled \((?P<fetched>\d+) fetched, (?P<unchanged>\d+) unchanged, "
    r"(?P<failed>\d+) failed\), (?P<new>\d+) new items?, (?P<alerts>\d+) alerts?; "
    r"delivered (?P<delivered>\d+), (?P<queued>\d+) queued, (?P<dfailed>\d+) failed"
)


def _summary(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    assert result.returncode == 0, result.stderr
    match = SUMMARY.search(result.stdout)
    assert match, f"no summary line in {result.stdout!r}"
    return {key: int(value) for key, value in match.groupdict().items()}


def _once(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    options = ["--max-wait", "0s", "--config", str(config), *extra]
    return run_process(["--log-level", "debug", "run", "--once", *options], cwd=config)


def _split(result: subprocess.CompletedProcess[str]) -> int:
    """How many processes polled, by the first one's debug line (1 when it says none)."""
    found = re.search(r"polling \d+ feeds in (\d+) processes", result.stderr)
    return int(found.group(1)) if found else 1


def _children(pid: int) -> list[int]:
    """The processes `pid` forked (Linux: /proc)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii")
    return [int(child) for child in text.split()]


def _delivered(receiver: SignedReceiver) -> list[tuple[str, str]]:
    return sorted(
        (d.body["data"]["rule"]["id"], d.body["data"]["item"]["guid"])  # type: ignore[index]
        for d in receiver.deliveries
    )


def test_a_split_cycle_records_and_delivers_what_one_process_does(
    tmp_path: Path, server: LocalServer, storage_url: str
) -> None:
    documents = ("havana-wire.xml", "prensa-es.xml", "later-item.xml")
    for number in range(6):
        serve_feed(server, f"/feed-{number}.xml", feed_document(documents[number % 3]))
    results = {}
    for processes in (1, 2):
        receiver = SignedReceiver(server, path=f"/hook-{processes}")
        storage = storage_url if processes == 2 else f"sqlite:///{tmp_path / 'alone.db'}"
        config = write_config(
            tmp_path / f"config-{processes}",
            feeds=[{"url": server.url(f"/feed-{number}.xml")} for number in range(6)],
            webhooks=[{"name": "analysts", "url": receiver.url, "secret": SECRET}],
            fetch={"per_host": 4},
            storage=storage,
        )
        first = _once(config, "--processes", str(processes))
        results[processes] = (_summary(first), _delivered(receiver), _split(first))
        second = _summary(_once(config, "--processes", str(processes)))
        assert second | {"feeds": 6, "unchanged": 6, "new": 0, "alerts": 0} == second
        assert len(receiver.deliveries) == len(results[processes][1])  # nothing twice

    (alone, alone_sent, alone_split), (split_, split_sent, split_split) = results[1], results[2]
    assert (alone_split, split_split) == (1, 2)
    assert alone | {"feeds": 6, "fetched": 6, "failed": 0, "new": 16} == alone
    assert split_ == alone
    assert split_sent == alone_sent
    assert alone["alerts"] > 0
    assert alone["delivered"] == len(alone_sent) > 0


def test_requests_to_a_host_stay_within_per_host_whatever_processes_asks(
    tmp_path: Path, server: LocalServer
) -> None:
    for number in range(4):
        serve_feed(server, f"/feed-{number}.xml", feed_document("havana-wire.xml"))
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": server.url(f"/feed-{number}.xml")} for number in range(4)],
        fetch={"per_host": 1},
    )

    first = _once(config, "--processes", "2")

    assert _summary(first) | {"feeds": 4, "fetched": 4, "new": 16} == _summary(first)
    assert _split(first) == 1  # one process: one request at a time


@pytest.fixture
def held(server: LocalServer) -> Iterator[HeldFeeds]:
    feeds = HeldFeeds(server, [f"/feed-{number}.xml" for number in range(4)], hold=2)
    yield feeds
    feeds.release.set()


def _leases(config: Path) -> dict[int, int]:
    """Feeds leased now, by the pid of the process holding them."""
    with closing(sqlite3.connect(config / "data" / "monitor.db")) as db:
        rows = db.execute("SELECT claimed_by FROM feeds WHERE lease_until IS NOT NULL").fetchall()
    leases: dict[int, int] = {}
    for (owner,) in rows:
        pid = int(owner.split("|")[3])  # monitor.store.owners.Owner: host|boot|pid ns|pid|start
        leases[pid] = leases.get(pid, 0) + 1
    return leases


def test_what_a_killed_polling_process_left_is_polled_by_the_first(
    tmp_path: Path, held: HeldFeeds
) -> None:
    config = write_config(tmp_path / "config", feeds=held.urls(), fetch={"per_host": 2})
    log = tmp_path / "first.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--once", "--processes", "2", "--config", "."],
            cwd=config,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ},
        )
    try:
        # each process holds one request of the two per_host allows
        assert held.wait_for_arrivals(2), log.read_text()
        assert _leases(config) == {process.pid: 4}  # the first claimed them all, then dealt
        (child,) = _children(process.pid)
        os.kill(child, signal.SIGKILL)
    finally:
        held.release.set()
        code = process.wait(60)

    text = log.read_text()
    assert code == 0, text
    assert "4 feeds polled (4 fetched, 0 unchanged, 0 failed), 16 new items" in text
    assert (
        f"a polling process (pid {child}) exited with signal 9, 2 of its 2 feeds not polled; "
        "polling them here" in text
    )

    second = _once(config, "--processes", "1")

    assert "released" not in second.stderr  # nothing left leased
    assert _summary(second) | {"feeds": 4, "unchanged": 4, "new": 0} == _summary(second)


def _config(tmp_path: Path, feeds: int, fetch: dict[str, object]) -> LoadedConfig:
    urls = [{"url": f"http://127.0.0.1:9/feed-{number}.xml"} for number in range(feeds)]
    return load_config(write_config(tmp_path / "config", feeds=urls, fetch=fetch), {})


@pytest.mark.parametrize(
    ("feeds", "fetch", "requested", "expected"),
    [
        (split.SPLIT_MIN_FEEDS - 1, {"per_host": 4}, None, 1),  # few feeds: one process
        (split.SPLIT_MIN_FEEDS, {"per_host": 4}, None, 3),  # one per core
        (split.SPLIT_MIN_FEEDS, {"per_host": 2}, None, 2),  # no more than per_host
        (5, {"per_host": 4}, 2, 2),  # asked for
        (5, {"per_host": 4}, 8, 4),  # per_host
        (3, {"per_host": 10}, 8, 3),  # one feed each at most
        (5, {"per_host": 4, "host_spacing": "1s"}, 2, 1),  # spacing is kept by one process
    ],
)
def test_how_many_processes_poll(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    feeds: int,
    fetch: dict[str, object],
    requested: int | None,
    expected: int,
) -> None:
    monkeypatch.setattr(split, "cores", lambda: 3)
    monkeypatch.setattr(split, "can_fork", lambda: True)  # as in a fresh command on Linux
    assert split.processes_for(_config(tmp_path, feeds, fetch), requested) == expected


def test_no_fork_while_other_threads_run(tmp_path: Path) -> None:
    config = _config(tmp_path, 5, {"per_host": 4})
    with LocalServer():  # its thread runs in this process
        assert split.processes_for(config, 2) == 1


@pytest.mark.parametrize(("per_host", "count"), [(1, 1), (4, 2), (5, 2), (10, 3), (7, 7)])
def test_the_shares_of_per_host_add_up_to_it(tmp_path: Path, per_host: int, count: int) -> None:
    config = _config(tmp_path, 2, {"per_host": per_host})
    shares = [
        split.share_config(config, split.Share(index, count)).settings.fetch.per_host
        for index in range(count)
    ]
    assert sum(shares) == per_host
    assert min(shares) >= 1
    assert max(shares) - min(shares) <= 1
    assert config.settings.fetch.per_host == per_host  # the config itself is left alone
    assert config.settings.fetch.deadline == timedelta(seconds=30)


def test_polling_processes_stop_once_the_first_one_is_gone(
    tmp_path: Path, server: LocalServer
) -> None:
    """A child reports each feed to the first process; when nobody reads, it stops there."""
    paths = [f"/feed-{number}.xml" for number in range(4)]
    first_two, later, arrived = threading.Event(), threading.Event(), []
    body = feed_document("havana-wire.xml")

    def handler(request: BaseHTTPRequestHandler) -> None:
        with lock:
            arrived.append(request.path)
            first = len(arrived) <= 2
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        request.send_header("Content-Length", str(len(body) if first else 1 << 20))
        request.end_headers()
        if first:
            first_two.wait(60)
            request.wfile.write(body)
            return
        while not later.wait(2):  # a byte now and then: no read timeout ends this fetch
            request.wfile.write(b" ")
            request.wfile.flush()

    lock = threading.Lock()
    for path in paths:
        server.raw(path, handler)
    # a child that went on would wait for its next feed for minutes (the deadline)
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": server.url(path)} for path in paths],
        fetch={"per_host": 2, "deadline": "10m"},
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--once", "--processes", "2", "--config", "."],
        cwd=config,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert server.wait_for(lambda reqs: len(reqs) >= 2, 60)
        (child,) = _children(process.pid)
        watch = os.pidfd_open(child)
        process.kill()
        process.wait(10)
        first_two.set()  # the child's first feed is polled; nobody reads its report
        exited, _, _ = select.select([watch], [], [], 50)
        os.close(watch)
    finally:
        first_two.set()
        later.set()
    assert exited, "the child went on polling with nobody to report to"


def test_feeds_are_dealt_host_by_host() -> None:
    feeds = [f"a{n}" for n in range(5)] + ["b0", "b1"] + [f"c{n}" for n in range(3)]
    parts = split.deal(feeds, 2, host=lambda feed: feed[0])
    assert parts == [["a0", "a2", "a4", "b1", "c1"], ["a1", "a3", "b0", "c0", "c2"]]
    assert split.deal(feeds, 3, host=lambda feed: feed[0])[2] == ["a2", "b0", "c1"]
    assert split.deal([], 2, host=str) == [[], []]


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("0", "argument --processes: must be 1 or more, not 0"),
        ("two", "argument --processes: not a whole number: 'two'"),
    ],
)
def test_processes_must_be_a_count(tmp_path: Path, given: str, said: str) -> None:
    config = write_config(tmp_path / "config", feeds=[{"url": "http://127.0.0.1:9/feed.xml"}])
    result = run_cli("run", "--once", "--processes", given, "--config", str(config), cwd=config)
    assert result.returncode == 2
    assert said in result.stderr
