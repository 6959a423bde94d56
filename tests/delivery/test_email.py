"""Format `email` against a real SMTP server (aiosmtpd) on 127.0.0.1: plain, STARTTLS with a
private CA (trustme), implicit TLS, AUTH; what arrives (multipart, headers, bodies), 4xx then
success through the real dispatcher and outbox, a 5xx dead letter, the deadline, the config's
checks, and the password kept out of logs, errors and command output."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import logging
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from monitor.delivery import email as email_target
from monitor.delivery.base import Alert
from monitor.delivery.dispatcher import Dispatcher, make_delivery_client
from monitor.delivery.policy import Decision, DeliveryOutcome, Next, decide
from monitor.delivery.sending import attempt
from monitor.delivery.settings import WebhookConfig
from monitor.errors import PermanentDeliveryError, RejectedDeliveryError, TransientDeliveryError
from monitor.store import DueDelivery, Store
from tests.conftest import run_cli
from tests.delivery.support import alert, event, store_with_alerts
from tests.delivery.test_noise import STORIES, deliver_until_idle, record
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.servers import LocalServer

PASSWORD = "s3cret-Pa55word-xyz"
USER = "monitor@example.org"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    login: bytes | None
    reply: str

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Inbox:
    """aiosmtpd's handler: records every DATA, answers with the scripted replies first."""

    replies: list[str] = field(default_factory=list)
    rcpt_reply: str | None = None
    received: list[Received] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply is not None:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        reply = self.replies.pop(0) if self.replies else "250 2.0.0 Ok: queued as 42"
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        assert isinstance(envelope.content, bytes)
        with self.changed:
            self.received.append(
                Received(
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    envelope.content,
                    session.ssl is not None,
                    login,
                    reply,
                )
            )
            self.changed.notify_all()
        return reply


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class Silent(asyncio.Protocol):
    """Accepts a connection and never says a word."""

    transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport


class SmtpServer:
    """aiosmtpd on 127.0.0.1, a free port, in a thread of its own with its own event loop.

    `starttls`: a server context offered by STARTTLS; `implicit`: TLS from the first byte;
    `auth`: AUTH (PLAIN, LOGIN) required, checked against USER and PASSWORD."""

    def __init__(
        self,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit: ssl.SSLContext | None = None,
        auth: bool = False,
        silent: bool = False,
    ) -> None:
        self.inbox = Inbox()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        self.protocols: list[asyncio.Protocol] = []

        def factory() -> asyncio.Protocol:
            protocol = Silent() if silent else self._smtp(starttls, implicit, auth)
            self.protocols.append(protocol)
            return protocol

        started: Future[asyncio.Server] = asyncio.run_coroutine_threadsafe(
            self.loop.create_server(factory, "127.0.0.1", 0, ssl=implicit), self.loop
        )
        self.server = started.result(10)
        self.port = self.server.sockets[0].getsockname()[1]

    def _smtp(
        self, starttls: ssl.SSLContext | None, implicit: ssl.SSLContext | None, auth: bool
    ) -> SMTP:
        return SMTP(
            self.inbox,
            hostname="mx.test",
            tls_context=starttls,
            require_starttls=starttls is not None,
            authenticator=_authenticate if auth else None,
            auth_required=auth,
            auth_require_tls=implicit is None,  # over implicit TLS aiosmtpd cannot tell
            loop=self.loop,
        )

    def url(self, scheme: str = "smtp") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def received(self) -> list[Received]:
        with self.inbox.changed:
            return list(self.inbox.received)

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            for protocol in self.protocols:  # connections a test left open
                transport = getattr(protocol, "transport", None)
                if isinstance(transport, asyncio.BaseTransport) and not transport.is_closing():
                    transport.abort()
            await self.server.wait_closed()
            await asyncio.sleep(0)  # let the aborted transports finish closing

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_delivery_client() as c:
        yield c


def _hook(url: str, **settings: Any) -> WebhookConfig:
    base: dict[str, Any] = {
        "name": "mail",
        "format": "email",
        "url": url,
        "to": ["Analysts <analysts@example.org>", "duty@example.org"],
        "from": "Monitor <alerts@example.org>",
        "timeout": "5s",
        "retry": ["0s"],
    }
    return WebhookConfig.model_validate({**base, **settings})


