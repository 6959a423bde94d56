"""Helpers for the matching tests: compile rules written as Python data or YAML files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from monitor.matching import Matcher, RuleFile, RuleProblem, compile_rules
from monitor.models import Item

DATA = Path(__file__).resolve().parent.parent / "data" / "matching"
REPO = Path(__file__).resolve().parent.parent.parent
SHARED_DEV = REPO.parent / "shared" / "eval" / "dev.jsonl"


def rule_file(data: dict[str, Any]) -> RuleFile:
    return RuleFile.model_validate(data)


def matcher_for(match: object, terms: dict[str, Any] | None = None, **rule: Any) -> Matcher:
    """A matcher with one rule `r` whose condition is `match`."""
    data = {"terms": terms or {}, "rules": [{"id": "r", "title": "R", "match": match, **rule}]}
    compiled = compile_rules([(Path("rules.yaml"), rule_file(data))])
    assert isinstance(compiled, Matcher), compiled
    return compiled


def problems_for(*files: dict[str, Any]) -> list[RuleProblem]:
    compiled = compile_rules([(Path(f"f{i}.yaml"), rule_file(d)) for i, d in enumerate(files)])
    assert isinstance(compiled, list), "expected problems, got a matcher"
    return compiled


def load_rules(path: Path) -> Matcher | list[RuleProblem]:
    paths = [path] if path.is_file() else sorted(path.glob("*.yaml"))
    files = [(p, RuleFile.model_validate(yaml.safe_load(p.read_text("utf-8")))) for p in paths]
    return compile_rules(files)


def hits(matcher: Matcher, title: str, **fields: Any) -> list[str]:
    """The texts of the hits of rule `r` on an item, or [] when it does not match."""
    for match in matcher.match(Item(title=title, **fields)):
        if match.rule_id == "r":
            return [hit.text for hit in match.hits]
    return []


def matches(matcher: Matcher, title: str, **fields: Any) -> bool:
    return any(m.rule_id == "r" for m in matcher.match(Item(title=title, **fields)))
