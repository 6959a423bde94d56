"""Matching: which news items matter, and why.

    RuleFile (YAML, pydantic) --compile_rules--> Matcher --match(Item)--> [Match]
                                                          explain(Item, Match) -> str

monitor.text folds text (case, accents, HTML, transliteration keys); schema.py is the rule file
format; morph.py reads words in English, Spanish and Russian (inflected forms); lexicon.py
indexes every term word for exact, inflected, prefix and fuzzy lookup; rules.py compiles and
checks rule files, lint.py gives advice on them; matcher.py evaluates rules against an item;
explain.py prints the evidence; saved.py keeps compiled rules in the cache folder.
The rule language is documented in docs/rules.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from monitor.matching.explain import explain
from monitor.matching.matcher import Matcher, RuleInfo
from monitor.matching.problems import RuleProblem

if TYPE_CHECKING:
    from monitor.matching.rules import compile_rules
    from monitor.matching.schema import RuleFile

# Imported on first use: a start whose rules are saved (saved.py) matches items without
# ever reading a rule file's schema or compiling. (A name that is also a submodule's, like
# `explain`, cannot be: importing the submodule would put the module in its place.)
_ON_USE = {"RuleFile": "monitor.matching.schema", "compile_rules": "monitor.matching.rules"}


def __getattr__(name: str) -> object:
    if name in _ON_USE:
        return getattr(importlib.import_module(_ON_USE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Matcher", "RuleFile", "RuleInfo", "RuleProblem", "compile_rules", "explain"]