def _due(message: Alert | None = None, delivery_id: int = 1) -> DueDelivery:
    sent = message or alert("alrt_7")
    return DueDelivery(delivery_id, sent.id, "mail", 0, sent.raw)


# what arrives -----------------------------------------------------------------------------------


async def test_a_plain_delivery_arrives_as_text_and_html_with_stable_headers(
    smtp: SmtpServer, client: httpx.AsyncClient
) -> None:
    hook = _hook(smtp.url(), starttls="off")
    outcome = await attempt(client, hook, _due())
    assert outcome.delivered, outcome.error
    assert outcome.answer.startswith("SMTP 250 ")
    (got,) = smtp.received
    assert got.mail_from == "alerts@example.org"
    assert got.rcpt_tos == ["analysts@example.org", "duty@example.org"]
    assert not got.tls
    message = got.message
    assert message.get_content_type() == "multipart/alternative"
    assert message["Message-ID"] == "<alrt_7.mail@example.org>"
    assert message["From"] == "Monitor <alerts@example.org>"
    assert message["To"] == "Analysts <analysts@example.org>, duty@example.org"
    assert message["Subject"] == (
        "[HIGH] Russian-Cuban state contacts: "
        "Russian warships arrive in Havana for a five-day port call"
    )
    assert message["Date"] == "Sun, 01 Mar 2026 12:00:02 +0000"  # the event's time
    assert message["List-Id"] == "monitor mail <mail.monitor.example.org>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Monitor-Event"] == "alert.created"
    text_part, html_part = message.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"
    text = text_part.get_content()
    assert "Díaz-Canel <welcomed> the crews" in text  # plain text is not escaped
    assert "https://wire.example.org/world/2026/03/01/havana-port-call" in text
    assert "alrt_7" in text
    html = html_part.get_content()
    assert "Díaz-Canel &lt;welcomed&gt; the crews" in html  # feed text escaped
    assert "<welcomed>" not in html
    assert 'href="https://wire.example.org/world/2026/03/01/havana-port-call?utm=a&amp;b=' in html


async def test_starttls_with_the_private_ca_and_auth(
    ca: trustme.CA, ca_file: str, client: httpx.AsyncClient
) -> None:
    server = SmtpServer(starttls=_server_context(ca), auth=True)
    try:
        hook = _hook(server.url(), ca_file=ca_file, username=USER, password=PASSWORD)
        outcome = await attempt(client, hook, _due())
        assert outcome.delivered, outcome.error
        (got,) = server.received
        assert got.tls  # upgraded before anything was said
        assert got.login == USER.encode()
    finally:
        server.close()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_implicit_tls_with_auth(
    ca: trustme.CA, ca_file: str, client: httpx.AsyncClient
) -> None:
    server = SmtpServer(implicit=_server_context(ca), auth=True)
    try:
        hook = _hook(server.url("smtps"), ca_file=ca_file, username=USER, password=PASSWORD)
        outcome = await attempt(client, hook, _due())
        assert outcome.delivered, outcome.error
        (got,) = server.received
        assert got.login == USER.encode()
    finally:
        server.close()


async def test_a_certificate_of_an_unknown_ca_is_refused(
    ca: trustme.CA, client: httpx.AsyncClient
) -> None:
    server = SmtpServer(implicit=_server_context(ca))
    try:
        outcome = await attempt(client, _hook(server.url("smtps")), _due())  # system CAs only
        assert isinstance(outcome.error, TransientDeliveryError)
        assert "CERTIFICATE_VERIFY_FAILED" in str(outcome.error)
        assert server.received == []
    finally:
        server.close()


async def test_starttls_required_refuses_a_server_that_does_not_offer_it(
    smtp: SmtpServer, client: httpx.AsyncClient
) -> None:
    outcome = await attempt(client, _hook(smtp.url()), _due())  # starttls: required (default)
    assert isinstance(outcome.error, PermanentDeliveryError)
    assert "STARTTLS" in str(outcome.error)
    assert smtp.received == []
    opportunistic = await attempt(client, _hook(smtp.url(), starttls="opportunistic"), _due())
    assert opportunistic.delivered, opportunistic.error


