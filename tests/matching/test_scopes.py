"""Term sets belong to the file that defines them, unless the file is `shared: true`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monitor.matching import Matcher, compile_rules
from monitor.matching.rules import RuleSource, compile_sources
from monitor.models import Item
from tests.matching.support import problems_for, rule_file

CUBA = {"cuba": ["Cuba", "Havana"]}


def _rule(match: Any, rule_id: str = "r") -> dict[str, Any]:
    return {"id": rule_id, "title": rule_id.title(), "match": match}


def _compile(*files: dict[str, Any]) -> Matcher:
    compiled = compile_rules([(Path(f"f{i}.yaml"), rule_file(d)) for i, d in enumerate(files)])
    assert isinstance(compiled, Matcher), compiled
    return compiled


def test_another_files_own_set_is_an_error_naming_both_places() -> None:
    (problem,) = problems_for({"terms": CUBA, "rules": [_rule("$cuba", "a")]},
                              {"rules": [_rule("$cuba", "b")]})  # fmt: skip
    assert (problem.path, problem.loc) == (Path("f1.yaml"), ("rules", 0, "match"))
    assert problem.message.startswith("term set `$cuba` is another file's own: share it")
    assert problem.see == (Path("f0.yaml"), ("terms", "cuba"))


def test_a_shared_files_sets_serve_every_file() -> None:
    matcher = _compile({"shared": True, "terms": CUBA}, {"rules": [_rule("$cuba")]})
    assert [m.rule_id for m in matcher.match(Item(title="Havana"))] == ["r"]
    (info,) = matcher.term_sets
    assert (info.name, info.path, info.shared, info.rules) == (
        "cuba",
        Path("f0.yaml"),
        True,
        ("r",),
    )


def test_two_files_may_each_have_a_set_of_the_same_name() -> None:
    matcher = _compile(
        {"terms": {"talks": ["talk"]}, "rules": [_rule({"all": ["Cuba", "$talks"]}, "a")]},
        {"terms": {"talks": ["visit"]}, "rules": [_rule({"all": ["Cuba", "$talks"]}, "b")]},
    )
    by_file = {(info.path.name, info.name): info.rules for info in matcher.term_sets}
    assert by_file == {("f0.yaml", "talks"): ("a",), ("f1.yaml", "talks"): ("b",)}


def test_an_own_set_may_not_take_a_shared_sets_name() -> None:
    (problem,) = problems_for({"shared": True, "terms": CUBA},
                              {"terms": CUBA, "rules": [_rule("$cuba")]})  # fmt: skip
    assert (problem.path, problem.loc) == (Path("f1.yaml"), ("terms", "cuba"))
    assert "is the name of a shared term set" in problem.message
    assert problem.see == (Path("f0.yaml"), ("terms", "cuba"))


def test_a_shared_file_holds_no_rules() -> None:
    (problem,) = problems_for({"shared": True, "terms": CUBA, "rules": [_rule("$cuba")]})
    assert problem.loc == ("rules", 0)
    assert "holds term sets only" in problem.message


def test_the_catalog_follows_nested_sets_to_their_rules() -> None:
    matcher = _compile(
        {"shared": True, "terms": {**CUBA, "cuba_side": ["$cuba", "Díaz-Canel"]}},
        {"rules": [_rule("$cuba_side", "uses-side")]},
        {"terms": {"unused": ["x"]}, "rules": [_rule("$cuba", "uses-cuba")]},
    )
    infos = {info.name: info for info in matcher.term_sets}
    assert infos["cuba"].rules == ("uses-cuba", "uses-side")  # directly, and through $cuba_side
    assert infos["cuba"].sets == ("$cuba_side",)
    assert infos["cuba_side"].rules == ("uses-side",)
    assert infos["cuba_side"].terms == 3
    assert (infos["unused"].rules, infos["unused"].shared) == ((), False)


def test_a_set_that_did_not_validate_is_no_second_error() -> None:
    source = RuleSource(
        Path("f0.yaml"),
        rule_file({"rules": [_rule("$broken")]}),
        broken_sets=frozenset({"broken"}),
    )
    compiled = compile_sources([source])
    assert compiled.problems == []
    assert compiled.rule_ids == frozenset({"r"})
