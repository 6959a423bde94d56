"""Per-target lanes: how many requests may be in flight and how fast they may start.

Each webhook gets its own `Lane`, so a slow, failing or rate-limited target only ever waits on
itself. A lane has a number of slots (concurrency), a token bucket (rate and burst) and a pause:
a `Retry-After`, a 429, or Discord's empty bucket stops the whole lane until then, while every
other lane carries on. The dispatcher claims from the store only as many deliveries as a lane
has free slots, and none while it is paused, so nothing waits holding a lease for long.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from monitor.delivery.base import Target
from monitor.delivery.settings import WebhookConfig

Sleep = Callable[[float], Awaitable[None]]


class Lane:
    def __init__(
        self,
        concurrency: int,
        rate: float | None,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`clock` and `sleep` pace the token bucket (a test's own clock moves with its sleep)."""
        self.concurrency = concurrency
        self.rate = rate
        self.burst = max(burst, 1)
        self.in_flight = 0
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._filled_at = clock()
        self.paused_until: datetime | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def for_hook(cls, hook: WebhookConfig, target: Target) -> Lane:
        rate = hook.rate_limit if hook.rate_limit is not None else target.rate_limit
        burst = target.burst if hook.rate_limit is None else max(1, round(hook.rate_limit))
        return cls(hook.concurrency or target.concurrency, rate, burst)

    def free_slots(self, now: datetime) -> int:
        if self.paused(now):
            return 0
        return max(self.concurrency - self.in_flight, 0)

    def paused(self, now: datetime) -> bool:
        return self.paused_until is not None and self.paused_until > now

    def pause(self, wait: timedelta, now: datetime | None = None) -> None:
        until = (now or datetime.now(UTC)) + wait
        if self.paused_until is None or until > self.paused_until:
            self.paused_until = until

    def take(self) -> None:
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight = max(self.in_flight - 1, 0)

    async def turn(self) -> bool:
        """Wait until the token bucket lets one more request start; False (at once) when the
        lane is paused: the caller hands its delivery back instead of holding it."""
        async with self._lock:
            while True:
                if self.paused(datetime.now(UTC)):
                    return False
                if self.rate is None:
                    return True
                self._refill()
                if self._tokens >= 1:
                    self._tokens -= 1
                    return True
                await self._sleep((1 - self._tokens) / self.rate)

    def _refill(self) -> None:
        assert self.rate is not None
        moment = self._clock()
        self._tokens = min(self.burst, self._tokens + (moment - self._filled_at) * self.rate)
        self._filled_at = moment
