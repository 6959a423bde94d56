"""What every command does first: load the config, or print its problems for the user."""

from __future__ import annotations

import sys
from pathlib import Path

from monitor.config.settings import LoadedConfig, load_config
from monitor.errors import ConfigError


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


def plural(count: int, noun: str) -> str:
    """`1 problem`, `2 problems`, `0 examples`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
