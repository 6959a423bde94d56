"""The `monitor` console script names its main module after the package's `__main__`, so that
worker processes (monitor.processes) do not run the script again; it ends without the
interpreter's teardown, yet with its exit handlers and its output."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from monitor.cli import main as cli_main
from monitor.cli.main import entry
from monitor.processes import name_main_after_the_package

EXITING = """
import atexit, sys, threading
from monitor.processes import exit_without_teardown

atexit.register(lambda: print("exit handler ran"))
print("buffered, not yet written", end=" ")
if sys.argv[1] == "thread":
    go = threading.Event()
    threading.Thread(target=lambda: (go.wait(), print("thread done", end=" "))).start()
    go.set()
exit_without_teardown(3)
"""


def test_the_entry_point_names_a_script_main_after_the_package(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = types.ModuleType("__main__")
    script.__file__ = "/usr/local/bin/monitor"
    script.__spec__ = None  # a script run by path has none
    monkeypatch.setitem(sys.modules, "__main__", script)
    monkeypatch.setattr(sys, "argv", ["monitor", "--version"])
    monkeypatch.setattr(cli_main, "exit_without_teardown", sys.exit)  # pytest lives on
    try:
        with pytest.raises(SystemExit):
            entry()
    finally:
        gc.unfreeze()  # entry() freezes what exists, for a process of its own
    assert script.__spec__ is not None
    assert script.__spec__.name == "monitor.__main__"
    assert capsys.readouterr().out.startswith("monitor")


def test_a_main_module_with_a_name_keeps_it(monkeypatch: pytest.MonkeyPatch) -> None:
    program = types.ModuleType("__main__")
    program.__spec__ = types.SimpleNamespace(name="someone.elses")  # type: ignore[assignment]
    monkeypatch.setitem(sys.modules, "__main__", program)
    name_main_after_the_package()
    assert program.__spec__.name == "someone.elses"


@pytest.mark.parametrize("threads", ["none", "thread"])
def test_an_exit_without_teardown_keeps_output_handlers_and_code(threads: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", EXITING, threads], capture_output=True, text=True, check=False
    )
    assert done.returncode == 3, done.stderr
    expected = "buffered, not yet written " + ("thread done " if threads == "thread" else "")
    assert done.stdout == expected + "exit handler ran\n"
    assert done.stderr == ""


ARENAS = """
import os, sys
from monitor.processes import fewer_malloc_arenas, forkserver
capped = fewer_malloc_arenas()
with forkserver().Pool(1) as pool:
    seen = pool.apply(os.getenv, ("MALLOC_ARENA_MAX",))
print(capped, os.environ.get("MALLOC_ARENA_MAX"), seen)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc: Linux only")
@pytest.mark.parametrize(
    ("preset", "printed"), [(None, "True 2 2"), ("4", "False 4 4")], ids=["capped", "user's"]
)
def test_malloc_arenas_are_capped_here_and_in_the_workers_unless_the_user_chose(
    preset: str | None, printed: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    if preset is not None:
        env["MALLOC_ARENA_MAX"] = preset
    done = subprocess.run(
        [sys.executable, "-c", ARENAS],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == printed.split()


FORKING = """
import os, signal, sys, threading
from monitor.processes import in_a_fork

def fail():
    raise ValueError("no")

def killed():
    os.kill(os.getpid(), signal.SIGKILL)

print("pid", in_a_fork(os.getpid) not in (None, os.getpid()))
LARGE = {"rules": [1, 2], "text": "x" * 200_000}  # more than a pipe holds
print("value", in_a_fork(lambda: LARGE) == LARGE)
print("raised", in_a_fork(fail))
print("killed", in_a_fork(killed))
go = threading.Event()
thread = threading.Thread(target=go.wait)
thread.start()
print("with a thread", in_a_fork(os.getpid))
go.set()
thread.join()
print("alone again", in_a_fork(lambda: 7))

def interrupt(*_):
    raise KeyboardInterrupt

def interrupts_its_parent():
    with open(sys.argv[1], "w") as file:
        file.write(str(os.getpid()))
    os.kill(os.getppid(), signal.SIGALRM)  # Ctrl-C reaching the parent alone, once we run
    signal.pause()

def outcome(child):
    try:
        os.kill(child, 0)
    except ProcessLookupError:
        return "the child is gone"
    os.kill(child, signal.SIGKILL)  # it holds this script's output open: the test would hang
    return "the child still runs"

signal.signal(signal.SIGALRM, interrupt)
try:
    in_a_fork(interrupts_its_parent)
except KeyboardInterrupt:
    with open(sys.argv[1]) as file:
        print("interrupted,", outcome(int(file.read())))

# The parent slow to come back from the fork (a busy machine): the child signals it first.
import monitor.processes as processes
told, tell = os.pipe()
real_fork = processes.fork
children = []

def signals_at_once():
    os.kill(os.getppid(), signal.SIGALRM)
    os.write(tell, b"sent")
    signal.pause()

def slow_fork(child):
    pid = real_fork(child)
    children.append(pid)
    os.read(told, 4)  # back only once the signal was sent
    return pid

processes.fork = slow_fork
try:
    in_a_fork(signals_at_once)
except KeyboardInterrupt:
    print("interrupted on the way back,", outcome(children[0]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="in_a_fork forks on Linux only")
def test_a_function_runs_in_a_fork_only_when_it_may_and_only_its_result_comes_back(
    tmp_path: Path,
) -> None:
    """Its result from another process, larger than a pipe's buffer; None when it raised, when
    it was killed and while another thread runs (the caller then runs it itself); a caller
    interrupted while it waits leaves no child behind."""
    done = subprocess.run(
        [sys.executable, "-c", FORKING, str(tmp_path / "child.pid")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "pid True",
        "value True",
        "raised None",
        "killed None",
        "with a thread None",
        "alone again 7",
        "interrupted, the child is gone",
        "interrupted on the way back, the child is gone",
    ]
    assert done.stderr == ""
