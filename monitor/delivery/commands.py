"""Delivery's own commands (`monitor alerts`, `monitor replay`, `monitor sink`, …).

`register` adds their parsers to the CLI; each parser sets `handler`, a function taking the
parsed arguments and returning the exit code, which `monitor.cli.main` calls.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

ConfigOption = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


def register(sub: Any, with_config: ConfigOption) -> None:
    """Add delivery's subcommands to `sub` (argparse's subparsers action)."""
