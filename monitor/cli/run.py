"""Running monitor: `monitor run` (the daemon, or `--once`) and `monitor health`."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import yaml

from monitor.cli.progress import Progress
from monitor.cli.reporting import load_or_report
from monitor.config.settings import (
    CONFIG_FILE,
    LoadedConfig,
)
from monitor.config.yamlpos import load_plain
from monitor.errors import StartError, StoreError
from monitor.runtime import once as one_cycle
from monitor.runtime.logs import setup_logging as _setup_logging

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
log = logging.getLogger("monitor")


def setup_logging(level: str, fmt: str = "text") -> None:
    _setup_logging(level, fmt)


def run(
    directory: Path,
    *,
    once: bool,
    max_wait: timedelta,
    grace: timedelta = timedelta(seconds=10),
    quiet: bool = False,
    processes: int | None = None,
) -> int:
    config = load_or_report(directory)
    if config is None:
        return EXIT_INVALID
    try:
        if once:
            summary = _once(config, max_wait, quiet=quiet, processes=processes)
            print(summary.line())
        else:
            from monitor.runtime import daemon  # noqa: PLC0415 - its parts load only for the daemon

            asyncio.run(daemon.run_daemon(config, grace=grace.total_seconds()))
    except StoreError as exc:
        log.error("storage: %s", exc)  # noqa: TRY400 - users need the message, not a traceback
        return EXIT_FAILED
    except StartError as exc:
        log.error("cannot start: %s", exc)  # noqa: TRY400 - the message says it all
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_OK


def _once(
    config: LoadedConfig, max_wait: timedelta, *, quiet: bool, processes: int | None
) -> one_cycle.CycleSummary:
    status = Progress.on_terminal(quiet=quiet)
    try:
        return one_cycle.run_cycle(config, max_wait, progress=status, processes=processes)
    finally:
        if status is not None:
            status.close()


def health(directory: Path, url: str | None, timeout: timedelta) -> int:
    """Ask a running daemon's /healthz; 0 healthy, 1 unhealthy or unreachable, 2 not configured."""
    if url is None:
        url, problem = health_url(directory)
        if url is None:
            print(f"monitor health: {problem}", file=sys.stderr)
            return EXIT_INVALID
    try:
        response = httpx.get(url, timeout=timeout.total_seconds())
    except httpx.HTTPError as exc:
        print(f"unhealthy: cannot reach {url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(response.text.strip() or f"HTTP {response.status_code}")
    return EXIT_OK if response.status_code == 200 else EXIT_FAILED


def health_url(directory: Path) -> tuple[str | None, str]:
    """/healthz of the daemon configured in DIR: MONITOR_HTTP, else the `http:` key.

    monitor.yaml is read leniently (only `http`), so a config edit that does not validate —
    which the running daemon survives — does not make its health check fail.
    """
    from monitor.web.server import HTTP_ENV, parse_address  # noqa: PLC0415 - the daemon's part

    text = os.environ.get(HTTP_ENV)
    if not text:
        path = directory / CONFIG_FILE
        try:
            document = load_plain(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            return None, f"cannot read {path}: {exc}"
        value = document.get("http") if isinstance(document, dict) else None
        if isinstance(value, dict):  # the mapping form: {listen: HOST:PORT, token: …}
            value = value.get("listen")
        if not isinstance(value, str) or not value:
            return None, f"no `http:` key in {path} and no {HTTP_ENV}; or pass --url"
        text = os.path.expandvars(value)
    try:
        host, port = parse_address(text)
    except ValueError as exc:
        return None, str(exc)
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - listening everywhere, ask locally
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz", ""
