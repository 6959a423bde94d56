"""The daemon's `http:` server with its token, as a user runs it: `monitor run` in a subprocess,
`http:` as a string or a mapping, MONITOR_HTTP and MONITOR_TOKEN, a token made at start shown
on a terminal only. Requests are real httpx requests to 127.0.0.1."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.ops.daemon import Daemon, edit_config, with_http
from tests.support.pipeline import write_config

TOKEN = "console-token-" + "t" * 24
NO_SUCH = "/api/v1/no-such-endpoint"  # behind the token whatever the console serves


def _config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "config", feeds=[])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _stopped(daemon: Daemon) -> str:
    code, _seconds = daemon.stop()
    assert code == 0, daemon.log
    assert "Traceback" not in daemon.log
    return daemon.log


def test_the_mapping_form_takes_a_token_from_the_environment_it_names(tmp_path: Path) -> None:
    config = _config(tmp_path)
    listen = {"listen": "127.0.0.1:0", "token": "${CONSOLE_TOKEN}"}
    edit_config(config, lambda document: document.update(http=listen))
    daemon = Daemon.start(config, env={"CONSOLE_TOKEN": TOKEN, "MONITOR_TOKEN": ""})
    try:
        line = daemon.wait_for_log("monitor running:")
        shown = r"http http://127\.0\.0\.1:\d+ \(console at /, token from http\.token\)"
        assert re.search(shown, line), line
        with httpx.Client(base_url=daemon.base_url) as client:
            assert client.get("/metrics").status_code == 200  # open
            assert client.get(NO_SUCH).status_code == 401
            assert client.get(NO_SUCH, headers=_bearer("wrong-" + TOKEN)).status_code == 401
            assert client.get(NO_SUCH, headers=_bearer(TOKEN)).status_code == 404
            login = client.post("/login", data={"token": TOKEN})
            assert login.status_code == 303
            assert "HttpOnly" in login.headers["set-cookie"]
            assert client.get(NO_SUCH).status_code == 404  # with the cookie
    finally:
        log = _stopped(daemon)
    assert TOKEN not in log
    assert "GET /metrics" not in log  # probes are logged at DEBUG only


def test_the_string_form_with_monitor_token(tmp_path: Path) -> None:
    config = with_http(_config(tmp_path))
    daemon = Daemon.start(config, env={"MONITOR_TOKEN": TOKEN})
    try:
        assert "token from MONITOR_TOKEN" in daemon.wait_for_log("monitor running:")
        with httpx.Client(base_url=daemon.base_url) as client:
            assert client.get(NO_SUCH, headers=_bearer(TOKEN)).status_code == 404
            assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=%2F"
    finally:
        log = _stopped(daemon)
    assert TOKEN not in log


def test_monitor_http_overrides_the_configured_address(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        config = _config(tmp_path)
        listen = {"listen": f"127.0.0.1:{port}", "token": TOKEN}
        edit_config(config, lambda document: document.update(http=listen))
        daemon = Daemon.start(config, env={"MONITOR_HTTP": "127.0.0.1:0"})
        try:
            assert daemon.base_url
            assert not daemon.base_url.endswith(f":{port}")
            with httpx.Client(base_url=daemon.base_url) as client:
                assert client.get(NO_SUCH, headers=_bearer(TOKEN)).status_code == 404
        finally:
            _stopped(daemon)


def test_a_token_made_at_start_is_not_logged(tmp_path: Path) -> None:
    """stderr is a pipe here, as under systemd or docker: the log says how to set a token."""
    daemon = Daemon.start(with_http(_config(tmp_path)), env={"MONITOR_TOKEN": ""})
    try:
        assert "token made at start" in daemon.wait_for_log("monitor running:")
        notice = daemon.wait_for_log("console: no token configured")
        assert "is not shown" in notice
        assert "set MONITOR_TOKEN" in notice
    finally:
        log = _stopped(daemon)
    assert "?token=" not in log


def _read_until(fd: int, pattern: re.Pattern[str], timeout: float) -> tuple[re.Match[str], str]:
    seen = ""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the other end closed
            break
        seen += chunk.decode("utf-8", "replace")
        if found := pattern.search(seen):
            return found, seen
    raise AssertionError(f"no {pattern.pattern!r} within {timeout}s in:\n{seen}")


def test_a_token_made_at_start_is_shown_on_a_terminal_as_a_link(tmp_path: Path) -> None:
    config = with_http(_config(tmp_path))
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        cwd=config,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
        env={**os.environ, "MONITOR_TOKEN": ""},
    )
    os.close(terminal)
    try:
        link = re.compile(r"console: (http://127\.0\.0\.1:\d+)/login\?token=([\w-]{32,})\s")
        found, _seen = _read_until(controller, link, timeout=30)
        base, token = found.group(1), found.group(2)
        with httpx.Client(base_url=base) as client:
            login = client.get(f"/login?token={token}")
            assert (login.status_code, login.headers["location"]) == (303, "/")
            assert client.get(NO_SUCH).status_code == 404
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        os.close(controller)
