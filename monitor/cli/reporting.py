"""What every command does first: load the config (and open its store), or print its problems
for the user."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

from monitor.config.settings import LoadedConfig, load_config
from monitor.durations import parse_duration
from monitor.errors import ConfigError, StoreError
from monitor.store import Store
from monitor.wording import plural

EXIT_FAILED, EXIT_INVALID = 1, 2


def duration_argument(text: str) -> timedelta:
    """An option's duration (`30s`, `1d`), as argparse wants its type: a bad one is a usage
    error that says how to write one."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def count_argument(text: str) -> int:
    """An option's count of at least 1, as argparse wants its type."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def load_or_report(
    directory: Path, *, secrets: bool = True, rules: Path | None = None
) -> LoadedConfig | None:
    """The loaded config; or None after printing each problem and their count on stderr.
    `secrets=False` for commands that neither deliver nor poll (see `load_config`): they do
    not run the rules' examples either, so that `match --explain` can look into one that
    fails (`check` runs them itself, with explanations). `rules`: draft rules in place of the
    live files of the same names."""
    try:
        return load_config(directory, secrets=secrets, rules=rules, examples=secrets)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        # the paths above are relative to the config folder, which this line names
        print(f"{plural(len(exc.problems), 'problem')} found in {directory}", file=sys.stderr)
        return None


def open_read_only(directory: Path) -> tuple[LoadedConfig, Store] | int:
    """The config loaded without secrets and its store opened, for the commands that read and
    write the store but neither poll nor deliver; else the exit code, after saying why (2 an
    invalid config, 1 the storage unavailable)."""
    config = load_or_report(directory, secrets=False)
    if config is None:
        return EXIT_INVALID
    try:
        return config, Store.open(config.storage_url)
    except StoreError as exc:
        print(f"storage: {exc}", file=sys.stderr)
        return EXIT_FAILED
