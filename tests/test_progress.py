"""The status line of `monitor run --once`: drawn on a terminal, never into pipes or with
--quiet, and erased before log lines so they stay whole."""

from __future__ import annotations

import io
import logging
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from monitor.cli.progress import ERASE, Progress
from monitor.runtime.once import CycleSummary
from tests.conftest import run_cli
from tests.support.clock import ManualClock
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.servers import LocalServer


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _summary(feeds: int, items: int = 0, alerts: int = 0) -> CycleSummary:
    return CycleSummary(feeds=feeds, new_items=items, alerts=alerts)


def test_the_line_is_redrawn_at_most_every_interval_and_always_at_the_last_feed() -> None:
    stream, clock = Terminal(), ManualClock(0.0)
    status = Progress(stream, every=0.1, clock=clock)

    status.polled(_summary(1, 40), 3)
    clock.now = 0.05
    status.polled(_summary(2, 80), 3)  # too soon: not drawn
    status.polled(_summary(3, 120, 2), 3)  # the last feed: drawn anyway
    status.close()

    drawn = stream.getvalue().split(ERASE)
    assert drawn == ["", "polling 1/3 feeds · 40 new items · 0 alerts",
                     "polling 3/3 feeds · 120 new items · 2 alerts", ""]  # fmt: skip


def test_no_line_when_stderr_is_not_a_terminal_or_quiet() -> None:
    assert Progress.on_terminal(quiet=False, stream=io.StringIO()) is None
    assert Progress.on_terminal(quiet=True, stream=Terminal()) is None
    assert isinstance(Progress.on_terminal(quiet=False, stream=Terminal()), Progress)


def test_a_log_record_erases_the_line_first() -> None:
    stream = Terminal()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        status = Progress(stream)
        status.polled(_summary(1), 2)
        logging.getLogger("monitor.test").warning("feed failed")
        status.close()
        logging.getLogger("monitor.test").warning("after")
    finally:
        root.removeHandler(handler)

    text = stream.getvalue()
    assert text.startswith(ERASE + "polling 1/2 feeds")
    assert (ERASE + "feed failed\n") in text  # the record starts on an erased line
    assert text.endswith("after\n")
    assert not handler.filters  # close() stopped watching


def _under_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """`monitor ARGS` with stderr on a pseudo-terminal; what the terminal showed."""
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
    ) as process:
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the process ended
                break
            if not chunk:
                break
            shown += chunk
        out, _ = process.communicate(timeout=60)
    os.close(leader)
    return process.returncode, shown.decode() + out


def test_run_once_on_a_terminal_shows_its_progress_and_in_a_pipe_does_not(
    tmp_path: Path, server: LocalServer
) -> None:
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    config = write_config(tmp_path / "config", feeds=[{"url": server.url("/wire.xml")}])

    code, shown = _under_a_terminal(["run", "--once", "--config", str(config)], tmp_path)

    assert code == 0, shown
    assert "polling 1/1 feeds · 4 new items" in shown
    assert "delivering…" in shown
    assert "1 feed polled" in shown  # the summary, on stdout
    piped = run_cli("run", "--once", "--config", str(config), cwd=tmp_path)
    assert "polling" not in piped.stderr
    assert "\x1b[K" not in piped.stderr


def test_quiet_draws_nothing_on_a_terminal(tmp_path: Path, server: LocalServer) -> None:
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    config = write_config(tmp_path / "config", feeds=[{"url": server.url("/wire.xml")}])

    code, shown = _under_a_terminal(["run", "--once", "--quiet", "--config", str(config)], tmp_path)

    assert code == 0, shown
    assert "polling" not in shown
    assert "1 feed polled" in shown


def test_a_split_cycle_draws_one_line_and_its_children_erase_it_before_they_log(
    tmp_path: Path, server: LocalServer
) -> None:
    for number in (0, 2, 3):
        serve_feed(server, f"/feed-{number}.xml", feed_document("havana-wire.xml"))
    server.static("/feed-1.xml", b"down for maintenance", status=500)
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": server.url(f"/feed-{number}.xml")} for number in range(4)],
        fetch={"per_host": 2},
    )

    code, shown = _under_a_terminal(
        ["run", "--once", "--processes", "2", "--config", str(config)], tmp_path
    )

    assert code == 0, shown
    assert "polling 4/4 feeds · 12 new items" in shown  # the children's feeds counted too
    assert "4 feeds polled (3 fetched, 0 unchanged, 1 failed)" in shown
    # feeds are dealt in config order: feed-1 is the second process's; its warning starts on an
    # erased line
    erased_then_logged = r"\r\x1b\[K\d{4}-\d\d-\d\dT[^\r\n]*WARNING[^\r\n]*/feed-1\.xml: HTTP 500"
    assert re.search(erased_then_logged, shown), shown