async def test_a_wrong_password_is_rejected_and_never_shown(
    ca: trustme.CA, ca_file: str, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = SmtpServer(starttls=_server_context(ca), auth=True)
    try:
        wrong = "wrong-" + PASSWORD
        hook = _hook(server.url(), ca_file=ca_file, username=USER, password=wrong)
        outcome = await attempt(client, hook, _due())
        assert isinstance(outcome.error, RejectedDeliveryError)
        assert str(outcome.error).startswith("SMTP 535 ")
        for shown in (str(outcome.error), caplog.text, repr(hook), str(hook), hook.safe_url()):
            assert PASSWORD not in shown
        assert server.received == []
    finally:
        server.close()


async def test_a_server_that_never_answers_is_cut_off_at_the_deadline(
    client: httpx.AsyncClient,
) -> None:
    server = SmtpServer(silent=True)
    try:
        hook = _hook(server.url(), starttls="off", timeout="1s")
        outcome = await attempt(client, hook, _due())
        assert isinstance(outcome.error, TransientDeliveryError)
        assert str(outcome.error) == "no complete answer within 1s"
    finally:
        server.close()


async def test_every_recipient_refused_with_5xx_is_rejected(
    smtp: SmtpServer, client: httpx.AsyncClient
) -> None:
    smtp.inbox.rcpt_reply = "550 5.1.1 No such user"
    outcome = await attempt(client, _hook(smtp.url(), starttls="off"), _due())
    assert isinstance(outcome.error, RejectedDeliveryError)
    assert "SMTP 550 5.1.1 No such user (every recipient refused)" in str(outcome.error)


# through the outbox -----------------------------------------------------------------------------


async def test_a_4xx_is_retried_and_the_retry_is_the_same_message(
    tmp_path: Path, smtp: SmtpServer, client: httpx.AsyncClient
) -> None:
    store = store_with_alerts(tmp_path, 1, ("mail",))
    smtp.inbox.replies = ["451 4.7.1 Greylisted, try again later"]
    dispatcher = Dispatcher(store.outbox, client, {"mail": _hook(smtp.url(), starttls="off")})
    summary = await dispatcher.deliver_due()  # `retry: [0s]`: the retry is due in this pass
    assert (summary.delivered, summary.retrying, summary.failed) == (1, 1, 0)
    greylisted, accepted = smtp.received
    assert (greylisted.reply[:3], accepted.reply[:3]) == ("451", "250")
    assert greylisted.content == accepted.content  # the same bytes: Message-ID, boundary, body
    assert accepted.message["Message-ID"] == "<alrt_0.mail@example.org>"
    (done,) = store.outbox.recent_alerts()
    assert (done.state, done.attempts) == ("delivered", 2)
    store.close()


async def test_a_5xx_fails_the_delivery_at_once_and_replay_sends_it_again(
    tmp_path: Path, smtp: SmtpServer, client: httpx.AsyncClient
) -> None:
    store = store_with_alerts(tmp_path, 1, ("mail",))
    smtp.inbox.replies = ["554 5.7.1 Message rejected as spam"]
    hook = _hook(smtp.url(), starttls="off", retry=["0s", "0s", "0s"])
    dispatcher = Dispatcher(store.outbox, client, {"mail": hook})
    summary = await dispatcher.deliver_due()
    assert (summary.delivered, summary.retrying, summary.failed) == (0, 0, 1)
    assert len(smtp.received) == 1  # not retried on the schedule
    (failed,) = store.outbox.recent_alerts()
    assert failed.state == "failed"
    assert failed.last_error == "SMTP 554 5.7.1 Message rejected as spam"
    assert store.outbox.requeue(datetime.now(UTC), alert_ids=["alrt_0"]) == 1
    assert (await dispatcher.deliver_due()).delivered == 1
    assert len(smtp.received) == 2
    store.close()


# rendering --------------------------------------------------------------------------------------


def _digest(stories: int, title: str = "Story", link: str = "https://e.example/") -> Alert:
    sample = event("alrt_1")["data"]
    item = sample["item"]
    document = {
        "type": "alert.digest",
        "timestamp": "2026-03-01T13:00:00Z",
        "data": {
            "id": "dgst_1",
            "window": {"start": "2026-03-01T12:00:00Z", "end": "2026-03-01T13:00:00Z"},
            "count": stories,
            "part": {"number": 1, "of": 1},
            "stories": [
                {
                    "group": None,
                    "rule": sample["rule"],
                    "severity": "high",
                    "score": 90.0,
                    "item": {**item, "title": f"{title} {i}", "link": f"{link}{i}"},
                    "sources": 1,
                }
                for i in range(stories)
            ],
        },
    }
    return Alert.parse("dgst_1", json.dumps(document))


def test_a_digest_is_one_message_listing_every_story() -> None:
    hook = _hook("smtp://127.0.0.1:25", starttls="off")
    body = email_target.build(hook, _digest(60), 0).body
    message = email.message_from_bytes(body, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "Digest: 60 alerts in 60 stories"
    assert message["Message-ID"] == "<dgst_1.mail@example.org>"
    text_part, html_part = message.iter_parts()
    for part in (text_part.get_content(), html_part.get_content()):
        assert all(f"Story {i}" in part for i in range(60))  # not the chat targets' ten
        assert "more" not in part


def test_a_digest_too_big_for_one_message_lists_fewer_stories_and_says_so() -> None:
    hook = _hook("smtp://127.0.0.1:25", starttls="off")
    huge = _digest(1000, title="Ж" * 5000, link="https://e.example/" + "x" * 1900)
    body = email_target.build(hook, huge, 0).body
    assert len(body) <= email_target.MESSAGE_MAX_BYTES
    message = email.message_from_bytes(body, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text = next(iter(message.iter_parts())).get_content()
    assert "… and " in text
    assert " more" in text


def test_every_attempt_renders_the_same_bytes() -> None:
    hook = _hook("smtp://127.0.0.1:25", starttls="off")
    assert email_target.build(hook, alert("alrt_3"), 1).body == (
        email_target.build(hook, alert("alrt_3"), 2).body
    )


def test_hostile_text_cannot_add_headers() -> None:
    hook = _hook("smtp://127.0.0.1:25", starttls="off")
    sneaky = alert("alrt_4", title="Hi\r\nBcc: victim@example.org\r\n\r\nbody")
    message = email.message_from_bytes(
        email_target.build(hook, sneaky, 0).body, policy=email.policy.default
    )
    assert message["Bcc"] is None
    assert message["Subject"].endswith("Hi Bcc: victim@example.org body")


# settings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"url": "https://mail.example.org"}, "is not smtp://host:port"),
        ({"url": "smtp://user:pw@mail.example.org"}, "not in the URL"),
        ({"to": []}, "at least 1"),
        ({"to": ["not-an-address"]}, "is not an email address"),
        ({"from": "Monitor"}, "is not an email address"),
        ({"username": USER}, "`username` and `password` go together"),
        ({"url": "smtps://mail.example.org", "starttls": "off"}, "`starttls` is for smtp://"),
        (
            {"url": "smtp://mail.example.org", "starttls": "off", "username": "u", "password": "p"},
            "could send the password in clear to mail.example.org",
        ),
        ({"starttls": "maybe"}, "starttls"),
    ],
)
def test_settings_that_cannot_work_are_config_errors(
    settings: dict[str, Any], problem: str
) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        _hook(settings.pop("url", "smtp://mail.example.org"), **settings)
    assert problem in str(caught.value)


def test_a_relay_on_this_machine_may_take_a_password_in_clear() -> None:
    hook = _hook("smtp://127.0.0.1:25", starttls="off", username=USER, password=PASSWORD)
    assert isinstance(hook, email_target.EmailWebhook)
    assert hook.port == 25
    assert _hook("smtps://mail.example.org").port == 465  # type: ignore[attr-defined]
    assert _hook("smtp://mail.example.org").port == 587  # type: ignore[attr-defined]


# the CLI ----------------------------------------------------------------------------------------


def test_the_commands_deliver_and_never_show_the_password(
    tmp_path: Path, server: LocalServer, ca: trustme.CA, ca_file: str
) -> None:
    smtp = SmtpServer(starttls=_server_context(ca), auth=True)
    try:
        serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))  # 2 alerts
        hook = {
            "name": "mail",
            "format": "email",
            "url": smtp.url(),
            "to": ["analysts@example.org"],
            "from": "alerts@example.org",
            "username": USER,
            "password": "${SMTP_PASSWORD}",
            "ca_file": ca_file,
        }
        config = write_config(
            tmp_path / "config", feeds=[{"url": server.url("/wire.xml")}], webhooks=[hook]
        )
        env = {"SMTP_PASSWORD": PASSWORD}
        outputs = []
        for args in (
            ("check",),
            ("--log-level", "debug", "run", "--once"),
            ("webhooks",),
            ("webhooks", "--json"),
            ("alerts",),
            ("alerts", "--json"),
        ):
            result = run_cli(*args, "--config", str(config), cwd=config, env=env)
            assert result.returncode == 0, (args, result.stdout, result.stderr)
            outputs.append(result.stdout + result.stderr)
        assert len(smtp.received) == 2
        assert all(got.login == USER.encode() and got.tls for got in smtp.received)
        row = next(line.split() for line in outputs[2].splitlines() if line.startswith("mail "))
        assert row[:3] == ["mail", "email", f"smtp://127.0.0.1:{smtp.port}/"]
        for output in outputs:
            assert PASSWORD not in output
    finally:
        smtp.close()


