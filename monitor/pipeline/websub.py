"""WebSub (W3C Recommendation, 2018): a hub pushes a feed's new document instead of us polling it.

    a poll's document names rel="hub" and rel="self"  (RefreshOutcome.hubs, .topic)
    -> subscribe: the row is stored (requested), then POST hub.mode=subscribe to the hub with
       hub.callback = websub.callback + an unguessable token, hub.secret (random, per
       subscription) and hub.lease_seconds
    -> the hub verifies intent: GET callback?hub.mode=subscribe&hub.topic=…&hub.challenge=…;
       the challenge is echoed only for a pending or live subscription of that topic (-> verified)
    -> pushes: POST callback; X-Hub-Signature (sha1/sha256/sha384/sha512 HMAC of the raw body
       with the secret) checked, then refresh.ingest_pushed: parse, identity, store, match, outbox
    -> renewed at 80 % of the lease the hub granted, but never sooner than the feed's poll
       interval after the verification; unrenewed at its end -> expired
    -> a feed removed from the config, or set to `websub: false`, is unsubscribed

A hub is asked no more often than the feed would be polled. A lease so short that 80 % of it is
less than the feed's interval (a hub granting 1 s) is not renewed before it ends: the feed is
polled at its usual interval as if it had no hub (pushes that come are taken as a bonus), and
it is subscribed again (same callback and secret) one interval after each verification.

Requests to hubs are never made on a poll's time: `after_poll` hands the subscription to a
background task of this object, and at most HUB_REQUESTS_AT_ONCE requests to hubs run at once
(background subscriptions and the timer's renewals together); `stop` lets them finish for a
grace period, then cancels them. With replicas, the timer's work is claimed row by row
(monitor.store.subscriptions.claim_due): one replica renews or retries a subscription, and a
dead replica's claims are taken over once its heartbeat row expires.

Polling goes on: while a subscription is verified, a safety poll every max(interval, 1 h) catches
what a hub missed (1 h: a lost push costs at most an hour; a hub that drops everything is no worse
than polling hourly). A hub that fails, denies, never verifies or lets the lease lapse puts the
feed back on its normal interval at once, and is asked again later (1 h; 1 d after a denial).

A hub is a stranger's server: each request to it has a deadline, redirects are not followed, and
at most a few KiB of its answer are read. Nothing it does raises out of this module.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.engine import Engine

from monitor.config.settings import FeedConfig, WebSubSettings
from monitor.feeds.fetcher import USER_AGENT
from monitor.http.transport import pooled_transport
from monitor.pipeline.refresh import RefreshOutcome, ingest_pushed
from monitor.store import FeedState, owners
from monitor.store import subscriptions as subs
from monitor.store.schedule import check_sooner
from monitor.store.subscriptions import Subscription

if TYPE_CHECKING:
    from monitor.pipeline.pipeline import Pipeline

log = logging.getLogger(__name__)
PATH_PREFIX = "/websub/"  # where the daemon's HTTP server serves callbacks
SAFETY_POLL = timedelta(hours=1)  # while verified, poll every max(interval, this)
RENEW_AT = 0.8  # of the granted lease
VERIFY_WITHIN = timedelta(minutes=10)  # a request the hub has not verified by then has failed
RETRY_FAILED = timedelta(hours=1)  # ask a failed (or expired) hub again after this
RETRY_DENIED = timedelta(days=1)
HUB_DEADLINE = 15.0  # seconds for a whole request to a hub
HUB_ANSWER_BYTES = 4096  # read at most this much of a hub's answer (for the error message)
HUB_REQUESTS_AT_ONCE = 4  # requests to hubs in flight at once, per daemon
CLAIM_LEASE = timedelta(minutes=5)  # the timer holds a due row this long at most (or until
# its replica's heartbeat stops); a tick's rows take HUB_DEADLINE each, HUB_REQUESTS_AT_ONCE at once
CLAIM_AT_ONCE = 16  # due rows claimed per tick: 16 / 4 x 15 s = 1 min at worst, inside the lease
DIGESTS = frozenset(("sha1", "sha256", "sha384", "sha512"))  # X-Hub-Signature methods
Reply = tuple[int, str, bytes]  # status, content type, body
Target = tuple[Subscription, FeedState]  # what a callback token names
_TEXT = "text/plain; charset=utf-8"
_SHORT_LEASE = " (shorter than the poll interval: polled as usual, subscribed again each interval)"


def make_hub_client() -> httpx.AsyncClient:
    """The client for hubs: no redirects followed, short timeouts (each request also has a
    deadline)."""
    limits = httpx.Limits(max_connections=HUB_REQUESTS_AT_ONCE * 2, max_keepalive_connections=4)
    return httpx.AsyncClient(
        follow_redirects=False,
        timeout=httpx.Timeout(10.0, connect=5.0),
        headers={"User-Agent": USER_AGENT},
        limits=limits,
        transport=pooled_transport(limits),  # httpx's own, honouring them, under env proxies
    )


def signature_problem(header: str | None, secret: str, body: bytes) -> str | None:
    """None when `X-Hub-Signature` is a valid HMAC of `body` with `secret`; else the outcome
    to count: `unsigned` (no header) or `bad_signature` (unknown method, malformed, mismatch)."""
    if not header:
        return "unsigned"
    method, sep, given = header.strip().partition("=")
    digest = method.strip().lower()
    if not sep or digest not in DIGESTS:
        return "bad_signature"
    expected = hmac.new(secret.encode(), body, digest).hexdigest()
    given_bytes = given.strip().lower().encode("utf-8", "replace")  # compare_digest: ASCII str only
    return None if hmac.compare_digest(expected.encode(), given_bytes) else "bad_signature"


class WebSub:
    """Subscriptions of one daemon: after polls, on its timer, and at its callback URL."""

    def __init__(
        self,
        pipeline: Pipeline,
        client: httpx.AsyncClient,
        on_push: Callable[[str, RefreshOutcome | None], None] | None = None,
        *,
        owner: str | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.client = client
        self.on_push = on_push or (lambda _outcome, _refresh: None)
        # who claims due rows: the replica id (monitor.store.owners, as the heartbeat's)
        self.owner = owner or str(owners.current())
        self._hub_slots = asyncio.Semaphore(HUB_REQUESTS_AT_ONCE)
        self._subscribing: dict[int, asyncio.Task[None]] = {}  # background, by feed id
        self._stopping = False

    # -- the config in force ------------------------------------------------------------------

    @property
    def settings(self) -> WebSubSettings | None:
        return self.pipeline.config.settings.websub

    def enabled_for(self, feed: FeedConfig | None) -> bool:
        return self.settings is not None and feed is not None and feed.websub

    @property
    def max_body(self) -> int:
        return self.pipeline.config.settings.fetch.limits().max_bytes

    @property
    def body_deadline(self) -> float:
        return self.pipeline.config.settings.fetch.deadline.total_seconds()

    def _engine(self) -> Engine:
        return self.pipeline.store.engine

    # -- around polls -------------------------------------------------------------------------

    async def polling(self, feed: FeedState, settings: FeedConfig) -> FeedConfig:
        """The settings to poll with: while verified, the slow safety poll."""
        if not self.enabled_for(settings):
            return settings
        try:
            sub = await asyncio.to_thread(subs.for_feed, self._engine(), feed.id)
        except Exception:
            log.exception("websub: cannot read the subscription of %s", feed.url)
            return settings
        if sub is None or not _verified(sub, datetime.now(UTC)) or _lapses_unrenewed(sub):
            return settings  # a lease too short to renew in time: polled as usual
        interval = max(self.pipeline.config.feed_interval(settings), SAFETY_POLL)
        return settings.model_copy(update={"interval": interval})

    async def after_poll(
        self, feed: FeedState, settings: FeedConfig, outcome: RefreshOutcome
    ) -> None:
        """Subscribe when a fetched document names a hub we are not subscribed to there: in a
        background task, so a slow hub never holds the poll (nor its slot). Returns at once."""
        if not self.enabled_for(settings) or outcome.status != "fetched" or self._stopping:
            return
        if not outcome.hubs or not outcome.topic or feed.id in self._subscribing:
            return
        task = asyncio.create_task(
            self._subscribe_if_new(feed, outcome.hubs[0], outcome.topic),
            name=f"websub-subscribe-{feed.id}",
        )
        self._subscribing[feed.id] = task
        task.add_done_callback(lambda done: self._subscribed(feed.id, done))

    def _subscribed(self, feed_id: int, task: asyncio.Task[None]) -> None:
        if self._subscribing.get(feed_id) is task:
            del self._subscribing[feed_id]

    async def _subscribe_if_new(self, feed: FeedState, hub: str, topic: str) -> None:
        try:
            sub = await asyncio.to_thread(subs.for_feed, self._engine(), feed.id)
            if sub is not None and sub.hub == hub and sub.topic == topic:
                return  # known: the timer renews or retries it
            replacing = sub.token if sub is not None else None
            async with self._hub_slots:  # the row is written only once a request may go out
                await self._subscribe(feed.id, feed.url, hub, topic, replacing=replacing)
        except Exception:
            log.exception("websub: subscribing %s failed", feed.url, extra={"feed_url": feed.url})

    async def stop(self, grace: float = 0.0) -> None:
        """No new background requests; those in flight get `grace` seconds, then are cancelled
        (a request cut short leaves its row 'requested': the timer fails it after VERIFY_WITHIN)."""
        self._stopping = True
        tasks = list(self._subscribing.values())
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=grace) if grace > 0 else ((), tasks)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if pending:
            log.info("websub: %d subscription requests cancelled at stop", len(pending))

    # -- the timer ----------------------------------------------------------------------------

    async def tick(self) -> None:
        """Renew, retry, expire and unsubscribe what is due (the scheduler calls this): the
        rows this daemon claims, acted on together (HUB_REQUESTS_AT_ONCE requests at once)."""
        if self.settings is None or self._stopping:  # WebSub off: nothing renewed, leases lapse
            return
        now = datetime.now(UTC)
        engine = self._engine()
        opted_out = [f.url for f in self.pipeline.config.settings.feeds if not f.websub]
        due = await asyncio.to_thread(
            subs.claim_due,
            engine,
            now,
            owner=self.owner,
            lease=CLAIM_LEASE,
            opted_out=opted_out,
            limit=CLAIM_AT_ONCE,
        )
        try:
            await asyncio.gather(*(self._act_logged(sub, now) for sub in due))
        finally:
            tokens = [sub.token for sub in due]
            await asyncio.to_thread(subs.release, engine, tokens, self.owner)

    async def _act_logged(self, sub: Subscription, now: datetime) -> None:
        try:
            async with self._hub_slots:
                await self._act(sub, now)
        except Exception:
            log.exception("websub: %s: unexpected error", sub.feed_url)

    async def _act(self, sub: Subscription, now: datetime) -> None:
        settings = self.pipeline.settings.get(sub.feed_url)
        wanted = sub.feed_active and self.enabled_for(settings)
        if sub.state in subs.LIVE and not wanted:
            await self._unsubscribe(sub, now)
        elif sub.state == subs.UNSUBSCRIBING:  # the hub never confirmed: forget it anyway
            await asyncio.to_thread(subs.delete, self._engine(), sub.token)
        elif sub.state == subs.REQUESTED:
            await self._failed(sub, "the hub did not verify the subscription in time", now)
        elif sub.state == subs.VERIFIED and _lapses_unrenewed(sub):
            await self._subscribe_again(sub, now)  # a short lease, as planned at verification
        elif sub.state == subs.VERIFIED and sub.expires_at is not None and sub.expires_at <= now:
            await self._lapsed(sub, now)
        elif sub.state == subs.VERIFIED:
            await self._renew(sub, now)
        elif wanted and sub.next_action_at is not None and sub.next_action_at <= now:
            await self._subscribe(
                sub.feed_id, sub.feed_url, sub.hub, sub.topic, replacing=sub.token
            )
        elif not wanted:
            await asyncio.to_thread(subs.delete, self._engine(), sub.token)

    # -- requests to hubs ---------------------------------------------------------------------

    async def _subscribe(
        self, feed_id: int, feed_url: str, hub: str, topic: str, *, replacing: str | None
    ) -> None:
        """Ask `hub` for a new subscription, replacing the feed's row `replacing` (None: the
        feed had none); nothing is sent when someone else replaced that row first."""
        settings = self.settings
        if settings is None or self.client.is_closed:  # off, or the daemon is stopping
            return
        now = datetime.now(UTC)
        token = secrets.token_urlsafe(32)
        secret = secrets.token_hex(32)
        callback = settings.callback + token
        saved = await asyncio.to_thread(
            subs.save_request,
            self._engine(),
            feed_id,
            hub=hub,
            topic=topic,
            token=token,
            callback=callback,
            secret=secret,
            now=now,
            verify_by=now + VERIFY_WITHIN,
            replacing=replacing,
        )
        if not saved:
            log.debug("websub: %s: another daemon is subscribing it already", feed_url)
            return
        lease = int(settings.lease.total_seconds())
        error = await self._ask_hub(hub, "subscribe", topic, callback, secret, lease)
        if error is None:
            log.info("websub: %s: subscription requested at %s", feed_url, hub)
            return
        sub = await asyncio.to_thread(subs.by_token, self._engine(), token)
        if sub is not None and sub.state == subs.REQUESTED:
            await self._failed(sub, error, datetime.now(UTC))

    async def _subscribe_again(self, sub: Subscription, now: datetime) -> None:
        """A lease too short to renew in time has ended, one poll interval after it was
        verified: ask again with the same callback and secret (the row waits as 'requested')."""
        settings = self.settings
        lease = int(settings.lease.total_seconds()) if settings else sub.lease_seconds or 0
        asked = await asyncio.to_thread(
            subs.update,
            self._engine(),
            sub.token,
            states=[subs.VERIFIED],
            state=subs.REQUESTED,
            requested_at=now,
            next_action_at=now + VERIFY_WITHIN,
        )
        if not asked:
            return
        error = await self._ask_hub(
            sub.hub, "subscribe", sub.topic, sub.callback, sub.secret, lease
        )
        if error is not None:
            again = await asyncio.to_thread(subs.by_token, self._engine(), sub.token)
            if again is not None and again.state == subs.REQUESTED:
                await self._failed(again, error, datetime.now(UTC))

    async def _renew(self, sub: Subscription, now: datetime) -> None:
        settings = self.settings
        lease = int(settings.lease.total_seconds()) if settings else sub.lease_seconds or 0
        left = (sub.expires_at - now) if sub.expires_at else timedelta(0)
        # until the hub re-verifies, look again before the lease ends
        again = now + max(min(left / 4, timedelta(hours=1)), timedelta(seconds=1))
        if sub.expires_at is not None:
            again = min(again, sub.expires_at)
        await asyncio.to_thread(
            subs.update, self._engine(), sub.token, states=[subs.VERIFIED], next_action_at=again
        )
        error = await self._ask_hub(
            sub.hub, "subscribe", sub.topic, sub.callback, sub.secret, lease
        )
        if error is None:
            log.info("websub: %s: renewal requested at %s", sub.feed_url, sub.hub)
        else:
            log.warning(
                "websub: %s: renewal failed (%s); trying again before the lease ends",
                sub.feed_url,
                error,
                extra={"feed_url": sub.feed_url},
            )
            await asyncio.to_thread(subs.update, self._engine(), sub.token, last_error=error)

    async def _unsubscribe(self, sub: Subscription, now: datetime) -> None:
        await asyncio.to_thread(
            subs.update,
            self._engine(),
            sub.token,
            state=subs.UNSUBSCRIBING,
            next_action_at=now + VERIFY_WITHIN,
        )
        error = await self._ask_hub(sub.hub, "unsubscribe", sub.topic, sub.callback, sub.secret)
        if error is None:
            log.info("websub: %s: unsubscribe requested at %s", sub.feed_url, sub.hub)
        else:
            log.warning("websub: %s: unsubscribing failed (%s); forgotten", sub.feed_url, error)
            await asyncio.to_thread(subs.delete, self._engine(), sub.token)

    async def _ask_hub(  # noqa: PLR0917 - the protocol's parameters
        self,
        hub: str,
        mode: str,
        topic: str,
        callback: str,
        secret: str,
        lease: int | None = None,
    ) -> str | None:
        """POST to the hub; None when it accepted (2xx), else what went wrong."""
        form = {"hub.mode": mode, "hub.topic": topic, "hub.callback": callback}
        if mode == "subscribe":
            form["hub.secret"] = secret
            if lease:
                form["hub.lease_seconds"] = str(lease)
        return await ask_hub(self.client, hub, form)

    # -- state changes ------------------------------------------------------------------------

    async def _failed(self, sub: Subscription, error: str, now: datetime) -> None:
        log.warning(
            "websub: %s: subscribing at %s failed (%s); polling as usual, trying again in %s",
            sub.feed_url,
            sub.hub,
            error,
            RETRY_FAILED,
            extra={"feed_url": sub.feed_url},
        )
        await asyncio.to_thread(
            subs.update,
            self._engine(),
            sub.token,
            state=subs.FAILED,
            last_error=error,
            next_action_at=now + RETRY_FAILED,
        )

    async def _lapsed(self, sub: Subscription, now: datetime) -> None:
        log.warning(
            "websub: %s: the lease at %s ended unrenewed; polling as usual",
            sub.feed_url,
            sub.hub,
            extra={"feed_url": sub.feed_url},
        )
        await asyncio.to_thread(
            subs.update,
            self._engine(),
            sub.token,
            state=subs.EXPIRED,
            next_action_at=now + RETRY_FAILED,
        )
        await self._poll_soon(sub, now)

    async def _poll_soon(self, sub: Subscription, now: datetime) -> None:
        """Back to the feed's normal interval: a safety-poll date further off is brought in."""
        settings = self.pipeline.settings.get(sub.feed_url)
        if settings is not None:
            interval = self.pipeline.config.feed_interval(settings)
            await asyncio.to_thread(check_sooner, self._engine(), [sub.feed_url], now + interval)

    # -- the callback (monitor.runtime.httpserver routes GET and POST /websub/<token> here) --

    async def verify(self, token: str, query: Mapping[str, str]) -> Reply:
        """The hub's verification of intent: echo the challenge only for what we asked."""
        now = datetime.now(UTC)
        sub = await asyncio.to_thread(subs.by_token, self._engine(), token)
        mode, challenge = query.get("hub.mode", ""), query.get("hub.challenge", "")
        if sub is None or query.get("hub.topic") != sub.topic:
            log.warning("websub: verification for an unknown subscription or topic refused")
            return 404, _TEXT, b"no such subscription\n"
        if mode == "subscribe" and challenge and sub.state in subs.LIVE:
            lease = _lease(query.get("hub.lease_seconds"), self.settings, sub)
            # renewed at 80 % of the lease, but never sooner than one poll interval from now
            renew_in = max(timedelta(seconds=lease * RENEW_AT), self._interval(sub))
            verified = await asyncio.to_thread(
                subs.update,
                self._engine(),
                token,
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
                return 200, _TEXT, challenge.encode()
        elif mode == "unsubscribe" and challenge and sub.state == subs.UNSUBSCRIBING:
            await asyncio.to_thread(subs.delete, self._engine(), token)
            log.info("websub: %s: unsubscribed from %s", sub.feed_url, sub.hub)
            return 200, _TEXT, challenge.encode()
        elif mode == "denied" and sub.state in subs.LIVE:
            reason = query.get("hub.reason", "") or "no reason given"
            log.warning(
                "websub: %s: the hub %s denied the subscription (%s); polling as usual",
                sub.feed_url,
                sub.hub,
                reason,
                extra={"feed_url": sub.feed_url},
            )
            await asyncio.to_thread(
                subs.update,
                self._engine(),
                token,
                state=subs.DENIED,
                last_error=f"denied by the hub: {reason}",
                next_action_at=now + RETRY_DENIED,
            )
            await self._poll_soon(sub, now)
            return 200, _TEXT, b""
        return 404, _TEXT, b"no such pending request\n"

    def _interval(self, sub: Subscription) -> timedelta:
        settings = self.pipeline.settings.get(sub.feed_url)
        return self.pipeline.config.feed_interval(settings) if settings else timedelta(0)

    async def find(self, token: str) -> Target | None:
        """The subscription `token` names and its feed, in one indexed read; None when this
        daemon never handed out that callback path (checked before a body is read)."""
        return await asyncio.to_thread(subs.for_push, self._engine(), token)

    async def push(
        self, found: Target, headers: Mapping[str, str], body: bytes, raw: bytes
    ) -> Reply:
        """Content from the hub (`body` with its Content-Encoding undone, `raw` as sent):
        signature checked, then recorded like a polled document."""
        sub, feed = found
        token = sub.token
        settings = self.pipeline.settings.get(sub.feed_url)
        if sub.state not in subs.LIVE or settings is None or not sub.feed_active:
            return self._refused("unknown", token, 410, b"subscription ended\n")
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
        token = sub.token
        try:
            outcome = await ingest_pushed(self.pipeline.context, feed, settings, body, headers)
        except Exception:
            log.exception("websub: %s: recording pushed content failed", sub.feed_url)
            self.on_push("error", None)
            return 500, _TEXT, b"internal error; try again\n"
        await asyncio.to_thread(subs.count_push, self._engine(), token, datetime.now(UTC))
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

    def _refused(self, outcome: str, token: str, status: int, body: bytes) -> Reply:
        log.warning("websub: push to callback %s… refused: no live subscription", token[:6])
        self.on_push(outcome, None)
        return status, _TEXT, body


async def ask_hub(
    client: httpx.AsyncClient, hub: str, form: Mapping[str, str], deadline: float = HUB_DEADLINE
) -> str | None:
    """POST `form` to the hub; None when it accepted (2xx), else what went wrong. The whole
    exchange has `deadline` seconds; redirects are not followed; a few KiB of an error are read."""
    try:
        async with asyncio.timeout(deadline):
            async with client.stream("POST", hub, data=dict(form)) as response:
                if 200 <= response.status_code < 300:
                    return None
                if response.is_redirect:
                    return f"the hub answered {response.status_code} (redirects are not followed)"
                text = await _some_text(response)
                return f"the hub answered {response.status_code}: {text}".rstrip(": ")
    except TimeoutError:
        return f"the hub did not answer within {deadline:g}s"
    except httpx.HTTPError as exc:
        return f"cannot reach the hub: {type(exc).__name__}: {exc}"


def _verified(sub: Subscription, now: datetime) -> bool:
    return sub.state == subs.VERIFIED and (sub.expires_at is None or sub.expires_at > now)


def _lapses_unrenewed(sub: Subscription) -> bool:
    """A verified lease planned to end before its renewal: shorter than the poll interval."""
    return (
        sub.state == subs.VERIFIED
        and sub.next_action_at is not None
        and sub.expires_at is not None
        and sub.next_action_at > sub.expires_at
    )


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


async def _some_text(response: httpx.Response) -> str:
    """The start of a hub's answer, for the error message; never more than a few KiB read."""
    data = b""
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= HUB_ANSWER_BYTES:
            break
    text = data[:HUB_ANSWER_BYTES].decode("utf-8", "replace")
    return " ".join(text.split())[:200]
