"""Per-feed access: `auth`, `user_agent`, `headers`, `proxy`, `enabled`, through the real CLI.

A real feed server that answers 401 unless the request carries the credentials it expects, a
real forward proxy on 127.0.0.1 that records every request it carried, and `run --once`, `feeds`
and `status` in process: the secrets reach the feed (or the proxy) and appear nowhere else.
"""

from __future__ import annotations

import base64
import http.client
import json
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import trustme

from monitor.config.settings import load_config
from monitor.errors import ConfigError
from monitor.feeds.fetcher import (
    PROXY_CONFLICT,
    Fetched,
    FetchFailed,
    FetchLimits,
    Validators,
    fetch_feed,
    make_client,
)
from tests.conftest import run_cli
from tests.support.pipeline import feed_document, write_config
from tests.support.servers import LocalServer, RecordedRequest, Reply

PASSWORD, TOKEN, KEY, PROXY_PASSWORD = "hunter2-basic", "t0k3n-bearer", "k3y-header", "pr0xy-pw"
AGENT = "ExampleNewsroom/2.0 (+ops@example.org)"
RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}


class RecordingProxy:
    """A forward HTTP proxy on 127.0.0.1: absolute-URI GETs relayed, each one recorded."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []  # (request target, headers)
        proxy = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                proxy.seen.append((self.path, headers))
                target = urlsplit(self.path)
                relayed = {
                    k: v for k, v in self.headers.items() if not k.lower().startswith("proxy-")
                }
                upstream = http.client.HTTPConnection(target.hostname or "", target.port or 80)
                path = target.path + (f"?{target.query}" if target.query else "")
                upstream.request("GET", path, headers=relayed)
                answer = upstream.getresponse()
                body = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                upstream.close()

            def do_CONNECT(self) -> None:
                proxy.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                host, _, port = self.path.rpartition(":")
                upstream = socket.create_connection((host, int(port)), timeout=5)
                self.send_response(200, "Connection established")
                self.end_headers()
                self.wfile.flush()
                sockets = [self.connection, upstream]
                while True:
                    readable, _, _ = select.select(sockets, [], [], 5)
                    if not readable:
                        break
                    for source in readable:
                        data = source.recv(65536)
                        if not data:
                            upstream.close()
                            return
                        (upstream if source is self.connection else self.connection).sendall(data)
                upstream.close()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def url(self, credentials: str = "") -> str:
        return f"http://{credentials}127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    recording = RecordingProxy()
    yield recording
    recording.close()


def guarded(server: LocalServer, path: str, expected: dict[str, str]) -> None:
    """Serve the test wire at `path` to requests carrying `expected` headers only, else 401."""
    body = feed_document("havana-wire.xml")

    def handler(request: RecordedRequest) -> Reply:
        if all(request.headers.get(name) == value for name, value in expected.items()):
            return Reply(200, body, RSS)
        return Reply(401, b"who are you?", {"WWW-Authenticate": 'Basic realm="wire"'})

    server.route(path, handler)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def secrets_absent(outputs: dict[str, str], *secrets: str) -> None:
    for where, output in outputs.items():
        for secret in secrets:
            assert secret not in output, (where, secret)


ENV = {"WIRE_PASSWORD": PASSWORD, "WIRE_TOKEN": TOKEN, "WIRE_KEY": KEY}


def test_auth_user_agent_and_headers_reach_the_feed_and_nothing_else(
    tmp_path: Path, server: LocalServer
) -> None:
    guarded(server, "/basic.xml", {"authorization": basic("reader", PASSWORD)})
    guarded(
        server,
        "/bearer.xml",
        {"authorization": f"Bearer {TOKEN}", "user-agent": AGENT, "x-api-key": KEY},
    )
    config = write_config(
        tmp_path / "config",
        feeds=[
            {
                "url": server.url("/basic.xml"),
                "auth": {"basic": {"username": "reader", "password": "${WIRE_PASSWORD}"}},
            },
            {
                "url": server.url("/bearer.xml"),
                "auth": {"bearer": "${WIRE_TOKEN}"},
                "user_agent": AGENT,
                "headers": {"X-Api-Key": "${WIRE_KEY}"},
            },
        ],
    )
    once = run_cli(
        "--log-level", "debug", "run", "--once", "--config", str(config), cwd=config, env=ENV
    )
    assert once.returncode == 0, once.stderr
    assert "2 feeds polled (2 fetched" in once.stdout, once.stdout
    (basic_request,) = server.requests_to("/basic.xml")
    assert basic_request.headers["user-agent"].startswith("monitor/")  # ours, where none is set
    (bearer_request,) = server.requests_to("/bearer.xml")
    assert bearer_request.headers["user-agent"] == AGENT
    listed = run_cli("feeds", "--json", "--config", str(config), cwd=config, env=ENV)
    text = run_cli("feeds", "--config", str(config), cwd=config, env=ENV)
    status = run_cli("status", "--json", "--config", str(config), cwd=config, env=ENV)
    check = run_cli("check", "--config", str(config), cwd=config, env=ENV)
    assert listed.returncode == 0, listed.stderr
    assert check.returncode == 0, check.stdout
    assert len(listed.stdout.splitlines()) == 2
    outputs = {
        "run log": once.stderr,
        "summary": once.stdout,
        "feeds --json": listed.stdout,
        "feeds": text.stdout,
        "status": status.stdout + status.stderr,
        "check": check.stdout + check.stderr,
    }
    secrets_absent(
        outputs, PASSWORD, TOKEN, KEY, base64.b64encode(f"reader:{PASSWORD}".encode()).decode()
    )


def test_a_wrong_credential_is_a_failure_whose_message_holds_no_secret(
    tmp_path: Path, server: LocalServer
) -> None:
    guarded(server, "/basic.xml", {"authorization": basic("reader", "the-right-one")})
    config = write_config(
        tmp_path / "config",
        feeds=[
            {
                "url": server.url("/basic.xml"),
                "auth": {"basic": {"username": "reader", "password": "${WIRE_PASSWORD}"}},
            }
        ],
    )
    once = run_cli("run", "--once", "--config", str(config), cwd=config, env=ENV)
    listed = run_cli("feeds", "--json", "--config", str(config), cwd=config, env=ENV)
    assert once.returncode == 0
    (feed,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert feed["last_error"] == "HTTP 401 Unauthorized"
    secrets_absent({"log": once.stderr, "feeds": listed.stdout}, PASSWORD)


def test_a_feed_proxy_carries_its_requests_and_its_credentials_stay_hidden(
    tmp_path: Path, server: LocalServer, proxy: RecordingProxy
) -> None:
    guarded(server, "/via-proxy.xml", {"authorization": f"Bearer {TOKEN}"})
    guarded(server, "/direct.xml", {})
    config = write_config(
        tmp_path / "config",
        feeds=[
            {
                "url": server.url("/via-proxy.xml"),
                "auth": {"bearer": "${WIRE_TOKEN}"},
                "proxy": proxy.url("scout:${PROXY_PASSWORD}@"),
            },
            {"url": server.url("/direct.xml")},
        ],
    )
    env = ENV | {"PROXY_PASSWORD": PROXY_PASSWORD}
    once = run_cli(
        "--log-level", "debug", "run", "--once", "--config", str(config), cwd=config, env=env
    )
    assert once.returncode == 0, once.stderr
    assert "2 feeds polled (2 fetched" in once.stdout, once.stdout
    # the proxied feed went through the proxy, with the proxy's credentials; the other did not
    (carried,) = proxy.seen
    target, headers = carried
    assert target == server.url("/via-proxy.xml")
    assert headers["proxy-authorization"] == basic("scout", PROXY_PASSWORD)
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert len(server.requests_to("/via-proxy.xml")) == 1
    assert len(server.requests_to("/direct.xml")) == 1
    listed = run_cli("feeds", "--json", "--config", str(config), cwd=config, env=env)
    status = run_cli("status", "--config", str(config), cwd=config, env=env)
    secrets_absent(
        {"log": once.stderr, "feeds": listed.stdout, "status": status.stdout + status.stderr},
        PROXY_PASSWORD,
        TOKEN,
    )


async def test_through_a_proxy_a_steered_redirect_is_still_checked(
    server: LocalServer, proxy: RecordingProxy
) -> None:
    # the proxy is the operator's and 127.0.0.1; a redirect to another origin is a stranger's
    inside = LocalServer(poll_interval=0.02)
    try:
        inside.static("/secret", b"internal", headers=RSS)
        server.static("/feed", b"", status=302, headers={"Location": inside.url("/secret")})
        async with httpx.AsyncClient(trust_env=False) as plain:
            assert (await plain.get(inside.url("/secret"))).status_code == 200
        async with make_client() as client:
            result = await fetch_feed(
                client, server.url("/feed"), Validators(), FetchLimits(), proxy=proxy.url()
            )
        assert isinstance(result, FetchFailed)
        assert "a loopback address" in str(result.error)
        assert [target for target, _ in proxy.seen] == [server.url("/feed")]
        assert len(inside.requests_to("/secret")) == 1  # only the test's own request above
    finally:
        inside.close()


async def test_the_proxy_is_not_used_for_feeds_without_one(server: LocalServer) -> None:
    server.static("/feed", feed_document("havana-wire.xml"), headers=RSS)
    async with make_client() as client:
        result = await fetch_feed(client, server.url("/feed"), Validators(), user_agent=AGENT)
    assert isinstance(result, Fetched)
    (request,) = server.requests_to("/feed")
    assert request.headers["user-agent"] == AGENT


def test_a_disabled_feed_is_kept_but_never_polled(tmp_path: Path, server: LocalServer) -> None:
    guarded(server, "/on.xml", {})
    guarded(server, "/off.xml", {})
    config = write_config(
        tmp_path / "config",
        feeds=[
            {"url": server.url("/on.xml")},
            {"url": server.url("/off.xml"), "enabled": False},
        ],
    )
    for _ in range(2):
        once = run_cli("run", "--once", "--config", str(config), cwd=config)
        assert once.returncode == 0, once.stderr
        assert "1 feed polled" in once.stdout, once.stdout
    assert len(server.requests_to("/on.xml")) == 2
    assert server.requests_to("/off.xml") == []
    loaded = load_config(config)
    assert [feed.enabled for feed in loaded.settings.feeds] == [True, False]
    listed = run_cli("feeds", "--json", "--config", str(config), cwd=config)
    assert [json.loads(line)["url"] for line in listed.stdout.splitlines()] == [
        server.url("/on.xml")
    ]
    # enabled again: polled again, from the next run on
    yaml_file = config / "monitor.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("enabled: false", "enabled: true"))
    again = run_cli("run", "--once", "--config", str(config), cwd=config)
    assert "2 feeds polled" in again.stdout, again.stdout
    assert len(server.requests_to("/off.xml")) == 1


@pytest.mark.parametrize(
    ("feed", "problem"),
    [
        (
            "    auth: {bearer: x, basic: {username: u, password: p}}\n",
            "one of `basic` or `bearer`",
        ),
        ("    auth: {digest: x}\n", "unknown key 'digest'"),
        ("    proxy: socks5://127.0.0.1:1080\n", "a proxy is an http:// or https:// URL"),
        ("    tags: [State Media]\n", "tags.0"),
        ("    lang: Spanish\n", "lang"),
        ('    user_agent: "a\\r\\nb"\n', "user_agent"),
        (
            "    auth: {bearer: x}\n    headers: {Authorization: y}\n",
            "auth and headers.Authorization both set",
        ),
    ],
)
def test_bad_access_settings_name_file_and_line(tmp_path: Path, feed: str, problem: str) -> None:
    text = f"version: 1\nrules: rules.yaml\nfeeds:\n  - url: https://feeds.example/f.xml\n{feed}"
    (tmp_path / "monitor.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "rules.yaml").write_text(
        "rules:\n  - {id: r, title: R, match: Havana}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {})
    problems = [str(p).replace(str(tmp_path) + "/", "") for p in caught.value.problems]
    assert any(p.startswith("monitor.yaml:") and problem in p for p in problems), problems
    assert all("monitor.yaml:0:" not in p for p in problems), problems


def test_unset_credentials_are_a_warning_for_commands_that_do_not_poll(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config",
        feeds=[
            {
                "url": "https://feeds.example/f.xml",
                "auth": {"basic": {"username": "u", "password": "${NOT_SET_PW}"}},
                "proxy": "${NOT_SET_PROXY}",
            }
        ],
    )
    check = run_cli("check", "--config", str(config), cwd=config, env={})
    assert check.returncode == 0, check.stdout + check.stderr
    assert "NOT_SET_PW" in check.stdout + check.stderr
    assert "NOT_SET_PROXY" in check.stdout + check.stderr


async def test_a_feed_proxy_is_refused_while_the_environment_names_one(
    server: LocalServer, proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # httpx's own transports carry the environment's proxy: the feed's would be ignored
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    server.static("/feed", feed_document("havana-wire.xml"), headers=RSS)
    async with make_client() as client:
        result = await fetch_feed(client, server.url("/feed"), Validators(), proxy=proxy.url())
    assert isinstance(result, FetchFailed)
    assert str(result.error) == PROXY_CONFLICT
    assert not result.transient
    assert proxy.seen == []
    assert server.requests_to("/feed") == []


async def test_https_goes_through_the_proxy_in_a_tunnel(
    tmp_path: Path, proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "private-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    secure = LocalServer(tls=context, poll_interval=0.05)
    try:
        guarded(secure, "/feed.xml", {"authorization": f"Bearer {TOKEN}"})
        async with make_client() as client:
            result = await fetch_feed(
                client,
                secure.url("/feed.xml"),
                Validators(),
                headers={"Authorization": f"Bearer {TOKEN}"},
                proxy=proxy.url(f"scout:{PROXY_PASSWORD}@"),
            )
    finally:
        secure.close()
    assert isinstance(result, Fetched), result
    ((target, headers),) = proxy.seen
    assert target == f"127.0.0.1:{secure.port}"  # CONNECT: the proxy saw the host, not the path
    assert headers["proxy-authorization"] == basic("scout", PROXY_PASSWORD)
    assert "authorization" not in headers  # the feed's credentials travel inside the tunnel


def test_access_secrets_stay_out_of_repr_and_dumps(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config",
        feeds=[
            {
                "url": "https://feeds.example/a.xml",
                "auth": {"basic": {"username": "reader", "password": "${WIRE_PASSWORD}"}},
                "proxy": f"http://scout:{PROXY_PASSWORD}@127.0.0.1:3128",
            },
            {"url": "https://feeds.example/b.xml", "auth": {"bearer": "${WIRE_TOKEN}"}},
        ],
    )
    loaded = load_config(config, ENV)
    basic_feed, bearer_feed = loaded.settings.feeds
    assert basic_feed.request_headers() == {"Authorization": basic("reader", PASSWORD)}
    assert bearer_feed.request_headers() == {"Authorization": f"Bearer {TOKEN}"}
    assert basic_feed.proxy_url() == f"http://scout:{PROXY_PASSWORD}@127.0.0.1:3128"
    shown = repr(loaded.settings) + loaded.settings.model_dump_json() + str(loaded.settings)
    secrets_absent({"repr and dumps": shown}, PASSWORD, TOKEN, PROXY_PASSWORD)
