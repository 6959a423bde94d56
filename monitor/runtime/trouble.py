"""A recurring job that keeps failing is logged once per change, then reminded, not every tick.

While PostgreSQL is down every one-second tick failed with a full traceback (1.4 MB of stderr a
minute). A `Trouble` per job logs one line when the job starts failing, one when it fails in
another way, a reminder every `REMIND_EVERY` while it lasts, and one when it works again. The
traceback of each change goes to the DEBUG level (`--log-level debug` shows it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

REMIND_EVERY = 300.0  # seconds between reminders while a job keeps failing the same way


def summary(error: BaseException) -> str:
    """One line naming the error: the database driver's own (SQLAlchemy's adds the statement
    and its parameters), its first line, bounded."""
    orig = getattr(error, "orig", None)
    shown = orig if isinstance(orig, BaseException) else error
    lines = str(shown).strip().splitlines()
    text = lines[0][:300] if lines else ""
    return f"{type(shown).__name__}: {text}" if text else type(shown).__name__


class Trouble:
    """The failures of one recurring job (`what`: "reading due feeds from the store")."""

    def __init__(
        self,
        what: str,
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
        remind_every: float = REMIND_EVERY,
    ) -> None:
        self.what = what
        self.logger = logger
        self.clock = clock
        self.remind_every = remind_every
        self.since: float | None = None  # when the job started failing; None: it works
        self.failures = 0
        self._error = ""
        self._said_at = 0.0

    def failed(self, error: BaseException) -> None:
        now, said = self.clock(), summary(error)
        self.failures += 1
        if self.since is None:
            self.since = now
            self.logger.error(
                "%s failed (%s); retrying, reminded every %ds while it lasts",
                self.what,
                said,
                self.remind_every,
            )
        elif said != self._error:
            self.logger.error("%s now fails another way (%s)", self.what, said)
        elif now - self._said_at >= self.remind_every:
            self.logger.error(
                "%s still failing, for %ds (%d times): %s",
                self.what,
                now - self.since,
                self.failures,
                said,
            )
        else:
            return
        self._said_at, self._error = now, said
        self.logger.debug("%s failed", self.what, exc_info=error)

    def succeeded(self) -> None:
        if self.since is None:
            return
        self.logger.warning(
            "%s works again, after %d failures over %ds",
            self.what,
            self.failures,
            self.clock() - self.since,
        )
        self.since, self.failures, self._error = None, 0, ""
