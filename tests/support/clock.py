"""A monotonic clock for code that takes `clock: Callable[[], float]`: it moves only when a test
sets or advances `now`, so time-dependent behaviour is tested without waiting."""

from __future__ import annotations


class ManualClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
