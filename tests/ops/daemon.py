"""A real `monitor run` process for ops tests: its stderr read as it comes, its HTTP server found.

daemon = Daemon.start(config_dir)          # waits for the start summary line
daemon.get("/healthz")                     # (status, body) from its own HTTP server
daemon.wait_for_log("config reloaded")     # event-driven: a condition on the lines so far
daemon.stop()                              # SIGTERM, returns (exit code, seconds to exit)
daemon.logged_at("stopped")                # time.monotonic() when that line was read
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

START_TIMEOUT = 30.0
_HTTP = re.compile(r"http (http://[\d.]+:\d+)")


def with_http(config_dir: Path, address: str = "127.0.0.1:0") -> Path:
    """Add `http:` to a config folder's monitor.yaml (port 0: the daemon picks a free one)."""
    path = config_dir / "monitor.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["http"] = address
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), "utf-8")
    return config_dir


def edit_config(config_dir: Path, change: Callable[[dict[str, object]], None]) -> None:
    """Rewrite monitor.yaml after `change` edits its document (atomically, as editors do)."""
    path = config_dir / "monitor.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(document)
    temporary = path.with_suffix(".yaml.tmp")
    temporary.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), "utf-8")
    temporary.replace(path)


class Daemon:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self.times: list[float] = []  # time.monotonic() when each line of `lines` was read
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.base_url = ""
        self.signalled_at: float | None = None

    @classmethod
    def start(
        cls,
        config_dir: Path,
        *options: str,
        run_options: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> Daemon:
        """`monitor OPTIONS run --config DIR RUN_OPTIONS`, once it has logged its start."""
        command = ["run", "--config", str(config_dir), *run_options]
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", *options, *command],
            cwd=config_dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        daemon = cls(process)
        line = daemon.wait_for_log("monitor running:", timeout=START_TIMEOUT)
        found = _HTTP.search(line)
        if found:
            daemon.base_url = found.group(1)
        return daemon

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self.times.append(time.monotonic())
                self._changed.notify_all()
        with self._changed:
            self.lines.append("")  # end of output: wake every waiter
            self.times.append(time.monotonic())
            self._changed.notify_all()

    @property
    def log(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for_log(self, text: str, *, after: int = 0, timeout: float = 20.0) -> str:
        """The first line from index `after` on that contains `text`; AssertionError if none."""
        found: list[str] = []

        def seen() -> bool:
            found[:] = [line for line in self.lines[after:] if text in line]
            return bool(found) or self.process.poll() is not None

        with self._changed:
            self._changed.wait_for(seen, timeout=timeout)
        assert found, f"no log line with {text!r} within {timeout}s; log so far:\n{self.log}"
        return found[0]

    def logged_at(self, text: str, *, after: int = 0) -> float | None:
        """When the first line from index `after` on containing `text` was read, if one was."""
        with self._changed:
            for line, moment in zip(self.lines[after:], self.times[after:], strict=True):
                if text in line:
                    return moment
        return None

    def mark(self) -> int:
        """How many lines were logged so far (to wait for a line after this point)."""
        with self._changed:
            return len(self.lines)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=10) as response:
                return response.status, response.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8")

    def metric(self, name: str) -> float:
        """The value of one sample (`name` with its labels, as exposed) from /metrics."""
        _status, text = self.get("/metrics")
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self, timeout: float = 30.0) -> tuple[int, float]:
        """SIGTERM; the exit code and the seconds from the signal to the exit.

        `signalled_at` keeps when the signal went, to compare with `logged_at` lines."""
        self.signalled_at = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        seconds = time.monotonic() - self.signalled_at  # not the wait for the log reader below
        self._close()
        return code, seconds

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._close()

    def _close(self) -> None:
        self._reader.join(timeout=5)
        if self.process.stderr is not None:
            self.process.stderr.close()
