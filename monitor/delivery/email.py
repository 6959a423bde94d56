"""Format `email`: each event as one email, sent over SMTP (aiosmtplib).

`url` is the SMTP server: `smtp://host:port` (port 587 by default) upgraded with STARTTLS, or
`smtps://host:port` (465 by default), TLS from the first byte. `starttls` says what an smtp://
connection does: `required` (the default: the message, and the password, never cross the
network in clear; a server that does not offer STARTTLS fails the attempt), `opportunistic`
(upgrade when offered), `off` (plain: for a relay on this machine). The server's certificate is
verified against the system's CAs, or `ca_file`. `username` and `password` (write
`${SMTP_PASSWORD}`) log in after TLS; a password over a plain connection to another host is a
config error.

The message is multipart/alternative, plain text and HTML (feed text escaped), rendered from
the stored event like every target's body: the same bytes on every attempt, headers included.
`Message-ID` is made of the event's id and the webhook's name (`<alrt_….analysts@domain>`), so
a retry or a replay is recognisably the same message (mail clients thread and deduplicate on
it); `Date` is the event's time; `List-Id` names the webhook, so filters can sort by it;
`Auto-Submitted: auto-generated` keeps vacation responders quiet. A digest is one message
listing every story (at most `digest_max_items`); the whole message is kept under
`MESSAGE_MAX_BYTES`, listing fewer stories ("… and N more") when it would not fit.

What the server answers is the outcome: a 4xx reply (greylisting, a full queue) is transient
and retried on the schedule; a 5xx reply means, by RFC 5321, that repeating the same request
cannot help, so the delivery fails at once (RejectedDeliveryError), to be replayed once the
cause is fixed. A message some recipients refused and others took is delivered (sending it
again would repeat it to those that took it); the refusals are logged. The webhook's `timeout`
bounds the whole exchange. The password is never logged, shown or put in an error.

The SMTP host is the operator's choice, as a webhook's URL is, and the client follows nowhere
else (SMTP has no redirects): no address policy applies, as for webhooks.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import quoprimime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr
from html import escape as html_escape
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from monitor.delivery import lines
from monitor.delivery.base import Alert, AlertView, OutgoingRequest, Target
from monitor.delivery.notices import Entry, Notice, alert_label, notice
from monitor.delivery.settings import UNSET_URL, WebhookConfig
from monitor.delivery.text import clip, one_line
from monitor.errors import (
    DeliveryError,
    PermanentDeliveryError,
    RejectedDeliveryError,
    TransientDeliveryError,
)
from monitor.events import AlertCreated, AlertDigest, Event

if TYPE_CHECKING:
    import aiosmtplib

log = logging.getLogger(__name__)
NAME = "email"
SUBJECT_MAX = 200
REPLY_MAX = 200  # characters of a server's reply kept in an error
MESSAGE_MAX_BYTES = 1_000_000  # far under any server's SIZE; a notification, not a newsletter
HEADERS_BUDGET = 16_384  # headers, MIME parts, the HTML page around the lines
PORTS = {"smtp": 587, "smtps": 465}
_URL = re.compile(r"^smtps?://[^/@\s?#]+/?$", re.IGNORECASE)
_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
Starttls = Literal["required", "opportunistic", "off"]
_STARTTLS: dict[str, bool | None] = {"required": True, "opportunistic": None, "off": False}


def smtp_url(value: str) -> str:
    """`smtp://host[:port]` or `smtps://host[:port]`; ValueError says what is wrong."""
    if value == UNSET_URL:  # a `${NAME}` unset, for a command that does not deliver
        return value
    if not _URL.match(value) or urlsplit(value).hostname is None:
        raise ValueError(
            f"{value!r} is not smtp://host:port or smtps://host:port (the login goes in "
            "`username` and `password`, not in the URL)"
        )
    urlsplit(value).port  # noqa: B018 - raises ValueError for a port out of range
    return value


class EmailWebhook(WebhookConfig):
    """The settings of format `email`: the SMTP server, the addresses, the login."""

    format: Literal["email"] = Field(description="`email`: one email per event, over SMTP.")
    url: str = Field(
        description="The SMTP server: `smtp://host:port` (STARTTLS; port 587 by default) or "
        "`smtps://host:port` (TLS from the start; 465 by default).",
        json_schema_extra={"examples": ["smtp://mail.example.org:587"]},
    )
    to: list[str] = Field(
        min_length=1,
        max_length=100,
        description="Recipients: `a@example.org` or `Name <a@example.org>`.",
    )
    sender: str = Field(
        alias="from",
        description="The sender, `alerts@example.org` or `Monitor <alerts@example.org>`; its "
        "domain also names the Message-ID.",
    )
    username: str | None = Field(default=None, description="Log in as this user (with TLS).")
    password: SecretStr | None = Field(
        default=None, description="The login's password: write `${SMTP_PASSWORD}`. Never shown."
    )
    starttls: Starttls = Field(
        default="required",
        description="smtp:// only: `required` (default; fail rather than send in clear), "
        "`opportunistic` (when the server offers it) or `off` (a relay on this machine).",
    )
    ca_file: str | None = Field(
        default=None,
        description="A PEM file of the CA(s) that sign the server's certificate (a private "
        "relay); default: the system's.",
    )

    _check_url = field_validator("url")(smtp_url)

    @field_validator("to")
    @classmethod
    def _check_to(cls, value: list[str]) -> list[str]:
        for address in value:
            address_of(address)
        return value

    @field_validator("sender")
    @classmethod
    def _check_sender(cls, value: str) -> str:
        address_of(value)
        return value

    def format_problem(self) -> str | None:
        if (self.username is None) != (self.password is None):
            return "`username` and `password` go together"
        implicit = self.scheme == "smtps"
        if implicit and "starttls" in self.model_fields_set:
            return "`starttls` is for smtp://; smtps:// is TLS from the start"
        if (
            self.password is not None
            and not implicit
            and self.starttls != "required"
            and not _loopback(self.host)
        ):
            return (
                f"`starttls: {self.starttls}` could send the password in clear to "
                f"{self.host}: use `starttls: required` or smtps://"
            )
        return None

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme.lower()

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or PORTS[self.scheme]


def address_of(text: str) -> str:
    """The address in `Name <a@b>` or `a@b`; ValueError when there is none."""
    if "\r" in text or "\n" in text:
        raise ValueError("an address is one line")
    _name, address = parseaddr(text)
    if not _ADDRESS.match(address):
        raise ValueError(f"{text!r} is not an email address")
    return address


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# the message ---------------------------------------------------------------------------------


def message_id(alert_id: str, hook: EmailWebhook) -> str:
    """`<event.webhook@domain>`: the same for every attempt and replay of one delivery."""
    domain = address_of(hook.sender).rpartition("@")[2]
    return f"<{_SAFE.sub('_', alert_id)}.{_SAFE.sub('_', hook.name)}@{domain}>"


def _date(event: Event, timestamp: int) -> str:
    try:
        when = datetime.strptime(event.timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        when = datetime.fromtimestamp(timestamp, UTC)
    return format_datetime(when)


def _digest_notice(alert_id: str, event: AlertDigest) -> Notice:
    """A digest with every story listed, not the chat targets' first ten."""
    short = notice(alert_id, event)
    entries = []
    for story in event.data.stories:
        n = story.sources
        note = f"{story.severity}, {n} sources" if n > 1 else story.severity
        feed = (story.item.feed.name or "").strip()
        entries.append(
            Entry(
                story.item.title.strip() or "(untitled item)",
                story.item.link,
                f"{note} · {feed}" if feed else note,
            )
        )
    return Notice(
        title=short.title,
        lines=short.lines,
        entries=entries,
        severity=short.severity,
        footer=short.footer,
    )


