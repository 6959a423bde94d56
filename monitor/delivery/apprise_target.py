"""Format `apprise`: the long tail of services (Pushover, Gotify, SMS gateways, …) via Apprise.

An optional extra (`pip install 'monitor[apprise]'`): without it a webhook of this format is a
config problem at `monitor check`, the daemon's start and every reload, saying how to install
it. `url` is any Apprise URL (`pover://user@token`, `gotify://host/token`, `json://host/`, …);
it is checked at load (Apprise must know its scheme) and treated as a secret throughout: an
Apprise URL often holds its token where a host would be, so it is shown as its scheme alone
(`pover://…`) and every part of it is scrubbed from Apprise's own log lines.

Apprise is synchronous and its `notify()` answers only True or False: it cannot tell us why a
notification failed, nor whether a retry can help. So a False is a transient failure, retried
on the webhook's `retry` schedule and kept as `failed` (replayable) when it is spent; the reason
is whatever Apprise logged (warnings and errors, scrubbed, reach our log). The call runs in a
worker thread of a small pool of our own (never the event loop, nor the pool the store's calls
use), within the webhook's `timeout`. A call still running at the deadline cannot be stopped
(a thread cannot be cancelled): its outcome is ignored, the attempt counts as failed and is
retried, so a slow service may get the notification twice; Apprise's own connect and read
timeouts (4 s each by default, `cto=`/`rto=` in the URL) end it.

The message is the alert's one-line label as title and its text (summary, rule, feed, link, id)
as plain body, within 4,000 characters; each Apprise plugin then fits it to its service.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import re
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, field_validator

from monitor.delivery import lines
from monitor.delivery.base import Alert, AlertView, OutgoingRequest, Target, json_body
from monitor.delivery.notices import alert_label, notice
from monitor.delivery.settings import UNSET_URL, WebhookConfig
from monitor.delivery.text import MARK, clip, one_line
from monitor.errors import PermanentDeliveryError, TransientDeliveryError
from monitor.events import AlertCreated

NAME = "apprise"
TITLE_MAX = 250
BODY_MAX = 4000
INSTALL = "format `apprise` needs the Apprise package: pip install 'monitor[apprise]'"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://\S+$")
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="monitor-apprise")


def apprise_url(value: str) -> str:
    """`scheme://…`; the value itself is never repeated in the error (it is a secret)."""
    if not _SCHEME.match(value.strip()):
        raise ValueError("an Apprise URL is `scheme://…` (see Apprise's list of services)")
    return value.strip()


class AppriseWebhook(WebhookConfig):
    """The settings of format `apprise`: an Apprise URL."""

    format: Literal["apprise"] = Field(
        description="`apprise`: any service Apprise supports (needs `monitor[apprise]`)."
    )
    url: str = Field(
        description="An Apprise URL (`pover://user@token`, `gotify://host/token`, …): write "
        "`${APPRISE_URL}`. Shown as its scheme only."
    )

    _check_url = field_validator("url")(apprise_url)

    def format_problem(self) -> str | None:
        module = load_apprise()
        if module is None:
            return INSTALL
        if self.url == UNSET_URL:  # a `${NAME}` unset, for a command that does not deliver
            return None
        _hide.hide(self.url)
        if module.Apprise.instantiate(self.url, suppress_exceptions=True) is None:
            return f"Apprise cannot use this `{self.scheme}://` URL (unknown or invalid)"
        return None

    @property
    def scheme(self) -> str:
        return self.url.partition("://")[0].lower()

    def safe_url(self) -> str:
        """The scheme alone: an Apprise URL's host is often its token."""
        return f"{self.scheme}://…"


def load_apprise() -> ModuleType | None:
    """The Apprise package, or None when the extra is not installed."""
    loaded = sys.modules.get("apprise")
    if loaded is not None:
        return loaded
    try:
        # Apprise's plugins import modules Python deprecates (imghdr): loaded here at once, with
        # those warnings ignored, rather than lazily on a first notification in a worker thread
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = importlib.import_module("apprise")
            importlib.import_module("apprise.manager_plugins").NotificationManager().load_modules()
    except ImportError:
        return None
    return module


class _ScrubAppriseLog(logging.Filter):
    """Apprise's log lines may name the URL's parts (a host that is a token): scrubbed."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def hide(self, url: str) -> None:
        if len(self.secrets) > 10_000:  # bounded: configs are reloaded
            self.secrets.clear()
        parts = urlsplit(url)
        pieces = [url, parts.netloc, *parts.netloc.replace("@", ":").split(":")]
        pieces += parts.path.split("/") + [v for _k, v in parse_qsl(parts.query)]
        self.secrets.update(p for p in pieces if len(p) >= 4)
        logging.getLogger("apprise").addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        record.msg, record.args = text, ()
        return True


_hide = _ScrubAppriseLog()


def content(alert: Alert) -> tuple[str, str]:
    """The notification's title and plain body."""
    event = alert.typed()
    if isinstance(event, AlertCreated):
        view = AlertView.of(alert.id, event)
        title, rows = alert_label(view), lines.alert_lines(view)[1:]
    else:
        note = notice(alert.id, event)
        title, rows = note.title, lines.notice_lines(note)[1:]
    body = lines.fit([lines.text(row) for row in rows], BODY_MAX)
    return clip(one_line(title), TITLE_MAX), body or MARK


def build(hook: WebhookConfig, alert: Alert, timestamp: int) -> OutgoingRequest:
    title, body = content(alert)
    document = {"title": title, "body": body}
    return OutgoingRequest(hook.url, {}, json_body(document), method="APPRISE")


def _notify(url: str, title: str, body: str) -> bool:
    """In a worker thread: one Apprise notification, True when Apprise says it was sent."""
    module = load_apprise()
    if module is None:
        raise PermanentDeliveryError(INSTALL)
    _hide.hide(url)
    notifier = module.Apprise()
    if not notifier.add(url):
        raise PermanentDeliveryError("Apprise cannot use this URL (unknown or invalid)")
    return bool(notifier.notify(body=body, title=title))


async def send(hook: WebhookConfig, request: OutgoingRequest) -> str:
    """Hand the notification to Apprise in a worker thread; False is a transient failure."""
    document = json.loads(request.body)
    loop = asyncio.get_running_loop()
    sent = await loop.run_in_executor(
        _POOL, _notify, hook.url, str(document["title"]), str(document["body"])
    )
    if not sent:
        raise TransientDeliveryError(
            "Apprise could not send it (Apprise does not say why: see its log lines)"
        )
    return f"Apprise: sent via {hook.safe_url()}"


TARGET = Target(
    name=NAME,
    build=build,
    settings=AppriseWebhook,
    rate_limit=1.0,  # Apprise knows each service's limits no better than we do: a modest pace
    burst=5,
    concurrency=1,
    secret_fields=("url",),
    notes="Any Apprise URL (optional extra `monitor[apprise]`); the URL is the secret.",
    send=send,
)
