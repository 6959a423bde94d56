"""`monitor check` advice, table-driven: hints where inflection makes a hand-written list of
endings redundant or a word is not in its dictionary form, warnings where a term cannot match
what it seems to say. Advice never makes rules invalid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.matching import Matcher, compile_rules
from tests.matching.support import rule_file


def _notes(term: Any) -> list[tuple[str, str]]:
    data = {"terms": {"t": [term]}, "rules": [{"id": "r", "title": "R", "match": "$t"}]}
    compiled = compile_rules([(Path("rules.yaml"), rule_file(data))])
    assert isinstance(compiled, Matcher), compiled
    return [(note.severity, note.message) for note in compiled.notes]


@pytest.mark.parametrize(
    ("term", "severity", "words"),
    [
        ("Куб(а|ы|е|у|ой)", "hint", "write `Куба` alone"),
        ("Путин(|а|у|ым|е)", "hint", "write `Путин` alone"),
        ("Альварес(|а|у|ом|е) Касас(|а|у|ом|е)", "hint", "write `Альварес Касас` alone"),
        ("visit(|s|ed|ing)", "hint", "write `visit` alone"),
        ("sanci(ón|ones)", "hint", "write `sanción` alone"),
        ("rus(o|a|os|as)", "hint", "write `ruso` alone"),
        ("cigar(|s)", "hint", "write `cigar` alone"),
        ("sanctions", "hint", "write `sanction` to match all of its forms"),
        ("санкции", "hint", "write `санкция` to match all of its forms"),
        ("dissident{,s}", "warning", "the words `dissident s` in a row"),
        ("privad[oa]", "warning", "braces and brackets are not part of the rule language"),
        ({"term": "Havana", "unless": ["Little Rock"]}, "warning", "never cancels a hit"),
    ],
)
def test_advice(term: Any, severity: str, words: str) -> None:
    assert any(s == severity and words in message for s, message in _notes(term)), _notes(term)


@pytest.mark.parametrize(
    "term",
    [
        "Куба",
        "Куб(а|ок)",  # two words, not two forms of one
        "Gazprom*",
        {"term": "Куб(а|ы)", "exact": True},  # listed on purpose
        {"term": "US", "case_sensitive": True},
        {"term": "Havana", "unless": ["Little Havana"]},
        "Kolokoltsev",  # a name: no dictionary form to suggest
        "La Habana",
        "met",  # `meet` does not reach it: the form is needed
        "1990s",  # simplemma's lemma is two words (nineteen-nineties): nothing to suggest
    ],
)
def test_no_advice(term: Any) -> None:
    assert _notes(term) == []


def test_the_shipped_rules_take_their_own_advice() -> None:
    from bench.eval_rules import DEFAULT_RULES, load_matcher  # noqa: PLC0415

    assert [(n.path.name, n.message) for n in load_matcher(DEFAULT_RULES).notes] == []