Row = tuple[str, str]  # a line laid out as plain text and as HTML


def _laid(line: lines.Line) -> Row:
    return lines.text(line), lines.html(line)


@dataclass(frozen=True, slots=True)
class Body:
    """The message's lines, each laid out once; a digest's entries apart from the rest, so
    that fewer of them can be listed without laying anything out again."""

    subject: str
    head: list[Row]
    entries: list[Row] = field(default_factory=list)
    tail: list[Row] = field(default_factory=list)

    @classmethod
    def of(cls, alert: Alert) -> Body:
        event = alert.typed()
        if isinstance(event, AlertCreated):
            view = AlertView.of(alert.id, event)
            return cls(alert_label(view), [_laid(line) for line in lines.alert_lines(view)])
        if not isinstance(event, AlertDigest):
            note = notice(alert.id, event)
            return cls(note.title, [_laid(line) for line in lines.notice_lines(note)])
        note = _digest_notice(alert.id, event)
        rows = [_laid(line) for line in lines.notice_lines(note)]
        start = 1 + len(note.lines)
        end = start + len(note.entries)
        return cls(note.title, rows[:start], rows[start:end], rows[end:])

    def rows(self, shown: int) -> list[Row]:
        """Every line, with the first `shown` entries and how many more there are."""
        more = len(self.entries) - shown
        extra = [_laid((lines.Span(f"… and {more} more"),))] if more > 0 else []
        return [*self.head, *self.entries[:shown], *extra, *self.tail]

    def fitting(self, budget: int) -> int:
        """How many entries fit `budget` bytes of quoted-printable text and HTML."""
        used = sum(_encoded(row) for row in (*self.head, *self.tail))
        for count, row in enumerate(self.entries):
            used += _encoded(row)
            if used > budget:
                return count
        return len(self.entries)


