"""What a compiled rule set knows about its files beyond matching: where each term set is
defined, whether it is shared and who uses it (`monitor terms`), and the rules' examples
(`monitor check` runs them, examples.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from monitor.matching.problems import Loc
from monitor.models import Item


@dataclass(frozen=True, slots=True)
class TermSetInfo:
    """One term set: where it is defined, and what uses it."""

    name: str
    path: Path
    shared: bool  # defined in a `shared: true` file: every file's rules may use it
    terms: int  # its terms, nested sets included
    rules: tuple[str, ...]  # ids of the rules that use it, directly or through another set
    sets: tuple[str, ...]  # the sets that include it

    @property
    def loc(self) -> Loc:
        return ("terms", self.name)


@dataclass(frozen=True, slots=True)
class RuleExample:
    """One example of a rule: an item it must match (`expect_match`) or must not."""

    rule_id: str
    path: Path  # the rule's file
    loc: Loc  # ("rules", 3, "examples", "no_match", 1)
    item: Item
    expect_match: bool
