"""Which rules would read an item's article page (Matcher.page_candidates), table-driven: the
prefilter of docs/rules.md, "Full text", and what compiling says about `fulltext` rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.matching import Matcher, RuleFile, compile_rules
from monitor.models import Item

TERMS = {"russia": ["Russia", "Moscow", "Lavrov"], "cuba": ["Cuba", "Havana"]}
BOTH = {"all": ["$russia", "$cuba"]}


def matcher(*rules: dict[str, Any]) -> Matcher:
    document = {"terms": TERMS, "rules": [{"title": "T", **rule} for rule in rules]}
    compiled = compile_rules([(Path("rules.yaml"), RuleFile.model_validate(document))])
    assert isinstance(compiled, Matcher), compiled
    return compiled


# (case, rule, headline, every_rule (the feed's fulltext), candidate?)
CASES: list[tuple[str, dict[str, Any], str, bool, bool]] = [
    ("one part of two", {"fulltext": True, "match": BOTH}, "Minister lands in Havana", False, True),
    ("no part", {"fulltext": True, "match": BOTH}, "Storm season begins", False, False),
    ("matched already", {"fulltext": True, "match": BOTH}, "Lavrov in Havana", False, False),
    ("not reading pages", {"match": BOTH}, "Minister lands in Havana", False, False),
    ("the feed reads them", {"match": BOTH}, "Minister lands in Havana", True, True),
    ("one-part rule", {"fulltext": True, "match": "$cuba"}, "Minister in Havana", False, False),
    (
        "declared prefilter holds",
        {"fulltext": True, "match": "$cuba", "prefilter": "Caribbean"},
        "Caribbean leaders meet",
        False,
        True,
    ),
    (
        "declared prefilter fails",
        {"fulltext": True, "match": BOTH, "prefilter": "minister"},
        "Talks in Havana",
        False,
        False,
    ),
    (
        "no content field",
        {"fulltext": True, "match": BOTH, "fields": ["title", "summary"]},
        "Minister lands in Havana",
        False,
        False,
    ),
    (
        "near: one operand",
        {"fulltext": True, "match": {"near": ["$russia", "$cuba"], "within": 3}},
        "Lavrov says",
        False,
        True,
    ),
    (
        "another feed",
        {"fulltext": True, "match": BOTH, "feeds": ["https://other.example/*"]},
        "Minister lands in Havana",
        False,
        False,
    ),
]


@pytest.mark.parametrize(
    ("rule", "headline", "every_rule", "candidate"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_page_candidates(
    rule: dict[str, Any], headline: str, every_rule: bool, candidate: bool
) -> None:
    found = matcher({"id": "r", **rule})
    item = Item(title=headline, feed_url="https://news.example/feed.xml")
    matched = {match.rule_id for match in found.match(item)}
    expected = ("r",) if candidate else ()
    assert found.page_candidates(item, matched, every_rule=every_rule) == expected


def test_only_the_rules_that_read_pages_say_so() -> None:
    assert matcher({"id": "a", "fulltext": True, "match": BOTH}).reads_pages
    assert not matcher({"id": "a", "match": BOTH}).reads_pages


def test_a_one_part_rule_without_prefilter_is_warned_about() -> None:
    (note,) = [
        note
        for note in matcher({"id": "a", "fulltext": True, "match": "$cuba"}).notes
        if note.loc[-1] == "fulltext"
    ]
    assert note.severity == "warning"
    assert "declare a `prefilter`" in note.message
    quiet = matcher({"id": "a", "fulltext": True, "match": "$cuba", "prefilter": "Caribbean"})
    assert not [note for note in quiet.notes if note.loc[-1] == "fulltext"]


def test_a_prefilter_without_a_positive_term_is_an_error() -> None:
    document = {
        "terms": TERMS,
        "rules": [{"id": "a", "title": "T", "fulltext": True, "match": BOTH,
                   "prefilter": {"not": ["Cuba"]}}],
    }  # fmt: skip
    problems = compile_rules([(Path("rules.yaml"), RuleFile.model_validate(document))])
    assert isinstance(problems, list)
    (problem,) = problems
    assert problem.loc == ("rules", 0, "prefilter")
    assert "no positive term" in problem.message