def _encoded(row: Row) -> int:
    """A row's bytes once quoted-printable (soft line breaks, `<p>` and newlines counted)."""
    size = sum(quoprimime.body_length(part.encode("utf-8")) for part in row)
    return size + size // 25 + 12


def _html(subject: str, rows: Sequence[str]) -> str:
    body = "\n".join(f"<p>{row}</p>" for row in rows)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html_escape(subject)}</title></head>\n"
        f'<body style="font-family: sans-serif; line-height: 1.4">\n{body}\n</body></html>\n'
    )


def render(hook: EmailWebhook, alert: Alert, body: Body, shown: int, timestamp: int) -> bytes:
    """The whole message, as sent: headers, plain text and HTML alternatives."""
    subject = clip(one_line(body.subject), SUBJECT_MAX)
    rows = body.rows(shown)
    ident = message_id(alert.id, hook)
    domain = ident.rpartition("@")[2].rstrip(">")
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["Subject"] = subject
    msg["From"] = hook.sender
    msg["To"] = ", ".join(hook.to)
    msg["Date"] = _date(alert.typed(), timestamp)
    msg["Message-ID"] = ident
    msg["List-Id"] = f"monitor {hook.name} <{_SAFE.sub('_', hook.name)}.monitor.{domain}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Monitor-Event"] = alert.typed().type
    msg.set_content("\n".join(text for text, _ in rows) + "\n", cte="quoted-printable")
    msg.add_alternative(
        _html(subject, [html for _, html in rows]), subtype="html", cte="quoted-printable"
    )
    # the same boundary on every attempt; `=_` never occurs in quoted-printable text
    msg.set_boundary("=_monitor_" + hashlib.sha256(ident.encode()).hexdigest()[:24])
    return msg.as_bytes()


def build(hook: WebhookConfig, alert: Alert, timestamp: int) -> OutgoingRequest:
    """The message, within MESSAGE_MAX_BYTES: a digest too long lists fewer stories."""
    assert isinstance(hook, EmailWebhook)
    body = Body.of(alert)
    shown = body.fitting(MESSAGE_MAX_BYTES - HEADERS_BUDGET)
    message = render(hook, alert, body, shown, timestamp)
    while len(message) > MESSAGE_MAX_BYTES and shown > 0:  # the estimate fell short
        shown //= 2
        message = render(hook, alert, body, shown, timestamp)
    if len(message) > MESSAGE_MAX_BYTES:
        raise PermanentDeliveryError(f"the message is over {MESSAGE_MAX_BYTES} bytes")
    return OutgoingRequest(hook.url, {"content-type": "message/rfc822"}, message, method="SMTP")


