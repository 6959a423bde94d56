"""Format `apprise` with Apprise's own `json://` plugin posting to a receiver on 127.0.0.1:
through the real dispatcher and outbox, a False from Apprise retried as transient, the deadline,
the URL kept secret, and the missing extra as a config problem at `monitor check`."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.delivery import apprise_target
from monitor.delivery.dispatcher import Dispatcher, make_delivery_client
from monitor.delivery.sending import attempt
from monitor.delivery.settings import WebhookConfig
from monitor.errors import TransientDeliveryError
from monitor.store import DueDelivery
from tests.conftest import run_cli
from tests.delivery.support import alert, store_with_alerts
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.servers import LocalServer, RecordedRequest, Reply

PASSWORD = "Apprise-Secret-Pass-42"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_delivery_client() as c:
        yield c


def _url(server: LocalServer, path: str = "/notify") -> str:
    return f"json://monitor:{PASSWORD}@127.0.0.1:{server.port}{path}"


def _hook(url: str, **settings: Any) -> WebhookConfig:
    return WebhookConfig.model_validate(
        {"name": "push", "format": "apprise", "url": url, "timeout": "5s", "retry": ["0s"]}
        | settings
    )


def _receiver(server: LocalServer, statuses: list[int] | None = None) -> list[dict[str, Any]]:
    """What Apprise's json:// plugin posts: `title`, `message`, `type`, with basic auth."""
    got: list[dict[str, Any]] = []
    answers = list(statuses or [])

    def handle(request: RecordedRequest) -> Reply:
        assert request.method == "POST"
        assert request.headers["content-type"].startswith("application/json")
        assert request.headers["authorization"].startswith("Basic ")
        got.append(json.loads(request.body))
        return Reply(answers.pop(0) if answers else 200, b"{}")

    server.route("/notify", handle)
    return got


async def test_an_alert_reaches_the_service_through_the_outbox(
    tmp_path: Path, server: LocalServer, client: httpx.AsyncClient
) -> None:
    got = _receiver(server)
    store = store_with_alerts(tmp_path, 2, ("push",))
    summary = await Dispatcher(store.outbox, client, {"push": _hook(_url(server))}).deliver_due()
    assert summary.delivered == 2
    first = got[0]
    assert first["title"] == (
        "[HIGH] Russian-Cuban state contacts: "
        "Russian warships arrive in Havana for a five-day port call"
    )
    assert "Díaz-Canel <welcomed> the crews" in first["message"]
    assert "alrt_0" in first["message"] or "alrt_1" in first["message"]
    store.close()


