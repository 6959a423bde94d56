"""A Docker engine for tests, through the `docker` CLI: is one there, the image, containers' logs.

- `engine_problem()`: why no engine can be used here (None when `docker info` answers).
- `ensure_base(image)`: the base image, made by scripts/container-base when it is ours.
- `Logs(name)`: a container's output as it comes (`docker logs --follow`), awaited like
  LocalServer's requests: `logs.wait_for(lambda lines: ..., timeout=60)`.
- `eventually(what, probe, timeout)`: probe (docker inspect, say) until it returns a value.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[2]
OUR_BASE = "monitor-base:"  # the prefix of images scripts/container-base makes
T = TypeVar("T")


def docker(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`docker ARGS`; with `check`, a failure raises with the command's stderr."""
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "no `docker` command (apt-get install docker.io)"
    try:
        info = docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=30)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 30s"
    if info.returncode != 0 or not info.stdout.strip():
        return f"no Docker engine answers `docker info` ({info.stderr.strip()[:200]})"
    return None


def ensure_base(image: str) -> str | None:
    """None once `image` can be built on; else why not. Our own base is made here when absent
    (root and debootstrap, or its cached root filesystem); any other is pulled by the build."""
    if not image.startswith(OUR_BASE):
        return None
    if docker("image", "inspect", image, check=False).returncode == 0:
        return None
    made = subprocess.run(
        [str(REPO / "scripts" / "container-base"), image],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if made.returncode == 2:  # not root, or no debootstrap
        return made.stderr.strip()
    if made.returncode != 0:
        raise AssertionError(f"scripts/container-base failed: {made.stdout}{made.stderr}")
    return None


def pip_index() -> str | None:
    """The index pip uses on this machine when one is set, for pip inside the build."""
    return os.environ.get("PIP_INDEX_URL") or None


class Logs:
    """A container's stdout and stderr lines as they are written, from a `docker logs -f`."""

    def __init__(self, name: str) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._process = subprocess.Popen(
            ["docker", "logs", "--follow", name],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[list[str]], bool], timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: condition(self.lines), timeout=timeout)

    @property
    def text(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def close(self) -> None:
        self._process.kill()
        self._process.wait()
        self._thread.join(timeout=5)
        if self._process.stdout is not None:
            self._process.stdout.close()


def eventually(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    """`probe()` again until it returns a value; AssertionError saying `what` at the deadline.
    For state that only a command can ask (`docker inspect`): nothing pushes it."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.25)  # between probes of a state nothing announces