async def build_in_thread(hook: WebhookConfig, alert: Alert, timestamp: int) -> OutgoingRequest:
    """`build` off the event loop: a digest of a thousand long stories takes a second or so of
    CPU to lay out and encode, which the loop (health checks, other webhooks) should not wait
    on."""
    return await asyncio.to_thread(build, hook, alert, timestamp)


# sending -------------------------------------------------------------------------------------


def _reply(code: int, text: str) -> str:
    return f"SMTP {code} " + clip(one_line(text), REPLY_MAX)


def _refused(code: int, text: str, what: str = "") -> DeliveryError:
    """A 4xx reply is transient; a 5xx rejects the message for good."""
    reason = _reply(code, text) + (f" ({what})" if what else "")
    if 500 <= code < 600:
        return RejectedDeliveryError(reason)
    return TransientDeliveryError(reason)


def _tls_context(hook: EmailWebhook) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=hook.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise PermanentDeliveryError(f"cannot read `ca_file`: {type(exc).__name__}") from None


def client(hook: EmailWebhook) -> aiosmtplib.SMTP:
    import aiosmtplib  # noqa: PLC0415 - imported by the first email sent, not by every command

    implicit = hook.scheme == "smtps"
    password = hook.password.get_secret_value() if hook.password is not None else None
    return aiosmtplib.SMTP(
        hostname=hook.host,
        port=hook.port,
        use_tls=implicit,
        start_tls=False if implicit else _STARTTLS[hook.starttls],
        tls_context=_tls_context(hook) if implicit or hook.starttls != "off" else None,
        timeout=hook.timeout.total_seconds(),
        username=hook.username,
        password=password,
    )


async def send(hook: WebhookConfig, request: OutgoingRequest) -> str:
    """Hand the message to the server: its answer, or the DeliveryError it means."""
    import aiosmtplib  # noqa: PLC0415 - imported by the first email sent, not by every command

    assert isinstance(hook, EmailWebhook)
    recipients = [address_of(to) for to in hook.to]
    smtp = client(hook)
    try:
        async with smtp:
            refused, answer = await smtp.sendmail(address_of(hook.sender), recipients, request.body)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        worst = max(codes, default=550) if all(c >= 500 for c in codes) else min(codes)
        first = exc.recipients[0].message if exc.recipients else ""
        raise _refused(worst, first, "every recipient refused") from None
    except aiosmtplib.SMTPResponseException as exc:
        raise _refused(exc.code, exc.message) from None
    except aiosmtplib.SMTPTimeoutError:
        seconds = hook.timeout.total_seconds()
        raise TransientDeliveryError(f"no complete answer within {seconds:g}s") from None
    except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, OSError) as exc:
        raise TransientDeliveryError(f"{type(exc).__name__}: {_said(exc)}") from None
    except aiosmtplib.SMTPException as exc:  # no STARTTLS, no AUTH: the server cannot do it
        raise PermanentDeliveryError(f"{type(exc).__name__}: {_said(exc)}") from None
    if refused:
        log.warning(
            "email %s to %s: %d of %d recipients refused (%s); sent to the others",
            request_id(request),
            hook.name,
            len(refused),
            len(recipients),
            "; ".join(f"{to}: {_reply(r.code, r.message)}" for to, r in refused.items()),
            extra={"webhook": hook.name},
        )
    return "SMTP 250 " + clip(one_line(answer), REPLY_MAX)


def _said(exc: BaseException) -> str:
    """What an exception says, on one line and short (no secret is in it: aiosmtplib never
    repeats the password, and the URL holds none)."""
    return clip(one_line(str(exc)), REPLY_MAX) or "connection failed"


def request_id(request: OutgoingRequest) -> str:
    found = re.search(rb"^Message-ID: (<[^>\r\n]*>)", request.body, re.MULTILINE)
    return found.group(1).decode("ascii", "replace") if found else "?"


TARGET = Target(
    name=NAME,
    build=build,
    settings=EmailWebhook,
    rate_limit=1.0,  # a notification a second; a relay's own limits answer with 4xx replies
    burst=5,
    concurrency=2,
    secret_fields=("url", "password"),
    notes="SMTP with STARTTLS or implicit TLS; the password is the secret.",
    build_off_loop=build_in_thread,
    send=send,
)
