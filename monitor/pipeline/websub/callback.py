"""The WebSub callback: what monitor.web.websub routes GET and POST /websub/<token> to
(its `Callbacks` protocol). monitor.pipeline.websub describes the whole protocol.

    GET  ?hub.mode=subscribe|unsubscribe|denied   verification of intent: the challenge is
                                                  echoed only for what we asked (the row is
                                                  verified, or deleted); a denial puts the
                                                  feed back on its normal interval
    POST                                          `find` the token (before a body is read),
                                                  then `push`: X-Hub-Signature checked, the
                                                  document ingested like a polled one

A push that fails its signature is answered 202 all the same: a forger learns nothing, and a
hub does not retry. Every push is counted by its outcome (`on_push`, monitor.runtime.metrics).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from monitor.config.settings import FeedConfig, WebSubSettings
from monitor.feeds.websub import signature_problem
from monitor.pipeline.refresh import RefreshOutcome
from monitor.pipeline.websub.shared import InForce, poll_soon
from monitor.store import FeedState
from monitor.store import subscriptions as subs
from monitor.store.subscriptions import Subscription

log = logging.getLogger(__name__)
RENEW_AT = 0.8  # of the granted lease
RETRY_DENIED = timedelta(days=1)  # ask a hub that denied us again after this
Reply = tuple[int, str, bytes]  # status, content type, body
Target = tuple[Subscription, FeedState]  # what a callback token names
# a pushed document to record: (feed, its settings, body, headers) -> what it brought
Ingest = Callable[[FeedState, FeedConfig, bytes, Mapping[str, str]], Awaitable[RefreshOutcome]]
OnPush = Callable[[str, RefreshOutcome | None], None]  # (outcome counted, what it brought)
_TEXT = "text/plain; charset=utf-8"
_SHORT_LEASE = " (shorter than the poll interval: polled as usual, subscribed again each interval)"


class Callback:
    """The callback URL of one daemon's subscriptions."""

    def __init__(
        self, engine: Engine, in_force: InForce, ingest: Ingest, on_push: OnPush | None = None
    ) -> None:
        self.engine = engine
        self.in_force = in_force
        self.ingest = ingest
        self.on_push = on_push or (lambda _outcome, _refresh: None)

    @property
    def max_body(self) -> int:
        """A push is read up to the size a polled document may have (`fetch.max_size_mib`)."""
        return self.in_force.config().settings.fetch.limits().max_bytes

    @property
    def body_deadline(self) -> float:
        """And within the time a poll has (`fetch.deadline`)."""
        return self.in_force.config().settings.fetch.deadline.total_seconds()

    # -- verification of intent ---------------------------------------------------------------

    async def verify(self, token: str, query: Mapping[str, str]) -> Reply:
        """The hub's verification of intent: echo the challenge only for what we asked."""
        now = datetime.now(UTC)
        sub = await asyncio.to_thread(subs.by_token, self.engine, token)
        mode, challenge = query.get("hub.mode", ""), query.get("hub.challenge", "")
        if sub is None or query.get("hub.topic") != sub.topic:
            log.warning("websub: verification for an unknown subscription or topic refused")
            return 404, _TEXT, b"no such subscription\n"
        if mode == "subscribe" and challenge and sub.state in subs.LIVE:
            if await self._verified(sub, query.get("hub.lease_seconds"), now):
                return 200, _TEXT, challenge.encode()
        elif mode == "unsubscribe" and challenge and sub.state == subs.UNSUBSCRIBING:
            await asyncio.to_thread(subs.delete, self.engine, token)
            log.info("websub: %s: unsubscribed from %s", sub.feed_url, sub.hub)
            return 200, _TEXT, challenge.encode()
        elif mode == "denied" and sub.state in subs.LIVE:
            await self._denied(sub, query.get("hub.reason", "") or "no reason given", now)
            return 200, _TEXT, b""
        return 404, _TEXT, b"no such pending request\n"

    async def _verified(self, sub: Subscription, granted: str | None, now: datetime) -> bool:
        """Record the lease the hub granted; False when the row changed state meanwhile."""
        lease = _lease(granted, self.in_force.websub, sub)
        # renewed at 80 % of the lease, but never sooner than one poll interval from now
        interval = self.in_force.interval_of(sub.feed_url) or timedelta(0)
        renew_in = max(timedelta(seconds=lease * RENEW_AT), interval)
        verified = await asyncio.to_thread(
            subs.update,
            self.engine,
            sub.token,
            states=subs.LIVE,
            state=subs.VERIFIED,
            lease_seconds=lease,
            verified_at=now,
            expires_at=now + timedelta(seconds=lease),
            next_action_at=now + renew_in,
            last_error=None,
        )
        if verified:
            log.info(
                "websub: %s: subscription verified by %s, lease %ds%s",
                sub.feed_url,
                sub.hub,
                lease,
                _SHORT_LEASE if renew_in.total_seconds() > lease else "",
                extra={"feed_url": sub.feed_url},
            )
        return verified

    async def _denied(self, sub: Subscription, reason: str, now: datetime) -> None:
        log.warning(
            "websub: %s: the hub %s denied the subscription (%s); polling as usual",
            sub.feed_url,
            sub.hub,
            reason,
            extra={"feed_url": sub.feed_url},
        )
        await asyncio.to_thread(
            subs.update,
            self.engine,
            sub.token,
            state=subs.DENIED,
            last_error=f"denied by the hub: {reason}",
            next_action_at=now + RETRY_DENIED,
        )
        await poll_soon(self.engine, self.in_force, sub, now)

    # -- pushes -------------------------------------------------------------------------------

    async def find(self, token: str) -> Target | None:
        """The subscription `token` names and its feed, in one indexed read; None when this
        daemon never handed out that callback path (checked before a body is read)."""
        return await asyncio.to_thread(subs.for_push, self.engine, token)

    async def push(
        self, found: Target, headers: Mapping[str, str], body: bytes, raw: bytes
    ) -> Reply:
        """Content from the hub (`body` with its Content-Encoding undone, `raw` as sent):
        signature checked, then recorded like a polled document."""
        sub, feed = found
        settings = self.in_force.feed(sub.feed_url)
        if sub.state not in subs.LIVE or settings is None or not sub.feed_active:
            log.warning("websub: push to callback %s… refused: no live subscription", sub.token[:6])
            self.on_push("unknown", None)
            return 410, _TEXT, b"subscription ended\n"
        # the spec signs "the raw body"; with a Content-Encoding, a hub may sign either form
        problem = signature_problem(headers.get("x-hub-signature"), sub.secret, raw)
        if problem == "bad_signature" and raw != body:
            problem = signature_problem(headers.get("x-hub-signature"), sub.secret, body)
        if problem is not None:
            log.warning(
                "websub: %s: pushed content dropped (%s)",
                sub.feed_url,
                "no X-Hub-Signature" if problem == "unsigned" else "X-Hub-Signature mismatch",
                extra={"feed_url": sub.feed_url},
            )
            self.on_push(problem, None)
            return 202, _TEXT, b"dropped\n"  # 2xx: a forger learns nothing, a hub does not retry
        return await self._ingest(sub, feed, settings, headers, body)

    async def _ingest(
        self,
        sub: Subscription,
        feed: FeedState,
        settings: FeedConfig,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        try:
            outcome = await self.ingest(feed, settings, body, headers)
        except Exception:
            log.exception("websub: %s: recording pushed content failed", sub.feed_url)
            self.on_push("error", None)
            return 500, _TEXT, b"internal error; try again\n"
        await asyncio.to_thread(subs.count_push, self.engine, sub.token, datetime.now(UTC))
        if outcome.status == "failed":
            log.warning("websub: %s: pushed content unreadable: %s", sub.feed_url, outcome.error)
            self.on_push("unparsable", outcome)
            return 202, _TEXT, b"not a feed\n"
        self.on_push("accepted", outcome)
        return 200, _TEXT, b"ok\n"

    def refused(self, token: str, outcome: str) -> None:
        """A push the HTTP server would not read (too large, too slow): counted and logged."""
        log.warning("websub: push to callback %s… refused: %s", token[:6], outcome)
        self.on_push(outcome, None)


def _lease(text: str | None, settings: WebSubSettings | None, sub: Subscription) -> int:
    """The lease the hub granted; what we asked for when it says nothing usable."""
    if (
        text
        and text.strip().isascii()
        and text.strip().isdigit()
        and 0 < int(text) < 10 * 365 * 86400
    ):
        return int(text)
    if settings is not None:
        return int(settings.lease.total_seconds())
    return sub.lease_seconds or 86400
