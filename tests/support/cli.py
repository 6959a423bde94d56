"""The `monitor` CLI for tests: in this process by default, in a real process where that matters.

result = run_in_process(["check", "--config", str(config)], cwd=config)
result.returncode, result.stdout, result.stderr      # as subprocess.CompletedProcess

`run_in_process` calls `monitor.cli.main.main(argv)` with stdin, stdout and stderr swapped for
buffers, the environment and working directory set for the call, and everything the CLI changes
in the process put back afterwards: the root logger's handlers and level (`setup_logging`
replaces them), the quiet libraries' levels, the environment, the working directory. A
`SystemExit` (argparse's `--help`, `--version`, a bad argument) becomes the exit code, and an
uncaught exception is printed as the interpreter would and exits 1, as the real process does.

`run_process` starts the real `monitor` command (`python -m monitor`): for what only a process
shows (signals, the process's own exit code, the console script, start-up). It costs ~1.3 s of
CPU per call, so tests use it only for that.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

from monitor.cli.main import main
from monitor.runtime.logs import QUIET_LIBRARIES

Result = subprocess.CompletedProcess[str]


def run_in_process(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
) -> Result:
    """`monitor ARGS` as a call in this process; its exit code and what it wrote."""
    argv = list(args)
    if _loop_running():
        # asyncio.run (run --once, the daemon) refuses to nest in a running loop: an async
        # test's CLI call runs in a thread of its own, as it would run in a process of its own
        outcome: list[Result] = []
        worker = threading.Thread(
            target=lambda: outcome.append(_call(argv, cwd, env, input_text)), daemon=True
        )
        worker.start()
        worker.join()
        assert outcome, "the CLI call raised in its thread"
        return outcome[0]
    return _call(argv, cwd, env, input_text)


def run_process(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    timeout: float = 60,
) -> Result:
    """The real `monitor ARGS` in a subprocess (`python -m monitor`)."""
    full_env = {**os.environ, "PYTHONWARNINGS": "error::DeprecationWarning:monitor", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env=full_env,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _call(
    argv: list[str], cwd: Path, env: Mapping[str, str] | None, input_text: str | None
) -> Result:
    stdout, stderr = io.StringIO(), io.StringIO()
    stdin = io.StringIO(input_text or "")
    with _process_state(cwd, env), redirect_stdout(stdout), redirect_stderr(stderr):
        saved_stdin, sys.stdin = sys.stdin, stdin
        try:
            code = main(argv)
        except SystemExit as exc:
            code = _exit_code(exc.code)
        except Exception:  # what the interpreter does with an uncaught exception
            traceback.print_exc()
            code = 1
        finally:
            sys.stdin = saved_stdin
    return subprocess.CompletedProcess(
        ["monitor", *argv], code, stdout.getvalue(), stderr.getvalue()
    )


def _exit_code(code: object) -> int:
    """sys.exit's argument as the process's exit code: None is 0, text is printed and 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


@contextmanager
def _process_state(cwd: Path, env: Mapping[str, str] | None) -> Iterator[None]:
    """Working directory, environment and logging as the call found them, put back after it."""
    saved_cwd = Path.cwd()
    saved_env = dict(os.environ)
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET_LIBRARIES}
    os.environ.update(env or {})
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for handler in list(root.handlers):
            root.removeHandler(handler)
            if handler not in saved_handlers:
                handler.close()
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)
