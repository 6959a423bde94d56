"""A feed URL that carries credentials: used to fetch, shown and sent nowhere.

The real CLI (in process), a real feed server that checks the credentials, a real receiver and
the store: the password and the API key reach the feed's server and nothing else.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.conftest import run_cli
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.receiver import SECRET, SignedReceiver
from tests.support.servers import LocalServer

PASSWORD, KEY = "hunter2-pw", "s3cr3t-key"


def test_credentials_in_a_feed_url_reach_its_server_and_nothing_else(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    server.static("/missing.xml", b"gone", status=404)
    base = server.url("/").replace("http://", f"http://reader:{PASSWORD}@")
    urls = [f"{base}wire.xml?apikey={KEY}&lang=en", f"{base}missing.xml?token={KEY}"]
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": url} for url in urls],
        webhooks=[{"name": "analysts", "url": receiver.url, "secret": SECRET}],
    )
    once = run_cli("--log-format", "json", "run", "--once", "--config", str(config), cwd=config)
    assert once.returncode == 0, once.stderr
    listed = run_cli("feeds", "--json", "--config", str(config), cwd=config)
    text = run_cli("feeds", "--config", str(config), cwd=config)
    alerts = run_cli("alerts", "--json", "--config", str(config), cwd=config)

    # the feed's server got them: the credentials still do their job
    (fetch,) = server.requests_to("/wire.xml")
    expected = base64.b64encode(f"reader:{PASSWORD}".encode()).decode()
    assert fetch.headers["authorization"] == f"Basic {expected}"
    assert f"apikey={KEY}" in fetch.path
    # and nobody else: not the receiver, not the log, not the commands' output
    assert receiver.deliveries
    for delivery in receiver.deliveries:
        feed = delivery.body["data"]["item"]["feed"]  # type: ignore[index]
        assert feed["url"] == f"{server.url('/').replace('http://', 'http://reader:***@')}" + (
            "wire.xml?apikey=***&lang=en"
        )
    outputs = {
        "receiver": json.dumps([d.body for d in receiver.deliveries]),
        "log": once.stderr,
        "summary": once.stdout,
        "feeds --json": listed.stdout,
        "feeds": text.stdout,
        "alerts --json": alerts.stdout,
    }
    for where, output in outputs.items():
        assert PASSWORD not in output, where
        assert KEY not in output, where
    assert "missing.xml?token=***" in once.stderr  # the failure is still logged, masked
