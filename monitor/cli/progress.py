"""The status line of a long `monitor run --once` on a terminal: feeds done of all, new items,
alerts, then the delivery phase. Nothing is drawn when stderr is not a terminal (cron, pipes,
logs collected by a supervisor) or with `--quiet`.

The line is redrawn in place (carriage return, erase to the end of the line) at most every
`every` seconds; a log record written meanwhile first erases it, so log lines stay whole and
the status comes back at the next update.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

from monitor.runtime.once import CycleSummary

ERASE = "\r\x1b[K"


class _EraseFirst(logging.Filter):
    """Erases the status line before a record is written to the same terminal."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def filter(self, record: logging.LogRecord) -> bool:
        self.progress.erase()
        return True


class Progress:
    def __init__(
        self,
        stream: TextIO,
        *,
        every: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream, self.every, self.clock = stream, every, clock
        self.drawn = False
        self.elsewhere = False  # drawn by another process: erase before every log record
        self.last = float("-inf")
        self._filter = _EraseFirst(self)
        self._handlers = [
            h
            for h in logging.getLogger().handlers
            if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is stream
        ]
        for handler in self._handlers:
            handler.addFilter(self._filter)

    @classmethod
    def on_terminal(cls, *, quiet: bool, stream: TextIO | None = None) -> Progress | None:
        """A status line on `stream` (stderr) if it is a terminal and not `quiet`, else None."""
        target = stream or sys.stderr
        if quiet or not target.isatty():
            return None
        return cls(target)

    def polled(self, summary: CycleSummary, total: int) -> None:
        """One more feed done: redraw if the last drawing is old enough (and at the last)."""
        if summary.feeds < total and self.clock() - self.last < self.every:
            return
        self.draw(
            f"polling {summary.feeds:,}/{total:,} feeds · {summary.new_items:,} new items · "
            f"{summary.alerts:,} alerts"
            + (f" · {summary.failed:,} failed" if summary.failed else "")
        )

    def delivering(self, summary: CycleSummary) -> None:
        self.draw(f"polled {summary.feeds:,} feeds · {summary.alerts:,} alerts · delivering…")

    def draw(self, text: str) -> None:
        self.stream.write(ERASE + text)
        self.stream.flush()
        self.drawn, self.last = True, self.clock()

    def drawn_by_another(self) -> None:
        self.elsewhere = True

    def erase(self) -> None:
        if self.drawn or self.elsewhere:
            self.stream.write(ERASE)
            self.stream.flush()
            self.drawn = False

    def close(self) -> None:
        """Erase the line and stop watching the log handlers."""
        self.erase()
        for handler in self._handlers:
            handler.removeFilter(self._filter)
