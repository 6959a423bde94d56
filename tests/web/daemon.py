"""The real daemon (`monitor run` in a subprocess) serving the console over a seeded store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.hub import free_port
from tests.support.servers import LocalServer, Reply
from tests.web.seed import Seeded, seed

TOKEN = "console-token-" + "c" * 20
READ_TOKEN = "console-read-" + "r" * 20
START_TIMEOUT = 120.0  # seconds: importing and compiling the rules takes ~20 s on a busy machine


@dataclass
class Daemon:
    url: str  # ending in `/`
    seeded: Seeded
    receiver: LocalServer  # where the webhooks point: it answers 200

    def delivered(self, alert_id: str, path: str = "/ops") -> bool:
        return self.receiver.wait_for(
            lambda requests: any(
                r.path == path and r.headers.get("webhook-id") == alert_id for r in requests
            ),
            timeout=30,
        )


def _wait_until_serving(url: str, process: subprocess.Popen[str]) -> None:
    """Until /healthz answers: the daemon binds its server after opening the store."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"monitor run exited: {process.communicate()[1]}")
        try:
            httpx.get(f"{url}healthz", timeout=1)
        except httpx.TransportError:
            time.sleep(0.05)  # nothing to await across processes but the port itself
            continue
        return
    raise RuntimeError("monitor run did not serve in time")


@contextmanager
def running_daemon(folder: Path, storage_url: str) -> Iterator[Daemon]:
    with LocalServer(poll_interval=0.05) as receiver:
        receiver.route("/ops", lambda _request: Reply(200))
        receiver.route("/chat", lambda _request: Reply(200))
        port = free_port()
        seeded = seed(
            folder / "config",
            storage_url,
            hooks={"ops": receiver.url("/ops"), "chat": receiver.url("/chat")},
            http={"listen": f"127.0.0.1:{port}", "token": TOKEN, "read_token": READ_TOKEN},
        )
        config = folder / "config"
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            cwd=config,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")},
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            _wait_until_serving(url, process)
            yield Daemon(url, seeded, receiver)
        finally:
            process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=30)
            seeded.close()
        assert process.returncode == 0, err
        assert "Traceback" not in err, err
