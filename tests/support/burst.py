"""One cycle of the real pipeline in the test's process, on a clock the test moves.

burst = Burst(clock)                       # the `burst` fixture
summary = burst.cycle(config_dir)          # run_once: sync, claim, refresh, health, deliver
summary.alerts, summary.deliveries.delivered, summary.pending
burst.clock.advance(timedelta(hours=1))    # later: the next cycle sees an hour gone by

The cycle is `monitor.runtime.once.run_once` itself (real Store, Pipeline, refresh_feed and
dispatcher, real HTTP to the test's servers on 127.0.0.1), loaded from the config folder as
`monitor run --once` loads it. What differs is time: `datetime.now()` everywhere in the process
reads the test's clock (time-machine), which runs on from where the test put it, and the wait
for a retry to fall due moves that clock on instead of sleeping. `time.monotonic()` and the event
loop's timers are untouched, so HTTP timeouts and deadlines stay real.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import time_machine

from monitor.config.settings import load_config
from monitor.runtime.once import CycleSummary, run_once


class Clock:
    """The process's wall clock under the test's hand (it keeps ticking from where it is put)."""

    def __init__(self, traveller: time_machine.Coordinates) -> None:
        self._traveller = traveller
        self.slept: list[float] = []  # every wait the code asked for, in seconds

    def now(self) -> datetime:
        return datetime.now(UTC)

    def advance(self, delta: timedelta) -> None:
        self._traveller.shift(delta)

    async def sleep(self, seconds: float) -> None:
        """What the cycle awaits instead of asyncio.sleep: the time passes at once."""
        self.slept.append(seconds)
        self._traveller.shift(timedelta(seconds=seconds))
        await asyncio.sleep(0)


@dataclass
class Burst:
    clock: Clock

    def cycle(
        self, config_dir: Path, *, max_wait: timedelta = timedelta(seconds=30)
    ) -> CycleSummary:
        """`monitor run --once --config DIR --max-wait MAX_WAIT`, as a call; its summary."""
        return asyncio.run(self.acycle(config_dir, max_wait=max_wait))

    async def acycle(
        self, config_dir: Path, *, max_wait: timedelta = timedelta(seconds=30)
    ) -> CycleSummary:
        config = load_config(config_dir)
        return await run_once(config, max_wait, sleep=self.clock.sleep)
