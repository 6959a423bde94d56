"""What compiling rules found wrong (errors) or worth saying (hints, warnings), with where."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

Loc = tuple[str | int, ...]  # a path into a rule file's YAML data: ("rules", 0, "match", ...)


@dataclass(frozen=True)
class RuleProblem:
    """One semantic problem in a rule file; `loc` is a path into that file's YAML data.

    `see`: a second place the message is about (where a term set is defined), which whoever
    knows the files' positions appends to the message as `PATH:LINE:COL`."""

    path: Path
    loc: Loc
    message: str
    severity: str = "error"  # error | warning | hint: only errors make a config invalid
    see: tuple[Path, Loc] | None = None
