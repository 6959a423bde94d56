"""Formats `telegram`, `matrix` and `mattermost` against stand-ins on 127.0.0.1 that check each
request as the real API documents it (method, path, headers, JSON fields), through the real
dispatcher and outbox; their limits with hostile text; their secrets kept out of logs, errors
and the commands' output.

Telegram Bot API `sendMessage` (text 1-4096 characters after entities parsing; parse_mode HTML
accepts b, i, a, code… and the entities &lt; &gt; &amp; &quot;; a 429 says
`parameters.retry_after`). Matrix client-server API v3 `PUT /rooms/{roomId}/send/{eventType}/
{txnId}` (Authorization: Bearer; a repeated txnId is the same event; M_LIMIT_EXCEEDED carries
`retry_after_ms`). Mattermost incoming webhooks (`text` in Markdown; `username`, `icon_url`,
`channel` optional).
"""

from __future__ import annotations

import email
import email.policy
import html
import json
import logging
import threading
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.delivery import matrix, mattermost, telegram
from monitor.delivery.base import Alert
from monitor.delivery.dispatcher import Dispatcher, make_delivery_client
from monitor.delivery.sending import attempt
from monitor.delivery.settings import WebhookConfig
from monitor.delivery.targets import target_for
from monitor.delivery.text import utf16
from monitor.errors import PermanentDeliveryError
from monitor.store import DueDelivery
from tests.conftest import run_cli
from tests.delivery.support import alert, store_with_alerts
from tests.delivery.test_events import GIST, TYPES, stored
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.servers import LocalServer, RecordedRequest, Reply

TOKEN = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"
ACCESS = "syt_bW9uaXRvcg_SECRETaccessTOKEN_1a2b3c"
ROOM = "!ourRoom:example.org"
LONG = ("Гавана & <b>Havana</b> 🚢 *bold* @channel " * 2000).strip()
HOSTILE = {"title": "T" * 10_000 + " & <script>", "summary": LONG, "link": "https://e.example/x"}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_delivery_client() as c:
        yield c


def _due(sent: Any = None, delivery_id: int = 1) -> DueDelivery:
    message = sent or alert("alrt_5")
    return DueDelivery(delivery_id, message.id, "chat", 0, message.raw)


class _Tags(HTMLParser):
    """The tags an HTML text opens and closes, to check that it is whole and allowed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.seen: set[str] = set()
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.add(tag)
        if tag != "br":
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open.pop() == tag

    def handle_data(self, data: str) -> None:
        self.text += data


def _tags(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    assert parser.open == [], f"unclosed tags {parser.open}"
    return parser


# telegram ---------------------------------------------------------------------------------------


class TelegramStandIn:
    """The Bot API's sendMessage, checked as documented; answers as Telegram does."""

    def __init__(self, server: LocalServer, answers: list[Reply] | None = None) -> None:
        self.server = server
        self.answers = answers or []
        self.messages: list[dict[str, Any]] = []
        server.route(f"/bot{TOKEN}/sendMessage", self._handle)

    def _handle(self, request: RecordedRequest) -> Reply:
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
        document = json.loads(request.body)
        assert set(document) == {"chat_id", "text", "parse_mode", "link_preview_options"}
        assert document["parse_mode"] == "HTML"
        assert document["link_preview_options"] == {"is_disabled": True}
        assert 1 <= utf16(document["text"]) <= 4096
        if self.answers:
            return self.answers.pop(0)
        self.messages.append(document)
        result = {"message_id": len(self.messages), "chat": {"id": document["chat_id"]}}
        return Reply(200, json.dumps({"ok": True, "result": result}).encode())

    @property
    def url(self) -> str:
        return self.server.url("")


def _telegram(server: LocalServer, **settings: Any) -> WebhookConfig:
    return WebhookConfig.model_validate(
        {
            "name": "chat",
            "format": "telegram",
            "url": server.url(""),
            "token": TOKEN,
            "chat_id": -1001234567890,
            "timeout": "5s",
            "retry": ["0s"],
            **settings,
        }
    )


