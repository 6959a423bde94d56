"""WebSub subscription management: subscribe after a poll, renew, retry, expire and unsubscribe
on the scheduler's timer (monitor.pipeline.websub describes the whole protocol).

Requests to hubs are never made on a poll's time: `after_poll` hands the subscription to a
background task of this object, and at most HUB_REQUESTS_AT_ONCE requests to hubs run at once
(background subscriptions and the timer's renewals together); `stop` lets them finish for a
grace period, then cancels them. With replicas, the timer's work is claimed row by row
(monitor.store.subscriptions.claim_due): one replica renews or retries a subscription, and a
dead replica's claims are taken over once its heartbeat row expires.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.engine import Engine

from monitor.config.settings import FeedConfig
from monitor.feeds.websub import HUB_REQUESTS_AT_ONCE, ask_hub, hub_form
from monitor.pipeline.refresh import RefreshOutcome
from monitor.pipeline.websub.shared import InForce, poll_soon
from monitor.store import FeedState, owners
from monitor.store import subscriptions as subs
from monitor.store.subscriptions import Subscription

log = logging.getLogger(__name__)
SAFETY_POLL = timedelta(hours=1)  # while verified, poll every max(interval, this)
VERIFY_WITHIN = timedelta(minutes=10)  # a request the hub has not verified by then has failed
RETRY_FAILED = timedelta(hours=1)  # ask a failed (or expired) hub again after this
CLAIM_LEASE = timedelta(minutes=5)  # the timer holds a due row this long at most (or until
# its replica's heartbeat stops); a tick's rows take HUB_DEADLINE each, HUB_REQUESTS_AT_ONCE at once
CLAIM_AT_ONCE = 16  # due rows claimed per tick: 16 / 4 x 15 s = 1 min at worst, inside the lease


class Subscriber:
    """One daemon's subscriptions: after its polls, and on its timer (`tick`)."""

    def __init__(
        self,
        engine: Engine,
        client: httpx.AsyncClient,
        in_force: InForce,
        *,
        owner: str | None = None,
    ) -> None:
        self.engine = engine
        self.client = client
        self.in_force = in_force
        # who claims due rows: the replica id (monitor.store.owners, as the heartbeat's)
        self.owner = owner or str(owners.current())
        self._hub_slots = asyncio.Semaphore(HUB_REQUESTS_AT_ONCE)
        self._subscribing: dict[int, asyncio.Task[None]] = {}  # background, by feed id
        self._stopping = False

    # -- around polls -------------------------------------------------------------------------

    async def polling(self, feed: FeedState, settings: FeedConfig) -> FeedConfig:
        """The settings to poll with: while verified, the slow safety poll."""
        if not self.in_force.enabled_for(settings):
            return settings
        try:
            sub = await asyncio.to_thread(subs.for_feed, self.engine, feed.id)
        except Exception:
            log.exception("websub: cannot read the subscription of %s", feed.url)
            return settings
        if sub is None or not _verified(sub, datetime.now(UTC)) or _lapses_unrenewed(sub):
            return settings  # a lease too short to renew in time: polled as usual
        interval = max(self.in_force.interval(settings), SAFETY_POLL)
        return settings.model_copy(update={"interval": interval})

    async def after_poll(
        self, feed: FeedState, settings: FeedConfig, outcome: RefreshOutcome
    ) -> None:
        """Subscribe when a fetched document names a hub we are not subscribed to there: in a
        background task, so a slow hub never holds the poll (nor its slot). Returns at once."""
        if not self.in_force.enabled_for(settings) or outcome.status != "fetched" or self._stopping:
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
            sub = await asyncio.to_thread(subs.for_feed, self.engine, feed.id)
            if sub is not None and sub.hub == hub and sub.topic == topic:
                return  # known: the timer renews or retries it
            if sub is not None and _backing_off(sub, datetime.now(UTC)):
                return  # a failed feed waits out its backoff, whichever hub it names now
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
        if self.in_force.websub is None or self._stopping:  # off: nothing renewed, leases lapse
            return
        now = datetime.now(UTC)
        engine = self.engine
        due = await asyncio.to_thread(
            subs.claim_due,
            engine,
            now,
            owner=self.owner,
            lease=CLAIM_LEASE,
            opted_out=self.in_force.opted_out(),
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
        settings = self.in_force.feed(sub.feed_url)
        wanted = sub.feed_active and self.in_force.enabled_for(settings)
        if sub.state in subs.LIVE and not wanted:
            await self._unsubscribe(sub, now)
        elif sub.state == subs.UNSUBSCRIBING:  # the hub never confirmed: forget it anyway
            await asyncio.to_thread(subs.delete, self.engine, sub.token)
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
            await asyncio.to_thread(subs.delete, self.engine, sub.token)

    # -- requests to hubs ---------------------------------------------------------------------

    async def _subscribe(
        self, feed_id: int, feed_url: str, hub: str, topic: str, *, replacing: str | None
    ) -> None:
        """Ask `hub` for a new subscription, replacing the feed's row `replacing` (None: the
        feed had none); nothing is sent when someone else replaced that row first."""
        settings = self.in_force.websub
        if settings is None or self.client.is_closed:  # off, or the daemon is stopping
            return
        now = datetime.now(UTC)
        token = secrets.token_urlsafe(32)
        secret = secrets.token_hex(32)
        callback = settings.callback + token
        saved = await asyncio.to_thread(
            subs.save_request,
            self.engine,
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
        sub = await asyncio.to_thread(subs.by_token, self.engine, token)
        if sub is not None and sub.state == subs.REQUESTED:
            await self._failed(sub, error, datetime.now(UTC))

    async def _subscribe_again(self, sub: Subscription, now: datetime) -> None:
        """A lease too short to renew in time has ended, one poll interval after it was
        verified: ask again with the same callback and secret (the row waits as 'requested')."""
        lease = self.in_force.lease(sub.lease_seconds)
        asked = await asyncio.to_thread(
            subs.update,
            self.engine,
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
            again = await asyncio.to_thread(subs.by_token, self.engine, sub.token)
            if again is not None and again.state == subs.REQUESTED:
                await self._failed(again, error, datetime.now(UTC))

    async def _renew(self, sub: Subscription, now: datetime) -> None:
        lease = self.in_force.lease(sub.lease_seconds)
        left = (sub.expires_at - now) if sub.expires_at else timedelta(0)
        # until the hub re-verifies, look again before the lease ends
        again = now + max(min(left / 4, timedelta(hours=1)), timedelta(seconds=1))
        if sub.expires_at is not None:
            again = min(again, sub.expires_at)
        await asyncio.to_thread(
            subs.update, self.engine, sub.token, states=[subs.VERIFIED], next_action_at=again
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
            await asyncio.to_thread(subs.update, self.engine, sub.token, last_error=error)

    async def _unsubscribe(self, sub: Subscription, now: datetime) -> None:
        await asyncio.to_thread(
            subs.update,
            self.engine,
            sub.token,
            state=subs.UNSUBSCRIBING,
            next_action_at=now + VERIFY_WITHIN,
        )
        error = await self._ask_hub(sub.hub, "unsubscribe", sub.topic, sub.callback, sub.secret)
        if error is None:
            log.info("websub: %s: unsubscribe requested at %s", sub.feed_url, sub.hub)
        else:
            log.warning("websub: %s: unsubscribing failed (%s); forgotten", sub.feed_url, error)
            await asyncio.to_thread(subs.delete, self.engine, sub.token)

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
        form = hub_form(mode, topic, callback, secret, lease)
        return await ask_hub(self.client, hub, form, self.in_force.address_policy)

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
            self.engine,
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
            self.engine,
            sub.token,
            state=subs.EXPIRED,
            next_action_at=now + RETRY_FAILED,
        )
        await poll_soon(self.engine, self.in_force, sub, now)


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


def _backing_off(sub: Subscription, now: datetime) -> bool:
    """The feed's last hub failed or denied it and its retry is not due: a feed that names
    another hub at each poll gets no more requests out of us than one that names the same."""
    waiting = sub.state in (subs.FAILED, subs.DENIED, subs.EXPIRED)
    return waiting and sub.next_action_at is not None and sub.next_action_at > now
