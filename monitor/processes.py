"""The worker processes' forkserver: the parse workers (monitor.feeds.parsing) and the template
sandbox (monitor.delivery.template_worker) start from one, and it imports only what they run.

multiprocessing has one forkserver per process, whose preload list is the one given before it
first starts, so both ask for it here with one list.

A child of the forkserver also runs the parent's main script again (as `__mp_main__`), unless
the main module is a package's `__main__` (`python -m monitor`), which multiprocessing skips.
The `monitor` console script is a file, so each worker re-imported monitor.cli.main and all it
imports: the forkserver once preloaded all of that so the workers would inherit it, and each
worker then held the whole application in its memory (~62 MiB RSS each where the parser needs a
third of it). Naming the main module after the package's `__main__` gives the console script
what `python -m monitor` has (`name_main_after_the_package`, called by the console script's
entry point): children that import only the preloaded parser and sandbox.

A command's process ends here too (`exit_without_teardown`): what it loaded lives until the
process does, so freeing it object by object at exit is work the system does at once.

`in_a_fork` runs a function in a forked child and hands back its pickled result: work whose
leftovers (dictionaries opened, caches filled, a fragmented heap) a long-lived process should
not keep, such as compiling the rules.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.machinery
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable
from functools import partial
from multiprocessing.context import ForkServerContext
from typing import NoReturn, TypeVar

T = TypeVar("T")

# glibc's malloc arenas per process: by default each thread that allocates while another holds
# an arena gets one of its own (up to 8 per core), and what a parse thread freed stays in its
# arena for that thread to reuse, so the parse threads and the executor's each kept a heap
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number for it (glibc's malloc.h)

# By name, not import: this leaf must not import the stages (the layers of pyproject.toml)
PRELOAD = [
    *("monitor.feeds.parser", "feedparser"),
    *("monitor.delivery.template_worker", "monitor.delivery.template_sandbox"),
]


def forkserver() -> ForkServerContext:
    """The context to start worker processes from."""
    context = multiprocessing.get_context("forkserver")
    assert isinstance(context, ForkServerContext)
    context.set_forkserver_preload(PRELOAD)
    return context


def name_main_after_the_package() -> None:
    """For the `monitor` console script (monitor.cli.main.entry), whose main module is that
    script: its children then do not run it again. Other programs' main modules are theirs."""
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__spec__", None) is None:
        # multiprocessing.spawn skips re-running a main module whose name ends in `.__main__`
        main.__spec__ = importlib.machinery.ModuleSpec("monitor.__main__", None)


def can_fork() -> bool:
    """Linux, and no other thread runs: a fork copies none of them, and a lock one of them held
    would stay held in the child for good (macOS's system libraries do not survive a fork
    without an exec)."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


def fork(child: Callable[[], int]) -> int:
    """Fork; the child runs `child()` and exits with what it returns (1 if it raised, 130 on
    Ctrl-C), nothing of the parent's running on its way out. The child's pid. Call only where
    `can_fork()`."""
    sys.stdout.flush()  # else what is buffered would be written by both processes
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; its coverage is not collected
        _exit_with(child)
    return pid


def _exit_with(child: Callable[[], int]) -> NoReturn:  # pragma: no cover - runs in the child
    code = 1
    try:
        code = child()
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the parent reports it
        code = 130
    except BaseException:  # noqa: S110 - nothing may unwind into the parent's frames; a
        pass  # child that must say why logs it itself
    finally:
        # no exit handler or buffer of the parent's may run twice; our own output is out
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def in_a_fork(function: Callable[[], T]) -> T | None:
    """`function()` run in a forked child, its result pickled back; None when this process may
    not fork (`can_fork`) or the child did not return (it raised, or was killed): the caller
    then runs `function` itself, where the same error shows."""
    if not can_fork():
        return None
    read, write = os.pipe()
    # Signals wait from before the fork until the pid is in the try below: a Ctrl-C handled in
    # between would leave the child running, its cleanup not yet armed. The child unblocks them
    # first thing; here a signal that came meanwhile is handled once unblocked, inside the try.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        pid = fork(partial(_send_result, function, read, write, held))
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        os.close(read)
        os.close(write)
        raise
    os.close(write)
    status: int | None = None
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        with os.fdopen(read, "rb") as pipe:
            data = pipe.read()
        status = os.waitpid(pid, 0)[1]
    finally:
        # interrupted (Ctrl-C): the child must not outlive the call; not yet reaped, its pid is
        # still its own (a reaped one's may be another process's by now)
        if status is None:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return None
    result: T = pickle.loads(data)  # noqa: S301 - written by our own child, just above
    return result


def _send_result(
    function: Callable[[], T], read: int, write: int, signals: set[int | signal.Signals]
) -> int:  # pragma: no cover - runs in the child
    signal.pthread_sigmask(signal.SIG_SETMASK, signals)
    os.close(read)
    data = pickle.dumps(function(), protocol=pickle.HIGHEST_PROTOCOL)
    with os.fdopen(write, "wb") as pipe:
        pipe.write(data)
    return 0


def fewer_malloc_arenas() -> bool:
    """Cap glibc's malloc arenas at MALLOC_ARENAS, in this process (before it starts threads)
    and, through MALLOC_ARENA_MAX, in those it starts (the forkserver and its workers). A value
    the user set is left as it is; elsewhere than glibc there is nothing to cap. True if
    capped here."""
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    if mallopt(_M_ARENA_MAX, MALLOC_ARENAS) != 1:
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(MALLOC_ARENAS)
    return True


def exit_without_teardown(code: int) -> NoReturn:
    """End a command that is done: exit handlers run, output is flushed, and the interpreter's
    teardown (every module and object freed one by one, which the system does at once) is
    skipped. With other threads running, a normal exit: it waits for them."""
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's, undocumented
    if run_exit_handlers is None or threading.active_count() > 1:
        sys.exit(code)
    run_exit_handlers()  # logging's flush, executors' joins, multiprocessing's finalizers
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
