"""One attempt of one delivery: the target builds the request, it is sent once, the answer is
classified (monitor.delivery.policy). Network failures come back as outcomes, never raised.

A webhook's URL may itself be the secret (Slack's, Discord's tokens): it never appears in an
error, a refusal's excerpt or httpx's own log of the request; nor do its secret settings.

A target not spoken to over HTTP (email, apprise) hands its message over with its own `send`,
within the same deadline; what it raises is the attempt's outcome.

A receiver is hostile until it answers: the webhook's `timeout` is a deadline for the whole
attempt (connecting, sending, the answer's headers and the part of its body read), not a wait
between two reads, and at most `ANSWER_LIMIT` bytes of an answer are read, undecoded (we ask
for no compression), which is more than what any target needs from it (Discord's message id, a
refusal's excerpt for the log). The rest is never read: the connection is closed instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import httpx

from monitor import __version__
from monitor.delivery.base import Alert, OutgoingRequest, Target
from monitor.delivery.policy import DeliveryOutcome, classify
from monitor.delivery.settings import WebhookConfig
from monitor.delivery.targets import target_for
from monitor.errors import DeliveryError, TransientDeliveryError
from monitor.http.cookies import no_cookies
from monitor.http.transport import pooled_transport
from monitor.http.urls import redact_url
from monitor.store import DueDelivery

ANSWER_LIMIT = 64 * 1024  # bytes of an answer read; Discord's message object is a few KiB
# headers that describe the body as sent, not the prefix kept of it
_BODY_HEADERS = ("content-encoding", "content-length", "transfer-encoding")


class _HideWebhookUrls(logging.Filter):
    """httpx logs every request's URL at INFO; for webhooks the URL may be a token: hide it."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def hide(self, url: str) -> None:
        if len(self.urls) > 10_000:  # bounded: webhooks are few, but configs are reloaded
            self.urls.clear()
        self.urls.update((url, str(httpx.URL(url))))

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(str(a) in self.urls for a in args):
            record.args = tuple(redact_url(str(a)) if str(a) in self.urls else a for a in args)
        return True


_hidden_urls = _HideWebhookUrls()


def hide_from_httpx_log(url: str) -> None:
    """Redact `url` wherever httpx's logger names it. The filter goes onto httpx's logger here,
    where the requests that log are made, rather than when a module is imported or logging is
    configured: it then covers every client and every way of configuring logging (a test's
    caplog, an embedding application's handlers). Adding it again is a no-op."""
    _hidden_urls.hide(url)
    logging.getLogger("httpx").addFilter(_hidden_urls)


