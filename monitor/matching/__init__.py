"""Matching: which news items matter, and why.

    RuleFile (YAML, pydantic) --compile_rules--> Matcher --match(Item)--> [Match]
                                                          explain(Item, Match) -> str

monitor.text folds text (case, accents, HTML, transliteration keys); schema.py is the rule file
format; morph.py reads words in English, Spanish and Russian (inflected forms); lexicon.py
indexes every term word for exact, inflected, prefix and fuzzy lookup; rules.py compiles and
checks rule files, lint.py gives advice on them; matcher.py evaluates rules against an item;
explain.py prints the evidence.
The rule language is documented in docs/rules.md.
"""

from monitor.matching.explain import explain
from monitor.matching.matcher import Matcher, RuleInfo
from monitor.matching.problems import RuleProblem
from monitor.matching.rules import compile_rules
from monitor.matching.schema import RuleFile

__all__ = ["Matcher", "RuleFile", "RuleInfo", "RuleProblem", "compile_rules", "explain"]
