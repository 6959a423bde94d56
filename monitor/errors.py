"""The exception tree of monitor.

Errors that cross a stage boundary travel as values (a `FetchFailed`, a `DeliveryOutcome`) that
carry one of these; they are raised only inside a stage or where the program must stop.

    MonitorError
    ├── ConfigError                  config or rules invalid: exits 2, each problem printed
    ├── FeedError                    one feed failed; contained to that feed, recorded in the store
    │   ├── TransientFeedError       timeout, refused connection, 5xx, 429: retried with backoff
    │   └── PermanentFeedError       404, not a feed, too big, hostile: backed off; 410: stopped
    ├── DeliveryError                one delivery attempt failed; the alert stays in the outbox
    │   ├── TransientDeliveryError   timeout, refused connection, 3xx, 5xx, 429: retried on schedule
    │   └── PermanentDeliveryError   a 4xx other than 408/429: still retried on schedule (a
    │                                receiver may be fixed), and shown as such in the attempt log
    ├── StoreError                   the database cannot be reached or migrated
    └── StartError                   the daemon cannot start (its HTTP address is taken, …)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class MonitorError(Exception):
    """Base of every error monitor raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong in a config or rule file, printed as `PATH:LINE:COL: message`."""

    path: Path
    line: int  # 1-based; 0 when the problem has no position (a missing file)
    column: int  # 1-based
    message: str

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.column}: {self.message}"
        return f"{self.path}: {self.message}"


class ConfigError(MonitorError):
    """The config or rules do not validate; `problems` lists every one found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class FeedError(MonitorError):
    """One feed could not be fetched or parsed."""


class TransientFeedError(FeedError):
    """Worth retrying soon: timeouts, refused connections, 5xx, 429."""


class PermanentFeedError(FeedError):
    """Will not fix itself: 404, 410, not a feed, over a limit, hostile content."""


class DeliveryError(MonitorError):
    """One delivery attempt failed."""


class TransientDeliveryError(DeliveryError):
    """Retried on the webhook's `retry` schedule."""


class PermanentDeliveryError(DeliveryError):
    """The target refused this alert (a 4xx other than 408/429); retried on schedule all the same,
    since receivers get fixed, and recorded as permanent so users can tell it from a timeout."""


class StoreError(MonitorError):
    """The database cannot be reached, opened or migrated."""


class StartError(MonitorError):
    """The daemon cannot start (its HTTP address is taken, …): exit 1 with the reason."""