def make_delivery_client() -> httpx.AsyncClient:
    """The client for webhooks: no redirects followed, modest pool, our User-Agent."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
    return httpx.AsyncClient(
        follow_redirects=False,
        # an answer is read undecoded: a compressed one could expand far past ANSWER_LIMIT
        headers={"user-agent": f"monitor/{__version__}", "accept-encoding": "identity"},
        limits=limits,
        timeout=httpx.Timeout(15.0),
        transport=pooled_transport(limits),  # its TLS context made when first needed
        cookies=no_cookies(),  # a receiver's cookies are neither kept nor sent back
    )


async def attempt(
    client: httpx.AsyncClient,
    hook: WebhookConfig,
    delivery: DueDelivery,
    target: Target | None = None,
) -> DeliveryOutcome:
    """Send one delivery once; network failures and the deadline's end come back as a
    transient outcome. The request is built first, within its target's own limits (a `json`
    template's are its worker's); `timeout` is the deadline of the exchange with the receiver
    that follows. A story update whose message is gone is posted anew within the same deadline."""
    target = target or target_for(hook)
    started = time.monotonic()
    now = datetime.now(UTC)
    alert = Alert.parse(delivery.message_id, delivery.payload)
    if delivery.reply_to is not None:
        alert = dataclasses.replace(alert, reply_to=delivery.reply_to)
    try:
        request = await target.request(hook, alert, int(now.timestamp()))
    except DeliveryError as exc:
        return DeliveryOutcome(None, exc, None, time.monotonic() - started)
    seconds = hook.timeout.total_seconds()
    try:
        async with asyncio.timeout(seconds):
            if target.send is not None:
                return await _hand_over(target, hook, request, started)
            return await _exchange(client, hook, target, alert, request, now, started)
    except TimeoutError:
        timeout = TransientDeliveryError(f"no complete answer within {seconds:g}s")
        return DeliveryOutcome(None, timeout, None, time.monotonic() - started)


async def _hand_over(
    target: Target, hook: WebhookConfig, request: OutgoingRequest, started: float
) -> DeliveryOutcome:
    """One attempt of a target not spoken to over HTTP (email, apprise): its `send` raises what
    went wrong, as a DeliveryError whose message holds no secret of the webhook."""
    assert target.send is not None
    try:
        reply = await target.send(hook, request)
    except DeliveryError as exc:
        return DeliveryOutcome(None, exc, None, time.monotonic() - started)
    return DeliveryOutcome(None, None, None, time.monotonic() - started, reply=reply)


async def _exchange(  # noqa: PLR0917 - one attempt's parts, passed on when a message is gone
    client: httpx.AsyncClient,
    hook: WebhookConfig,
    target: Target,
    alert: Alert,
    request: OutgoingRequest,
    now: datetime,
    started: float,
) -> DeliveryOutcome:
    hide_from_httpx_log(request.url)
    seconds = hook.timeout.total_seconds()
    try:
        response = await _send(client, request, seconds)
    except httpx.TimeoutException:  # one step (connect, write, a read) took the whole deadline
        timeout = TransientDeliveryError(f"no complete answer within {seconds:g}s")
        return DeliveryOutcome(None, timeout, None, time.monotonic() - started)
    except httpx.HTTPError as exc:
        # the message names the kind of failure, never the URL (which may carry a token)
        failed = TransientDeliveryError(f"{type(exc).__name__}: connection failed")
        return DeliveryOutcome(None, failed, None, time.monotonic() - started)
    if request.method == "PATCH" and response.status_code == 404 and alert.reply_to:
        # the message to edit is gone (deleted in the channel): post the update as a new one
        anew = dataclasses.replace(alert, reply_to=None)
        try:
            posted = await target.request(hook, anew, int(now.timestamp()))
        except DeliveryError as exc:
            return DeliveryOutcome(None, exc, None, time.monotonic() - started)
        return await _exchange(client, hook, target, anew, posted, now, started)
    error, retry_after = classify(response, now)
    if error is not None:
        error = type(error)(str(error) + _answer_snippet(response, hook))
    return DeliveryOutcome(
        response.status_code,
        error,
        retry_after,
        time.monotonic() - started,
        target.hint(response),
        target.message_ref(response) if error is None else None,
    )


async def _send(
    client: httpx.AsyncClient, request: OutgoingRequest, each_step: float
) -> httpx.Response:
    """The answer to one request, its body cut to its first `ANSWER_LIMIT` bytes: what the
    targets read (`hint`, `message_ref`) and the log's excerpt see, as a plain response."""
    async with client.stream(
        request.method,
        request.url,
        content=request.body,
        headers=request.headers,
        timeout=each_step,
    ) as streamed:
        kept = bytearray()
        async for chunk in streamed.aiter_raw():
            kept += chunk[: ANSWER_LIMIT - len(kept)]
            if len(kept) >= ANSWER_LIMIT:
                break  # leaving the stream unread closes the connection
    described = [(k, v) for k, v in streamed.headers.multi_items() if k not in _BODY_HEADERS]
    return httpx.Response(
        streamed.status_code,
        headers=described,
        content=bytes(kept),
        request=streamed.request,
        extensions={"reason_phrase": streamed.reason_phrase.encode("ascii", "replace")},
    )


def _scrub(text: str, hook: WebhookConfig) -> str:
    """`text` without any part of the webhook's URL that may be a token (path segments, query
    values), nor any of its secret settings (a Telegram bot's token, a Matrix access token)."""
    parts = urlsplit(hook.url)
    secrets = [p for p in parts.path.split("/") if len(p) >= 6]
    secrets += [v for _k, v in parse_qsl(parts.query) if len(v) >= 6]
    secrets += [v for v in hook.secret_values() if len(v) >= 6]
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _answer_snippet(response: httpx.Response, hook: WebhookConfig) -> str:
    """A short, single-line excerpt of a refusal's body (Slack says `invalid_blocks`, …)."""
    if response.status_code < 400 or response.status_code >= 500 or not response.content:
        return ""
    text = " ".join(response.content[:300].decode("utf-8", "replace").split())[:200]
    return f": {_scrub(text, hook)}" if text else ""
