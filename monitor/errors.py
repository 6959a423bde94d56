"""The exception tree of monitor.

Errors that cross a stage boundary travel as values (a `FetchFailed`, a `ParseFailed`, a
`DeliveryOutcome`) that carry one of these; they are raised only inside a stage or where the
program must stop.

    MonitorError                     every error monitor raises on purpose
    ├── ConfigError                  config or rules invalid: exits 2, each ConfigProblem printed
    ├── FeedError                    one feed's poll failed: contained to that feed, its error
    │   │                            recorded in the store; every one is retried on the feed's
    │   │                            backoff (the interval doubled per failure in a row, capped
    │   │                            at a day, never sooner than Retry-After); only a 410 stops
    │   │                            polling
    │   ├── TransientFeedError       may pass by itself: timeout, refused connection, host not
    │   │                            found, a broken protocol, 408, 429, 5xx
    │   └── PermanentFeedError       will not pass by itself: any other 4xx, not a feed, over a
    │                                size limit, hostile content, an invalid TLS certificate or
    │                                redirect; its log line asks the user to check the feed
    ├── DeliveryError                one delivery attempt failed; the alert stays in the outbox
    │   ├── TransientDeliveryError   timeout, refused connection, 3xx, 5xx, 429: retried on schedule
    │   └── PermanentDeliveryError   a 4xx other than 408/429, a template that fails: still
    │                                retried on schedule (a receiver may be fixed), and recorded
    │                                as `permanent` in the attempt log
    ├── StoreError                   the database cannot be reached, migrated, or is at another
    │                                schema revision
    └── StartError                   the daemon cannot start (its HTTP address is taken, …)

Not in the tree, on purpose: signals their callers catch at once and turn into one of the above
or into an answer (BodyTooLarge of monitor.feeds.compression, _Refused of
monitor.web.websub).
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
    """May pass by itself: timeouts, refused connections, 408, 429, 5xx."""


class PermanentFeedError(FeedError):
    """Will not pass by itself (404, 410, not a feed, over a limit, hostile content): retried on
    the same backoff all the same, and logged with a request to check the feed."""


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
