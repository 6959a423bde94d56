"""A cycle gives threads longer turns on the GIL while it runs, and the process its own back."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config.settings import load_config
from monitor.errors import StartError
from monitor.runtime import once
from tests.support.pipeline import feed_document, write_config
from tests.support.servers import LocalServer, RecordedRequest, Reply

OURS = 0.007  # this process's turns before each cycle: neither the default nor the cycle's


@pytest.fixture(autouse=True)
def _our_turns() -> Iterator[None]:
    original = sys.getswitchinterval()
    sys.setswitchinterval(OURS)
    yield
    sys.setswitchinterval(original)


def test_a_cycle_polls_with_long_turns_and_gives_the_old_ones_back(
    tmp_path: Path, server: LocalServer
) -> None:
    seen: list[float] = []
    body = feed_document("havana-wire.xml")

    def answer(_request: RecordedRequest) -> Reply:  # the server's thread, in this process
        seen.append(sys.getswitchinterval())
        return Reply(200, body, {"Content-Type": "application/rss+xml"})

    server.route("/wire.xml", answer)
    config = load_config(
        write_config(tmp_path / "config", feeds=[{"url": server.url("/wire.xml")}]), {}
    )
    summary = once.run_cycle(config, timedelta(0), processes=1)
    assert summary.fetched == 1
    assert seen == [pytest.approx(once.SWITCH_INTERVAL, abs=1e-5)]  # kept in µs
    assert sys.getswitchinterval() == pytest.approx(OURS, abs=1e-5)


def test_a_cycle_that_cannot_start_gives_the_old_turns_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(write_config(tmp_path / "config", feeds=[]), {})

    def refuse(*_args: object, **_kwargs: object) -> int:
        raise StartError("no")

    monkeypatch.setattr(once.split, "processes_for", refuse)
    with pytest.raises(StartError):
        once.run_cycle(config, timedelta(0))
    assert sys.getswitchinterval() == pytest.approx(OURS, abs=1e-5)
