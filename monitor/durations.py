"""Durations as users write them: `30s`, `10m`, `2h`, `1d`, `1w` (and sums like `1h30m`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")


def parse_duration(text: str) -> timedelta:
    """Parse `30s`, `10m`, `2h`, `1d`, `1h30m`; raise ValueError with a message users can act on."""
    cleaned = text.strip().lower().replace(" ", "")
    if not _WHOLE.fullmatch(cleaned):
        raise ValueError(
            f"invalid duration {text!r}: write a number and a unit, like 30s, 10m, 2h, 1d or 1h30m"
        )
    seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(cleaned))
    return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Budget:
    """At most `count` alerts in any `window` (a rule's `max_alerts: 20/1h`)."""

    count: int
    window: timedelta

    def __str__(self) -> str:
        return f"{self.count}/{format_duration(self.window)}"


BUDGET_PATTERN = r"^\s*[1-9][0-9]*\s*/\s*(?:[0-9]+(?:\.[0-9]+)?[smhdw])+\s*$"


def parse_budget(text: str) -> Budget:
    """Parse `20/1h`: a count, a slash, a duration."""
    count, _, window = text.partition("/")
    if not count.strip().isdigit() or int(count) < 1 or not window.strip():
        raise ValueError(f"invalid budget {text!r}: write a count and a duration, like 20/1h")
    return Budget(int(count), parse_duration(window))


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling: 90s -> 1m30s, 86400s -> 1d."""
    remaining = int(value.total_seconds())
    if remaining == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def approximate_duration(value: timedelta) -> str:
    """The largest whole unit, for people: 90s -> 1m, 26h -> 1d, 42s -> 42s."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
