"""The daemon as users run it: a real process, real feeds and receiver, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.receiver import SECRET, SignedReceiver
from tests.support.servers import LocalServer


def test_daemon_polls_delivers_and_stops_cleanly_on_sigterm(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": server.url("/wire.xml"), "interval": "1s"}],
        webhooks=[{"name": "analysts", "url": receiver.url, "secret": SECRET}],
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        cwd=config,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        assert receiver.server.wait_for(lambda requests: len(requests) >= 2, timeout=30)
        # the feed is polled again on its 1s interval: conditionally, and without new alerts
        assert server.wait_for(
            lambda requests: sum("if-none-match" in r.headers for r in requests) >= 1, timeout=30
        )
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert len(receiver.deliveries) == 2
    assert all(d.valid_signature for d in receiver.deliveries)
    assert "monitor running: 1 feed," in err
    assert err.rstrip().endswith("stopped")
    assert "Traceback" not in err