async def test_apprise_saying_false_is_retried_as_transient(
    tmp_path: Path, server: LocalServer, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    got = _receiver(server, [500])
    store = store_with_alerts(tmp_path, 1, ("push",))
    dispatcher = Dispatcher(store.outbox, client, {"push": _hook(_url(server))})
    summary = await dispatcher.deliver_due()  # `retry: [0s]`: the retry is due in this pass
    assert (summary.delivered, summary.retrying, summary.failed) == (1, 1, 0)
    assert len(got) == 2
    (row,) = store.outbox.recent_alerts()
    assert (row.state, row.attempts) == ("delivered", 2)
    assert "Apprise could not send it (Apprise does not say why" in caplog.text
    assert PASSWORD not in caplog.text
    store.close()


async def test_a_false_is_a_transient_outcome(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    _receiver(server, [503])
    sent = alert("alrt_3")
    outcome = await attempt(
        client, _hook(_url(server)), DueDelivery(1, sent.id, "push", 0, sent.raw)
    )
    assert isinstance(outcome.error, TransientDeliveryError)
    assert outcome.name == "transient"


async def test_a_service_that_hangs_is_cut_off_at_the_deadline(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    release = threading.Event()

    def hang(handler: BaseHTTPRequestHandler) -> None:
        release.wait(30)
        handler.send_response(200)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"{}")

    server.raw("/notify", hang)
    sent = alert("alrt_4")
    try:
        outcome = await attempt(
            client,
            _hook(_url(server) + "?rto=30", timeout="1s"),
            DueDelivery(1, sent.id, "push", 0, sent.raw),
        )
    finally:
        release.set()
    assert isinstance(outcome.error, TransientDeliveryError)
    assert str(outcome.error) == "no complete answer within 1s"


def test_the_url_is_shown_as_its_scheme_only(server: LocalServer) -> None:
    hook = _hook(_url(server))
    for shown in (hook.safe_url(), repr(hook), str(hook)):
        assert PASSWORD not in shown
        assert str(server.port) not in shown
    assert hook.safe_url() == "json://…"
    assert PASSWORD not in repr(apprise_target.build(hook, alert(), 0))


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("nosuchservice://token", "Apprise cannot use this `nosuchservice://` URL"),
        ("not a url", "an Apprise URL is `scheme://…`"),
    ],
)
def test_a_url_apprise_cannot_use_is_a_config_error(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        _hook(url)


def _config(tmp_path: Path, server: LocalServer) -> Path:
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))  # 2 alerts
    hook = {"name": "push", "format": "apprise", "url": "${APPRISE_URL}"}
    return write_config(
        tmp_path / "config", feeds=[{"url": server.url("/wire.xml")}], webhooks=[hook]
    )


def test_the_commands_deliver_and_never_show_the_url(tmp_path: Path, server: LocalServer) -> None:
    got = _receiver(server)
    config = _config(tmp_path, server)
    env = {"APPRISE_URL": _url(server)}
    outputs = []
    for args in (
        ("check",),
        ("--log-level", "debug", "run", "--once"),
        ("webhooks",),
        ("alerts", "--json"),
    ):
        result = run_cli(*args, "--config", str(config), cwd=config, env=env)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        outputs.append(result.stdout + result.stderr)
    assert len(got) == 2
    row = next(line.split() for line in outputs[2].splitlines() if line.startswith("push "))
    assert row[:3] == ["push", "apprise", "json://…"]  # the scheme only
    for output in outputs:
        assert PASSWORD not in output


def test_without_the_extra_check_says_how_to_install_it(
    tmp_path: Path, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, server)
    monkeypatch.setitem(sys.modules, "apprise", None)  # as if not installed: import fails
    result = run_cli(
        "check", "--config", str(config), cwd=config, env={"APPRISE_URL": _url(server)}
    )
    assert result.returncode == 2
    assert "monitor.yaml:" in result.stderr + result.stdout
    assert (
        "format `apprise` needs the Apprise package: pip install 'monitor[apprise]'"
        in result.stderr + result.stdout
    )
    assert PASSWORD not in result.stderr + result.stdout


def test_check_without_the_url_set_warns_and_passes(tmp_path: Path, server: LocalServer) -> None:
    config = _config(tmp_path, server)
    result = run_cli("check", "--config", str(config), cwd=config, env={})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "APPRISE_URL" in result.stdout + result.stderr
    assert "(needed to deliver)" in result.stdout + result.stderr


def test_apprise_log_lines_naming_the_url_are_scrubbed(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token_url = "pover://uQiRzpo4DXghDmr9QzzfQu27cmVRsG@azGDORePK8gMaC0QOYAMyEEuzJnyUi/"
    _hook(token_url)  # checked at load: its pieces are hidden from Apprise's log from then on
    logging.getLogger("apprise").warning("Failed to send Pushover notification to %s", token_url)
    logging.getLogger("apprise").info("user azGDORePK8gMaC0QOYAMyEEuzJnyUi refused")
    assert "azGDORePK8gMaC0QOYAMyEEuzJnyUi" not in caplog.text
    assert "uQiRzpo4DXghDmr9QzzfQu27cmVRsG" not in caplog.text
    assert "Failed to send Pushover notification to ***" in caplog.text
