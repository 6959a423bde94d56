"""compile_rules: every semantic problem, with the loc that points at it in that file's YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.matching import Matcher, RuleFile, RuleProblem, compile_rules
from monitor.matching.schema import Condition, Rule
from monitor.models import Item
from tests.matching.support import DATA, load_rules, problems_for

CUBA = {"cuba": ["Cuba", "Havana"]}


def _rule(match: Any, rule_id: str = "r") -> dict[str, Any]:
    return {"id": rule_id, "title": "T", "match": match}


# (case id, rule file data, expected (loc, words in the message))
PROBLEMS: list[tuple[str, dict[str, Any], tuple[tuple[str | int, ...], str]]] = [
    (
        "unknown-set",
        {"terms": CUBA, "rules": [_rule({"all": ["$cuba", "$cubaa"]})]},
        (("rules", 0, "match", "all", 1), "unknown term set `$cubaa` (did you mean `$cuba`?)"),
    ),
    (
        "unknown-set-root",
        {"rules": [_rule("$nothing")]},
        (("rules", 0, "match"), "unknown term set `$nothing`"),
    ),
    (
        "unknown-set-in-set",
        {"terms": {"a": ["x", "$b"]}, "rules": [_rule("$a")]},
        (("terms", "a", 1), "unknown term set `$b`"),
    ),
    (
        "cycle",
        {"terms": {"a": ["$b"], "b": ["$a"]}, "rules": [_rule("$a")]},
        (("terms", "a"), "term sets include each other: $a → $b → $a"),
    ),
    (
        "never-matches",
        {"terms": CUBA, "rules": [_rule({"all": ["$cuba"], "not": ["$cuba"]})]},
        (("rules", 0, "match"), "can never match"),
    ),
    (
        "never-matches-nested",
        {"terms": CUBA, "rules": [_rule({"all": ["Cuba", {"not": ["Cuba", "x"]}]})]},
        (("rules", 0, "match"), "can never match"),
    ),
    (
        "matches-everything",
        {"terms": CUBA, "rules": [_rule({"not": ["$cuba"]})]},
        (("rules", 0, "match"), "no positive term"),
    ),
    (
        "matches-everything-any",
        {"terms": CUBA, "rules": [_rule({"any": ["x", {"not": ["y"]}]})]},
        (("rules", 0, "match"), "no positive term"),
    ),
    (
        "star-inside",
        {"rules": [_rule("sanc*tions")]},
        (("rules", 0, "match"), "`*` may only end a word"),
    ),
    (
        "star-alone",
        {"rules": [_rule({"all": ["x", "*"]})]},
        (("rules", 0, "match", "all", 1), "no letters or digits"),
    ),
    (
        "parentheses",
        {"rules": [_rule("Куб(а|ы")]},
        (("rules", 0, "match"), "unbalanced or nested parentheses"),
    ),
    (
        "alternatives-multiply-past-the-cap",  # 2**18 forms took 25 s and 434 MB before the cap
        {"rules": [_rule("".join(f"w{n}(a|b)" for n in range(18)))]},
        (("rules", 0, "match"), "makes 262,144 forms (at most 256)"),
    ),
    (
        "no-letters",
        {"rules": [_rule({"any": ["x", "—"]})]},
        (("rules", 0, "match", "any", 1), "no letters or digits"),
    ),
    (
        "options-on-ref",
        {"terms": CUBA, "rules": [_rule({"term": "$cuba", "fuzzy": False})]},
        (("rules", 0, "match", "fuzzy"), "options do not apply to a `$set` reference"),
    ),
    (
        "near-with-not",
        {"terms": CUBA, "rules": [_rule({"near": ["$cuba", {"not": ["x"]}]})]},
        (("rules", 0, "match", "near", 1), "`near` takes terms"),
    ),
    (
        "near-with-all",
        {"terms": CUBA, "rules": [_rule({"near": [{"all": ["x", "y"]}, "$cuba"]})]},
        (("rules", 0, "match", "near", 0), "`near` takes terms"),
    ),
]


@pytest.mark.parametrize(
    ("data", "expected"), [c[1:] for c in PROBLEMS], ids=[c[0] for c in PROBLEMS]
)
def test_problem(data: dict[str, Any], expected: tuple[tuple[str | int, ...], str]) -> None:
    loc, words = expected
    problems = problems_for(data)
    assert any(p.loc == loc and words in p.message for p in problems), problems


def test_duplicate_rule_id_across_files_points_at_the_second_id() -> None:
    first = {"terms": CUBA, "rules": [_rule("$cuba", "same")]}
    second = {"rules": [_rule("Havana", "other"), _rule("Havana", "same")]}
    (problem,) = problems_for(first, second)
    assert problem == RuleProblem(
        Path("f1.yaml"),
        ("rules", 1, "id"),
        "rule id `same` is already used, at",
        see=(Path("f0.yaml"), ("rules", 0, "id")),
    )


def test_duplicate_shared_term_set_points_at_the_second_definition() -> None:
    shared = {"shared": True, "terms": CUBA}
    (problem,) = problems_for(shared, shared, {"rules": [_rule("$cuba")]})
    assert (problem.path, problem.loc) == (Path("f1.yaml"), ("terms", "cuba"))
    assert problem.message == "term set `cuba` is already defined, at"
    assert problem.see == (Path("f0.yaml"), ("terms", "cuba"))


def test_empty_term_set() -> None:
    problems = problems_for({"terms": {"empty": []}, "rules": [_rule({"all": ["x", "$empty"]})]})
    assert (problems[0].loc, problems[0].message) == (
        ("terms", "empty"),
        "term set `empty` is empty",
    )
    assert any(p.loc == ("rules", 0, "match") and "never match" in p.message for p in problems)


# Rules that pydantic would refuse, built without validation: compile_rules checks them too.
def _unvalidated(match: Condition) -> RuleFile:
    rule = Rule.model_construct(
        id="r",
        title="T",
        description="",
        severity="medium",
        feeds=[],
        fields=["title", "summary", "content", "tags"],
        match=match,
    )
    return RuleFile.model_construct(version=1, terms={}, rules=[rule])


@pytest.mark.parametrize(
    ("match", "loc", "words"),
    [
        (
            Condition.model_construct(term="Havana", threshold=150, **{"not_": None}),
            ("rules", 0, "match", "threshold"),
            "between 0 and 100",
        ),
        (Condition.model_construct(term=None, all=[]), ("rules", 0, "match", "all"), "empty `all`"),
        (Condition.model_construct(term=None, any=[]), ("rules", 0, "match", "any"), "empty `any`"),
        (
            Condition.model_construct(term=None, near=[Condition(term="a")], within=3),
            ("rules", 0, "match", "near"),
            "at least two",
        ),
        (
            Condition.model_construct(
                term=None, near=[Condition(term="a"), Condition(term="b")], within=-1
            ),
            ("rules", 0, "match", "within"),
            "between 0 and 1000",
        ),
    ],
)
def test_problems_pydantic_would_catch_first(
    match: Condition, loc: tuple[str | int, ...], words: str
) -> None:
    problems = compile_rules([(Path("r.yaml"), _unvalidated(match))])
    assert isinstance(problems, list)
    assert any(p.loc == loc and words in p.message for p in problems), problems


def test_all_problems_are_returned_not_the_first() -> None:
    problems = load_rules(DATA / "rules-broken")
    assert isinstance(problems, list)
    assert [p.path.name for p in problems] == ["first.yaml"] + ["second.yaml"] * 5  # file order
    found = {(p.path.name, p.loc) for p in problems}
    assert found == {  # each file's own `cuba` is no clash
        ("first.yaml", ("terms", "loop-a")),
        ("second.yaml", ("rules", 1, "id")),
        ("second.yaml", ("rules", 2, "match", "all", 0)),
        ("second.yaml", ("rules", 2, "match", "all", 1)),
        ("second.yaml", ("rules", 3, "match")),
        ("second.yaml", ("rules", 4, "match")),
    }


def test_term_sets_are_shared_across_files() -> None:
    matcher = load_rules(DATA / "rules-ok")
    assert isinstance(matcher, Matcher)
    assert [r.id for r in matcher.rules] == ["russia-cuba-talks"]
    (match,) = matcher.match(Item(title="Переговоры России и Кубы"))
    assert [h.text for h in match.hits] == ["Переговоры", "России", "Кубы"]


def test_no_files_compile_to_a_matcher_without_rules() -> None:
    matcher = compile_rules([])
    assert isinstance(matcher, Matcher)
    assert matcher.rules == ()
    assert matcher.match(Item(title="Cuba")) == []
