"""The parts of a rule file that validate, when the whole file does not: so that `monitor
check` reports, in one run, the schema errors of a file and the semantic problems of the rest
(a duplicate rule id, an unknown `$set`, a `Cu*ba`), instead of the second kind only once the
first is fixed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from monitor.matching.rules import RuleSource
from monitor.matching.schema import Rule, RuleFile, TermEntry

_TERM_SET: TypeAdapter[list[Any]] = TypeAdapter(list[TermEntry])


def valid_parts(path: Path, data: object) -> RuleSource | None:
    """The sets and rules of `data` that validate on their own, with what is known of the
    others (their names and ids); None when not even the file's frame does (`terms` not a
    mapping, `rules` not a list, an unknown top-level key…)."""
    if not isinstance(data, dict):
        return None
    terms, rules = data.get("terms") or {}, data.get("rules") or []
    if not isinstance(terms, dict) or not isinstance(rules, list):
        return None
    frame = {key: value for key, value in data.items() if key not in ("terms", "rules")}
    try:
        head = RuleFile.model_validate(frame)
    except ValidationError:
        return None
    good_sets: dict[str, Any] = {}
    broken_sets: set[str] = set()
    for name, entries in terms.items():
        try:
            good_sets[str(name)] = _TERM_SET.validate_python(entries)
        except ValidationError:
            broken_sets.add(str(name))
    good_rules: list[Rule] = []
    indexes: list[int] = []
    broken_ids: list[str] = []
    for index, raw in enumerate(rules):
        try:
            good_rules.append(Rule.model_validate(raw))
            indexes.append(index)
        except ValidationError:
            rule_id = raw.get("id") if isinstance(raw, dict) else None
            if isinstance(rule_id, str):
                broken_ids.append(rule_id)
    try:
        file = RuleFile.model_validate({**frame, "terms": good_sets, "rules": []})
    except ValidationError:  # a set's name is what is wrong: leave every set out
        file = head
        broken_sets |= set(good_sets)
    file = file.model_copy(update={"rules": good_rules})
    return RuleSource(path, file, tuple(indexes), frozenset(broken_sets), tuple(broken_ids))