def test_the_policy_fails_a_rejected_delivery_at_once_and_retries_a_transient_one() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    schedule = [timedelta(minutes=5), timedelta(hours=1)]
    rejected = DeliveryOutcome(None, RejectedDeliveryError("SMTP 550 no"), None, 0.1)
    assert decide(rejected, attempts=0, retry=schedule, now=now) == Decision(Next.FAILED, None, 1)
    greylisted = DeliveryOutcome(None, TransientDeliveryError("SMTP 451 later"), None, 0.1)
    retried = decide(greylisted, attempts=0, retry=schedule, now=now)
    assert retried.next is Next.RETRY
    assert retried.next_attempt_at is not None
    assert retried.next_attempt_at >= now + timedelta(minutes=5)


def test_check_without_the_server_or_password_set_warns_and_passes(
    tmp_path: Path, server: LocalServer
) -> None:
    hook = {
        "name": "mail",
        "format": "email",
        "url": "${SMTP_URL}",
        "to": ["analysts@example.org"],
        "from": "alerts@example.org",
        "username": USER,
        "password": "${SMTP_PASSWORD}",
    }
    config = write_config(tmp_path / "config", feeds=[{"url": server.url("/f")}], webhooks=[hook])
    result = run_cli("check", "--config", str(config), cwd=config, env={})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SMTP_URL" in output
    assert "SMTP_PASSWORD" in output


async def test_a_digest_window_arrives_as_one_email(
    tmp_path: Path, smtp: SmtpServer, client: httpx.AsyncClient
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}")
    for i, story in enumerate(STORIES["story"]):  # one story told by five outlets
        record(store, story, f"alrt_{i}", ["mail"])
    record(store, STORIES["unrelated"], "alrt_u", ["mail"])
    hook = _hook(smtp.url(), starttls="off", group="12h", digest="1s")
    await deliver_until_idle(Dispatcher(store.outbox, client, {"mail": hook}))
    (got,) = smtp.received
    message = got.message
    assert message["Subject"] == "Digest: 6 alerts in 2 stories"
    assert message["X-Monitor-Event"] == "alert.digest"
    assert str(message["Message-ID"]).startswith("<dgst_")
    text = next(iter(message.iter_parts())).get_content()
    assert STORIES["story"][0]["title"] in text
    assert STORIES["unrelated"]["title"] in text
    assert "5 sources" in text
    assert {r.state for r in store.outbox.recent_alerts()} == {"delivered"}
    store.close()
