"""Running a rule's examples: each item must come out as the rule file says (match, or no
match), and a failing one is explained with the same words as `monitor match --explain`.

The term sets named in the clauses that decided are kept with each failure, so that `monitor
check` can say when a set shared with other files is among the causes: an edit of a shared set
is the way one file's edit changes another file's rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from monitor.matching.catalog import RuleExample
from monitor.matching.explain import explain, explain_miss
from monitor.matching.matcher import Matcher
from monitor.matching.whynot import Clause, why_not

_SET_REF = re.compile(r"\$([A-Za-z][A-Za-z0-9_-]*)")


@dataclass(frozen=True, slots=True)
class ExampleFailure:
    example: RuleExample
    explanation: str  # the why (an unexpected match) or why not (a missed one)
    sets: tuple[str, ...]  # names of the term sets in the clauses that decided

    @property
    def summary(self) -> str:
        example = self.example
        title = example.item.title
        if example.expect_match:
            return f'rule {example.rule_id}: example "{title}" should match but did not'
        return f'rule {example.rule_id}: example "{title}" should not match but did'


def run_examples(matcher: Matcher) -> list[ExampleFailure]:
    """Every example of every rule that does not come out as written, in rule-file order."""
    rules = {rule.info.id: rule for rule in matcher.compiled_rules}
    failures = []
    for example in matcher.examples:
        rule = rules[example.rule_id]
        found = next((m for m in matcher.match(example.item) if m.rule_id == rule.info.id), None)
        if (found is not None) == example.expect_match:
            continue
        verdict = why_not(matcher, example.item, rule)
        if found is None:
            deciding = [clause for clause in verdict.clauses if not clause.holds]
            text = explain_miss(verdict)
        else:  # what made it hold: its positive clauses (a `not` holds by absence)
            deciding = [c for c in verdict.clauses if c.holds and not c.clause.startswith("not ")]
            text = explain(example.item, found)
        sets = dict.fromkeys(name for clause in deciding for name in _set_names(clause))
        failures.append(ExampleFailure(example, text, tuple(sets)))
    return failures


def _set_names(clause: Clause) -> list[str]:
    # a failed `not` names all its exclusions; its reason names the one that vetoed
    vetoing = clause.clause.startswith("not ")
    names = _SET_REF.findall(clause.reason if vetoing else clause.clause)
    for part in clause.parts:
        names.extend(_set_names(part))
    return names
