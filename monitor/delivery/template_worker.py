"""Where `json` templates render: in worker processes bounded in CPU time and memory.

A template is code its author wrote; a loop that produces nothing (`{% for a in s %}{% for b
in s %}{% endfor %}{% endfor %}`) passes none of the sandbox's hooks, so no check inside the
sandbox can stop it, and a thread cannot be stopped at all. A worker process can: each render
gets CPU_SECONDS of CPU time (a profiling timer in the worker raises into the template, whatever
it is doing in Python), an address space MEMORY_BYTES above what the worker had at start, and
a wall-clock backstop after which the parent kills the worker (a C call that ignores the timer).
A worker that went over a limit or died is replaced; the others go on. Workers are started on
first use from the fork server (monitor.feeds.parsing starts it the same way), at most WORKERS.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import signal
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from monitor.processes import forkserver

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

CPU_SECONDS = 2.0
MEMORY_BYTES = 512 * 1024 * 1024
BACKSTOP_SECONDS = 30.0  # wall clock, for a render the CPU timer could not interrupt
WORKERS = 2


@dataclass(frozen=True, slots=True)
class Rendered:
    """What a render gave: the text, or why there is none (`error`, a sentence for users)."""

    text: str | None
    error: str | None = None
    permanent: bool = True  # False: the worker died for a reason of its own (retry)
    spent: bool = False  # the worker went over a limit: replace it (a MemoryError may linger)


class _OutOfTime(BaseException):
    """Raised into the template by the CPU timer: a BaseException, so no template catches it."""


def _out_of_time(_signum: int, _frame: FrameType | None) -> None:
    raise _OutOfTime


def _limit_memory() -> None:
    with contextlib.suppress(OSError, ValueError):  # /proc is Linux's; elsewhere no cap
        pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[0])
        now = pages * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (now + MEMORY_BYTES, now + MEMORY_BYTES))


def _render(source: str, context: Mapping[str, object]) -> Rendered:
    """One render, in the worker, under the CPU timer."""
    from monitor.delivery.template_sandbox import render_text  # noqa: PLC0415 - in the worker

    try:
        signal.setitimer(signal.ITIMER_PROF, CPU_SECONDS)
        try:
            return Rendered(render_text(source, context))
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
    except (_OutOfTime, Exception) as exc:
        return _failure(exc)


def _failure(exc: BaseException) -> Rendered:
    """Why a render failed, for users: the limit it went over, or the template's error."""
    from monitor.delivery.template_sandbox import TemplateLimit  # noqa: PLC0415 - in the worker

    spent: str | None = None
    if isinstance(exc, _OutOfTime):
        spent = f"the time limit of {CPU_SECONDS:g}s of CPU"
    elif isinstance(exc, MemoryError):
        spent = f"the memory limit of {MEMORY_BYTES // 2**20} MiB"
    elif isinstance(exc, RecursionError):
        spent = "the recursion limit (macros calling macros)"
    if spent is not None:
        return Rendered(None, f"template went over {spent}", spent=True)
    if isinstance(exc, TemplateLimit | OverflowError):  # OverflowError: the sandbox's `range`
        return Rendered(None, f"template went over a limit: {exc}")
    # any other error is the template's too (a filter given the wrong value, …): say which
    return Rendered(None, f"template failed: {type(exc).__name__}: {exc}")


def _serve(connection: Connection) -> None:
    """The worker's loop: one (source, context) in, one Rendered out, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the daemon, which stops us
    signal.signal(signal.SIGPROF, _out_of_time)
    _limit_memory()
    while True:
        try:
            source, context = connection.recv()
        except EOFError:
            return
        result = _render(source, context)
        try:
            connection.send(result)
        except MemoryError:  # the text fitted but its pickle did not
            connection.send(Rendered(None, "template went over the memory limit", spent=True))


class _Worker:
    def __init__(self) -> None:
        context = forkserver()  # monitor.processes
        self.connection, child = context.Pipe()
        self.process: BaseProcess = context.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()

    def render(self, source: str, context: Mapping[str, object]) -> Rendered | None:
        """The result, or None when the worker died or went past the backstop (kill it)."""
        try:
            self.connection.send((source, dict(context)))
            ready = wait([self.connection, self.process.sentinel], BACKSTOP_SECONDS)
            if self.connection in ready and self.connection.poll():
                result = self.connection.recv()
                assert isinstance(result, Rendered)
                return result
        except (EOFError, OSError):
            pass
        return None

    def stop(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.connection.close()


class _Pool:
    """Up to WORKERS workers, each rendering one template at a time."""

    def __init__(self) -> None:
        self._idle: list[_Worker] = []
        self._started = 0
        self._changed = threading.Condition()

    def _take(self) -> _Worker:
        with self._changed:
            while not self._idle and self._started >= WORKERS:
                self._changed.wait()
            if self._idle:
                return self._idle.pop()
            self._started += 1
        try:
            return _Worker()
        except BaseException:
            self._give_back(None)
            raise

    def _give_back(self, worker: _Worker | None) -> None:
        with self._changed:
            if worker is None:
                self._started -= 1
            else:
                self._idle.append(worker)
            self._changed.notify()

    def render(self, source: str, context: Mapping[str, object]) -> Rendered:
        try:
            worker = self._take()
        except (OSError, RuntimeError) as exc:  # no process could start (limits, permissions)
            message = f"could not start a process to render the template: {exc}"
            return Rendered(None, message, permanent=False)
        result = worker.render(source, context)
        if result is not None and not result.spent:
            self._give_back(worker)
            return result
        died = worker.process.exitcode is not None
        worker.stop()
        self._give_back(None)
        if result is not None:
            return result
        if died:
            return Rendered(None, "the process rendering the template died", permanent=False)
        return Rendered(None, f"template went over the time limit of {BACKSTOP_SECONDS:g}s")


_pool = _Pool()
# the threads that wait for the workers: their own, one per worker, so renders queued behind a
# slow template wait in this queue and hold none of the loop's default threads (the store's)
_waiting = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="json-template")


def render(source: str, context: Mapping[str, object]) -> Rendered:
    """Render `source` with `context` (plain JSON values) in a worker; this blocks."""
    return _pool.render(source, context)


async def render_off_loop(source: str, context: Mapping[str, object]) -> Rendered:
    """render(), the event loop going on meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(_waiting, render, source, context)
