"""Whether the store's writes succeed: what /healthz reports beside a store that answers.

A database can answer `SELECT 1` while refusing every write (a full disk, a write lock held by
another process, a read-only replica). The poll writer (monitor.store.writer) and the dispatcher
(recording each attempt) record here how their transactions fare, so health can say `failing`
until a write succeeds again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class WriteStatus:
    """The last write outcome: failing since when, with what error (None: writes work)."""

    clock: Callable[[], float] = time.monotonic
    failing_since: float | None = None
    error: str | None = None
    failures: int = field(default=0)  # failed transactions in a row

    def succeeded(self) -> None:
        self.failing_since, self.error, self.failures = None, None, 0

    def failed(self, error: BaseException) -> None:
        if self.failing_since is None:
            self.failing_since = self.clock()
        self.failures += 1
        # the driver's own error: SQLAlchemy's adds the statement and its parameters (feed URLs)
        orig = getattr(error, "orig", None)
        shown = orig if isinstance(orig, BaseException) else error
        text = " ".join(str(shown).split())[:200]
        self.error = f"{type(shown).__name__}: {text}" if text else type(shown).__name__

    def problem(self) -> str | None:
        """None while writes work; else what /healthz says about them."""
        if self.failing_since is None:
            return None
        age = self.clock() - self.failing_since
        return f"writes failing for {age:.0f}s ({self.failures} in a row): {self.error}"
