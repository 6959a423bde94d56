"""A lane's token bucket on a clock of the test's own: the pacing of a rate-limited target."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.delivery.limits import Lane


class Clock:
    """A monotonic clock that moves only when the lane sleeps on it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def _starts(lane: Lane, clock: Clock, count: int) -> list[float]:
    started = []
    for _ in range(count):
        assert await lane.turn()
        started.append(round(clock.now - 100.0, 6))
    return started


async def test_a_burst_then_the_rate() -> None:
    clock = Clock()
    lane = Lane(4, rate=2.0, burst=2, clock=clock, sleep=clock.sleep)
    assert await _starts(lane, clock, 5) == [0.0, 0.0, 0.5, 1.0, 1.5]


async def test_time_spent_idle_refills_the_bucket_up_to_the_burst() -> None:
    clock = Clock()
    lane = Lane(4, rate=2.0, burst=2, clock=clock, sleep=clock.sleep)
    await _starts(lane, clock, 2)
    clock.now += 60  # a minute without deliveries: two tokens, not 120
    assert await _starts(lane, clock, 3) == [60.0, 60.0, 60.5]


async def test_an_unlimited_lane_never_waits_and_a_paused_one_refuses() -> None:
    clock = Clock()
    lane = Lane(1, rate=None, burst=1, clock=clock, sleep=clock.sleep)
    assert await _starts(lane, clock, 100) == [0.0] * 100
    lane.pause(timedelta(seconds=30), now=datetime.now(UTC))
    assert not await lane.turn()
