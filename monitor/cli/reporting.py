"""What every command does first: load the config, or print its problems for the user."""

from __future__ import annotations

import sys
from pathlib import Path

from monitor.config.settings import LoadedConfig, load_config
from monitor.errors import ConfigError


def load_or_report(directory: Path, *, secrets: bool = True) -> LoadedConfig | None:
    """The loaded config; or None after printing each problem and their count on stderr.
    `secrets=False` for commands that neither deliver nor poll (see `load_config`)."""
    try:
        return load_config(directory, secrets=secrets)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(f"{count} problem{'s' if count != 1 else ''} found", file=sys.stderr)
        return None
