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
import pytest
from pydantic import SecretStr

from monitor.config.settings import HttpSettings, load_config
from monitor.errors import ConfigError, StartError
from monitor.runtime.daemon import console_tokens, token_notice
from monitor.web.auth import Tokens
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


# -- the `http:` key ----------------------------------------------------------------------------


def _problems(config: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(config, environ=environ or {})
    return [f"{p.line}: {p.message}" for p in raised.value.problems]


def test_the_http_key_as_a_string_or_a_mapping(tmp_path: Path) -> None:
    config = with_http(_config(tmp_path), "127.0.0.1:9108")
    http = load_config(config, environ={}).settings.http
    assert http is not None
    assert (http.listen, http.token, http.read_token) == ("127.0.0.1:9108", None, None)
    assert console_tokens(http, {"MONITOR_TOKEN": TOKEN}).source == "environment"

    listen = {"listen": ":9108", "token": "${CONSOLE_TOKEN}", "read_token": "r" * 16}
    edit_config(config, lambda document: document.update(http=listen))
    http = load_config(config, environ={"CONSOLE_TOKEN": TOKEN}).settings.http
    assert http is not None
    assert http.token is not None
    assert http.token.get_secret_value() == TOKEN
    assert TOKEN not in repr(http)
    tokens = console_tokens(http, {"MONITOR_TOKEN": "ignored-" + TOKEN})
    assert (tokens.write, tokens.read, tokens.source) == (TOKEN, "r" * 16, "config")
    # commands that serve nothing load it without the variable set; `run` needs it
    assert load_config(config, environ={}, secrets=False).settings.http is not None
    assert any("CONSOLE_TOKEN is not set" in p for p in _problems(config))


def test_a_token_from_the_environment_is_held_to_the_configs_rules() -> None:
    read_only = HttpSettings(listen="127.0.0.1:9108", read_token=SecretStr("r" * 16))
    with pytest.raises(StartError, match="at least 16 characters"):
        console_tokens(None, {"MONITOR_TOKEN": "short"})
    with pytest.raises(StartError, match="read token must differ"):
        console_tokens(read_only, {"MONITOR_TOKEN": "r" * 16})
    assert console_tokens(None, {"MONITOR_TOKEN": ""}).source == "generated"  # empty: unset


@pytest.mark.parametrize(
    ("http", "message"),
    [
        ("9108", "http.listen: expected HOST:PORT (e.g. 127.0.0.1:9108), got '9108'"),
        ({"listen": "a b:1"}, "http.listen: expected HOST:PORT"),
        ({"token": "t" * 16}, "missing required key 'http.listen'"),
        ({"listen": ":1", "token": "short"}, "http.token: a token is at least 16 characters"),
        ({"listen": ":1", "token": "t" * 16, "read_token": "t" * 16}, "must differ from token"),
        ({"listen": ":1", "tokn": "t" * 16}, "unknown key 'tokn'; did you mean 'token'?"),
    ],
)
def test_a_bad_http_key_is_named(tmp_path: Path, http: object, message: str) -> None:
    config = _config(tmp_path)
    edit_config(config, lambda document: document.update(http=http))
    problems = _problems(config)
    assert any(message in p for p in problems), problems


def test_what_is_said_of_a_made_token() -> None:
    made = Tokens.resolve(None, None, None)
    terminal, logged = token_notice(made, "http://127.0.0.1:9108", terminal=True)
    assert terminal is not None
    assert terminal.startswith(f"console: http://127.0.0.1:9108/login?token={made.write} ")
    assert logged is None
    terminal, logged = token_notice(made, "http://127.0.0.1:9108", terminal=False)
    assert terminal is None
    assert logged is not None
    assert made.write not in logged
    assert token_notice(Tokens(TOKEN), "http://x:1", terminal=True) == (None, None)