async def test_telegram_sends_html_through_the_outbox(
    tmp_path: Path, server: LocalServer, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = TelegramStandIn(server)
    store = store_with_alerts(tmp_path, 2, ("chat",))
    hook = _telegram(server, rate_limit=100)
    summary = await Dispatcher(store.outbox, client, {"chat": hook}).deliver_due()
    assert summary.delivered == 2
    first = bot.messages[0]
    assert first["chat_id"] == "-1001234567890"
    parsed = _tags(first["text"])
    assert parsed.seen <= {"b", "i", "a", "code"}
    assert "Díaz-Canel <welcomed> the crews" in parsed.text  # escaped, then read back
    assert (
        '<a href="https://wire.example.org/world/2026/03/01/havana-port-call?utm=a&amp;b='
        in (first["text"])
    )
    assert TOKEN not in caplog.text
    assert TOKEN.split(":")[1] not in caplog.text
    store.close()


async def test_telegram_keeps_to_4096_characters_with_hostile_text(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    bot = TelegramStandIn(server)
    outcome = await attempt(client, _telegram(server), _due(alert("alrt_6", **HOSTILE)))
    assert outcome.delivered, outcome.error
    (message,) = bot.messages
    assert utf16(message["text"]) <= 4096
    assert "…" in message["text"]
    assert "<script>" not in message["text"]
    _tags(message["text"])


async def test_telegram_429_pauses_for_its_retry_after_and_costs_no_retry(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    limited = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7"}
    limited["parameters"] = {"retry_after": 7}  # type: ignore[assignment]
    TelegramStandIn(server, [Reply(429, json.dumps(limited).encode())])
    outcome = await attempt(client, _telegram(server), _due())
    assert outcome.rate_limited
    assert outcome.hint.pause == timedelta(seconds=7)


async def test_telegram_refusal_is_kept_without_the_token(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    echo = {"ok": False, "error_code": 400, "description": f"Bad Request: chat not found {TOKEN}"}
    TelegramStandIn(server, [Reply(400, json.dumps(echo).encode())])
    outcome = await attempt(client, _telegram(server), _due())
    assert str(outcome.error).startswith("HTTP 400 Bad Request: ")
    assert "chat not found" in str(outcome.error)
    assert TOKEN not in str(outcome.error)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"token": "not-a-token"}, "a bot token looks like"),
        ({"chat_id": "general"}, "`chat_id` is a chat's number"),
        ({"url": "ftp://api.example"}, "is not an http:// or https:// URL"),
    ],
)
def test_telegram_settings_that_cannot_work(
    server: LocalServer, settings: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        _telegram(server, **settings)


def test_telegram_defaults_to_the_public_bot_api_and_hides_the_token() -> None:
    hook = WebhookConfig.model_validate(
        {"name": "t", "format": "telegram", "token": TOKEN, "chat_id": "@my_alerts"}
    )
    assert hook.url == "https://api.telegram.org"
    request = telegram.build(hook, alert(), 0)
    assert request.url == f"https://api.telegram.org/bot{TOKEN}/sendMessage"
    for shown in (repr(hook), str(hook), hook.safe_url(), repr(request)):
        assert TOKEN not in shown


# matrix -----------------------------------------------------------------------------------------


class MatrixStandIn:
    """A homeserver's send endpoint: PUT with a txnId, idempotent per txnId as the spec says."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.events: dict[str, dict[str, Any]] = {}  # txnId -> content
        self.lose_first_answer = False
        self.limited: list[Reply] = []
        self.lock = threading.Lock()

    def expect(self, message_id: str, hook_name: str = "chat") -> None:
        txn = matrix.transaction_id(message_id, hook_name)
        path = f"/_matrix/client/v3/rooms/%21ourRoom%3Aexample.org/send/m.room.message/{txn}"
        self.server.route(path, lambda request: self._handle(txn, request))

    def _handle(self, txn: str, request: RecordedRequest) -> Reply:
        assert request.method == "PUT"
        assert request.headers["authorization"] == f"Bearer {ACCESS}"
        assert request.headers["content-type"] == "application/json"
        content = json.loads(request.body)
        assert set(content) == {"msgtype", "body", "format", "formatted_body"}
        assert content["format"] == "org.matrix.custom.html"
        assert len(request.body) < 65_536
        if self.limited:
            return self.limited.pop(0)
        with self.lock:
            self.events.setdefault(txn, content)  # a repeated txnId is the same event
            lost, self.lose_first_answer = self.lose_first_answer, False
        if lost:
            return Reply(502, b"bad gateway")  # stored, but the answer never reached us
        return Reply(200, json.dumps({"event_id": f"$event-{txn}"}).encode())


def _matrix(server: LocalServer, **settings: Any) -> WebhookConfig:
    return WebhookConfig.model_validate(
        {
            "name": "chat",
            "format": "matrix",
            "url": server.url(""),
            "room_id": ROOM,
            "access_token": ACCESS,
            "timeout": "5s",
            "retry": ["0s"],
            **settings,
        }
    )


async def test_matrix_retry_with_the_same_transaction_posts_once(
    tmp_path: Path, server: LocalServer, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    room = MatrixStandIn(server)
    room.expect("alrt_0")
    room.lose_first_answer = True
    store = store_with_alerts(tmp_path, 1, ("chat",))
    summary = await Dispatcher(store.outbox, client, {"chat": _matrix(server)}).deliver_due()
    assert (summary.delivered, summary.retrying) == (1, 1)
    assert len(server.requests) == 2
    (content,) = room.events.values()  # one event for two attempts
    assert content["msgtype"] == "m.notice"
    assert "Díaz-Canel <welcomed> the crews" in content["body"]
    parsed = _tags(content["formatted_body"])
    assert parsed.seen <= {"b", "i", "a", "code", "br"}
    assert "Díaz-Canel <welcomed> the crews" in parsed.text
    assert ACCESS not in caplog.text
    store.close()


async def test_matrix_keeps_under_the_event_size_with_hostile_text(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    room = MatrixStandIn(server)
    room.expect("alrt_6")
    outcome = await attempt(
        client, _matrix(server, msgtype="m.text"), _due(alert("alrt_6", **HOSTILE))
    )
    assert outcome.delivered, outcome.error
    (content,) = room.events.values()
    assert content["msgtype"] == "m.text"
    assert "<script>" not in content["formatted_body"]
    _tags(content["formatted_body"])


async def test_matrix_429_pauses_for_retry_after_ms(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    room = MatrixStandIn(server)
    room.expect("alrt_5")
    body = {"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests", "retry_after_ms": 2500}
    room.limited = [Reply(429, json.dumps(body).encode())]
    outcome = await attempt(client, _matrix(server), _due())
    assert outcome.rate_limited
    assert outcome.hint.pause == timedelta(seconds=2.5)


def test_matrix_needs_a_room_id_not_an_alias(server: LocalServer) -> None:
    with pytest.raises(ValueError, match="room_id"):
        _matrix(server, room_id="#alerts:example.org")


# mattermost -------------------------------------------------------------------------------------


def _mattermost(server: LocalServer, **settings: Any) -> WebhookConfig:
    return WebhookConfig.model_validate(
        {
            "name": "chat",
            "format": "mattermost",
            "url": server.url("/hooks/xq9hd6kqyfbtdp5tzm1fcrs7nw"),
            "timeout": "5s",
            **settings,
        }
    )


def _mattermost_stand_in(server: LocalServer) -> list[dict[str, Any]]:
    posts: list[dict[str, Any]] = []

    def handle(request: RecordedRequest) -> Reply:
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
        document = json.loads(request.body)
        assert set(document) <= {"text", "username", "icon_url", "channel"}
        assert 0 < len(document["text"]) <= 4000
        posts.append(document)
        return Reply(200, b"ok", {"Content-Type": "text/plain"})

    server.route("/hooks/xq9hd6kqyfbtdp5tzm1fcrs7nw", handle)
    return posts


async def test_mattermost_posts_markdown_with_mentions_disabled(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    posts = _mattermost_stand_in(server)
    hook = _mattermost(
        server, username="monitor", channel="alerts", icon_url="https://e.example/i.png"
    )
    outcome = await attempt(client, hook, _due())
    assert outcome.delivered, outcome.error
    (post,) = posts
    assert (post["username"], post["channel"], post["icon_url"]) == (
        "monitor",
        "alerts",
        "https://e.example/i.png",
    )
    text = post["text"]
    assert "@everyone" not in text  # the feed's mention is shown, not sent
    assert "@\u200beveryone" in text
    assert "\\*bold\\*" in text
    assert "(<https://wire.example.org/world/2026/03/01/havana-port-call" in text


async def test_mattermost_keeps_to_its_limit_with_hostile_text(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    posts = _mattermost_stand_in(server)
    outcome = await attempt(client, _mattermost(server), _due(alert("alrt_6", **HOSTILE)))
    assert outcome.delivered, outcome.error
    (post,) = posts
    assert post["text"].endswith("…") or "…" in post["text"]
    assert "@channel" not in post["text"]
    assert set(post) == {"text"}


def test_mattermost_text_is_rendered_the_same_on_every_attempt() -> None:
    hook = WebhookConfig.model_validate(
        {"name": "m", "format": "mattermost", "url": "https://chat.example.org/hooks/abc"}
    )
    assert mattermost.build(hook, alert(), 1).body == mattermost.build(hook, alert(), 2).body


# the CLI ----------------------------------------------------------------------------------------


def test_the_commands_deliver_to_each_and_never_show_their_secrets(
    tmp_path: Path, server: LocalServer
) -> None:
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))  # 2 alerts
    bot = TelegramStandIn(server)
    room = MatrixStandIn(server)
    posts = _mattermost_stand_in(server)
    hooks: list[dict[str, object]] = [
        {
            "name": "tg",
            "format": "telegram",
            "url": server.url(""),
            "token": "${TG_TOKEN}",
            "chat_id": "@my_alerts",
            "rate_limit": 100,
        },
        {
            "name": "chat",
            "format": "matrix",
            "url": server.url(""),
            "room_id": ROOM,
            "access_token": "${MATRIX_TOKEN}",
            "events": ["feed.unhealthy"],  # its delivery is tested above; here, its listing
        },
        {
            "name": "mm",
            "format": "mattermost",
            "url": server.url("/hooks/xq9hd6kqyfbtdp5tzm1fcrs7nw"),
        },
    ]
    config = write_config(
        tmp_path / "config", feeds=[{"url": server.url("/wire.xml")}], webhooks=hooks
    )
    env = {"TG_TOKEN": TOKEN, "MATRIX_TOKEN": ACCESS}
    run = run_cli("check", "--config", str(config), cwd=config, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    outputs = []
    for args in (("--log-level", "debug", "run", "--once"), ("webhooks",), ("alerts", "--json")):
        result = run_cli(*args, "--config", str(config), cwd=config, env=env)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        outputs.append(result.stdout + result.stderr)
    assert (len(bot.messages), len(posts), room.events) == (2, 2, {})
    row = next(line.split() for line in outputs[1].splitlines() if line.startswith("tg "))
    assert row[:2] == ["tg", "telegram"]
    assert row[2].startswith("http://127.0.0.1:")  # the host; the token in the path never
    for output in outputs:
        assert TOKEN not in output
        assert TOKEN.split(":")[1] not in output
        assert ACCESS not in output
        assert "xq9hd6kqyfbtdp5tzm1fcrs7nw" not in output


def test_check_without_the_tokens_set_warns_and_passes(tmp_path: Path, server: LocalServer) -> None:
    hooks: list[dict[str, object]] = [
        {"name": "tg", "format": "telegram", "token": "${TG_TOKEN}", "chat_id": "@my_alerts"},
        {
            "name": "chat",
            "format": "matrix",
            "url": "${MATRIX_HOMESERVER}",
            "room_id": ROOM,
            "access_token": "${MATRIX_TOKEN}",
        },
    ]
    config = write_config(tmp_path / "config", feeds=[{"url": server.url("/f")}], webhooks=hooks)
    result = run_cli("check", "--config", str(config), cwd=config, env={})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert all(name in output for name in ("TG_TOKEN", "MATRIX_HOMESERVER", "MATRIX_TOKEN"))


# every event, every new target ------------------------------------------------------------------

NEW_TARGETS: dict[str, dict[str, Any]] = {
    "telegram": {"token": TOKEN, "chat_id": "@my_alerts"},
    "matrix": {"url": "https://matrix.example.org", "room_id": ROOM, "access_token": ACCESS},
    "mattermost": {"url": "https://chat.example.org/hooks/abc"},
    "email": {"url": "smtp://127.0.0.1:25", "to": ["a@example.org"], "from": "m@example.org"},
    "apprise": {"url": "json://127.0.0.1:1/"},
}


def _shown(name: str, body: bytes) -> str:
    """What a reader of each target sees, entities and escapes undone."""
    if name == "email":
        message = email.message_from_bytes(body, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return "\n".join(
            [str(message["Subject"]), *(str(p.get_content()) for p in message.iter_parts())]
        )
    document = json.loads(body)
    texts = [
        str(v) for k, v in document.items() if k in ("text", "body", "title", "formatted_body")
    ]
    return html.unescape("\n".join(texts)).replace("\\", "").replace("@\u200b", "@")


@pytest.mark.parametrize("event_type", TYPES)
@pytest.mark.parametrize("name", list(NEW_TARGETS))
def test_each_new_target_tells_every_event(name: str, event_type: str) -> None:
    hook = WebhookConfig.model_validate({"name": "n", "format": name, **NEW_TARGETS[name]})
    request = target_for(hook).build(hook, stored(event_type), 1_750_000_000)
    shown = _shown(name, request.body)
    for gist in GIST[event_type]:
        assert gist in shown, (name, gist)


@pytest.mark.parametrize("name", list(NEW_TARGETS))
def test_a_stored_body_that_is_no_event_fails_each_new_target(name: str) -> None:
    hook = WebhookConfig.model_validate({"name": "n", "format": name, **NEW_TARGETS[name]})
    with pytest.raises(PermanentDeliveryError, match="not a monitor event"):
        target_for(hook).build(hook, Alert.parse("evt_x", '{"hello": "world"}'), 1)
