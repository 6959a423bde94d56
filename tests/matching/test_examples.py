"""Rule examples: each item comes out as the file says, or the failure is explained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from monitor.matching import Matcher, compile_rules
from monitor.matching.examples import run_examples
from monitor.matching.schema import RuleFile
from tests.matching.support import REPO, load_rules, rule_file

TERMS = {"russia": ["Russia", "Москва"], "cuba": ["Cuba", "Куба"], "talks": ["talk", "прилететь"]}


def _matcher(examples: dict[str, Any], **files: dict[str, Any]) -> Matcher:
    rule = {
        "id": "contacts",
        "title": "Contacts",
        "match": {"all": [{"near": ["$russia", "$cuba"]}, "$talks"]},
        "examples": examples,
    }
    sources = [(Path(name), rule_file(data)) for name, data in files.items()]
    sources.append((Path("rules.yaml"), rule_file({"terms": TERMS, "rules": [rule]})))
    compiled = compile_rules(sources)
    assert isinstance(compiled, Matcher), compiled
    return compiled


def test_examples_that_come_out_as_written_are_no_failure() -> None:
    matcher = _matcher({"match": ["Москва и Куба talk"], "no_match": ["Cubs talk in Moscow"]})
    assert len(matcher.examples) == 2
    assert run_examples(matcher) == []


def test_a_missed_example_is_explained_clause_by_clause() -> None:
    matcher = _matcher({"match": ["Москва и Куба подписали договор"]})
    (failure,) = run_examples(matcher)
    assert failure.example.loc == ("rules", 0, "examples", "match", 0)
    assert failure.summary == (
        'rule contacts: example "Москва и Куба подписали договор" should match but did not'
    )
    lines = failure.explanation.splitlines()
    assert lines[0] == "rule contacts (Contacts): no match"
    assert lines[1].startswith("  holds  all[0] near [$russia, $cuba] within 8:")
    assert lines[2].startswith("  fails  all[1] $talks: no term of the set (2 terms) occurs")
    assert failure.sets == ("talks",)  # the failing clause's set, not the one that held


def test_an_unexpected_match_shows_its_evidence() -> None:
    matcher = _matcher({"no_match": [{"title": "Cuba talks", "summary": "Russia and Cuba talk"}]})
    (failure,) = run_examples(matcher)
    assert failure.summary == 'rule contacts: example "Cuba talks" should not match but did'
    assert failure.explanation.startswith("rule contacts (Contacts), severity medium")
    assert '"talk" ← term "talk" (exact, 100.0)' in failure.explanation
    assert set(failure.sets) == {"russia", "cuba", "talks"}


def test_an_example_carries_summary_content_and_language() -> None:
    matcher = _matcher(
        {"match": [{"title": "Cuba", "summary": "Russia talks", "content": "x", "lang": "en"}]}
    )
    (example,) = matcher.examples
    assert (example.item.summary, example.item.content, example.item.lang) == (
        "Russia talks", "x", "en",
    )  # fmt: skip
    assert example.expect_match


@pytest.mark.parametrize(
    "examples",
    [{"match": [""]}, {"match": [{"summary": "no title"}]}, {"must": ["x"]}, {"match": "x"}],
)
def test_malformed_examples_are_schema_errors(examples: object) -> None:
    rule = {"id": "r", "title": "R", "match": "x", "examples": examples}
    with pytest.raises(ValidationError):
        RuleFile.model_validate({"rules": [rule]})


def test_every_shipped_rule_carries_examples_and_they_pass() -> None:
    matcher = load_rules(REPO / "config" / "rules")
    assert isinstance(matcher, Matcher), matcher
    for rule in matcher.rules:
        mine = [e for e in matcher.examples if e.rule_id == rule.id]
        assert any(e.expect_match for e in mine), rule.id
        assert any(not e.expect_match for e in mine), rule.id
    assert run_examples(matcher) == []
    traps = {e.item.title for e in matcher.examples if not e.expect_match}
    for trap in ("Cubs", "Poutine", "Idaho", "Tampa", "rubio", "Prussia", "Кубок"):
        assert any(trap in title for title in traps), trap
