"""The rule file model: what pydantic refuses (with a loc into the YAML data) and the JSON Schema
editors get."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from monitor.matching import RuleFile
from tests.matching.support import DATA, REPO


def _errors(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        RuleFile.model_validate(data)
    return [(tuple(e["loc"]), e["msg"]) for e in caught.value.errors()]


def _rule(match: Any, **extra: Any) -> dict[str, Any]:
    return {"id": "a-rule", "title": "A", "match": match, **extra}


@pytest.mark.parametrize(
    ("data", "loc", "words"),
    [
        ({"rules": [_rule("x", id="Not_Kebab")]}, ("rules", 0, "id"), "must be kebab-case"),
        ({"rules": [_rule("x", id="trailing-")]}, ("rules", 0, "id"), "lowercase letters, digits"),
        ({"rules": [_rule("x", severity="urgent")]}, ("rules", 0, "severity"), "low"),
        ({"rules": [_rule("x", fields=["body"])]}, ("rules", 0, "fields", 0), "title"),
        ({"rules": [_rule("x", fields=[])]}, ("rules", 0, "fields"), "at least 1"),
        ({"rules": [_rule("x", colour="red")]}, ("rules", 0, "colour"), "Extra inputs"),
        ({"rules": [{"id": "a", "match": "x"}]}, ("rules", 0, "title"), "required"),
        ({"version": 2}, ("version",), "1"),
        ({"terms": {"bad name": ["x"]}}, ("terms",), "'bad name': a term set name starts"),
        ({"terms": {"a": [{"term": "x", "fuzzy": "maybe"}]}}, ("terms", "a", 0, "fuzzy"), "bool"),
        ({"terms": {"a": [{"term": "x", "all": ["y"]}]}}, ("terms", "a", 0, "all"), "Extra"),
        ({"rules": [_rule({"all": ["x", {"term": "y", "threshold": 101}]})]},
         ("rules", 0, "match", "all", 1, "threshold"), "less than or equal to 100"),
        ({"rules": [_rule({"all": ["x", {"term": "y", "threshold": -1}]})]},
         ("rules", 0, "match", "all", 1, "threshold"), "greater than or equal to 0"),
        ({"rules": [_rule({"any": []})]}, ("rules", 0, "match", "any"), "at least 1"),
        ({"rules": [_rule({"all": ["x", {"not": []}]})]},
         ("rules", 0, "match", "all", 1, "not"), "at least 1"),
        ({"rules": [_rule({"near": ["x"]})]}, ("rules", 0, "match", "near"), "at least 2"),
        ({"rules": [_rule({"all": ["x"], "within": 3})]}, ("rules", 0, "match"), "`within`"),
        ({"rules": [_rule({"term": "x", "any": ["y"]})]}, ("rules", 0, "match"), "not both"),
        ({"rules": [_rule({"any": ["y"], "fuzzy": True})]}, ("rules", 0, "match"), "term option"),
        ({"rules": [_rule({})]}, ("rules", 0, "match"), "needs `term`"),
        ({"rules": [_rule({"al": ["x"]})]}, ("rules", 0, "match", "al"), "Extra"),
        ({"rules": [_rule(["x", "y"])]}, ("rules", 0, "match"), "valid dictionary"),
        ({"rules": [_rule({"term": ""})]}, ("rules", 0, "match", "term"), "at least 1"),
    ],
)  # fmt: skip
def test_validation_error_locs(
    data: dict[str, Any], loc: tuple[str | int, ...], words: str
) -> None:
    errors = _errors(data)
    assert any(e_loc == loc and words in msg for e_loc, msg in errors), errors


def test_plain_strings_are_terms_with_defaults() -> None:
    rule_file = RuleFile.model_validate(
        {"terms": {"cuba": ["Cuba", {"term": "Havana", "unless": ["Little Havana"]}]}}
    )
    plain, detailed = rule_file.terms["cuba"]
    assert (plain.term, plain.fuzzy, plain.prefix, plain.whole_word) == ("Cuba", None, False, True)
    assert detailed.unless == ["Little Havana"]


def test_json_schema_documents_every_property() -> None:
    schema = RuleFile.model_json_schema()
    assert schema["title"] == "monitor rule file"
    for name, definition in schema["$defs"].items():
        assert definition.get("description"), name
        for prop, spec in definition["properties"].items():
            assert spec.get("title"), (name, prop)
            assert spec.get("description"), (name, prop)
    assert set(schema["$defs"]) == {"Rule", "TermSpec", "Group", "Examples", "ExampleItem"}
    assert set(schema["$defs"]["Group"]["properties"]) == {
        "all",
        "any",
        "not",
        "near",
        "within",
        "ordered",
    }


@pytest.mark.parametrize(
    "path",
    sorted((REPO / "config" / "rules").glob("*.yaml")) + sorted(DATA.glob("rules-*/*.yaml")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_shipped_and_fixture_rule_files_validate_against_the_json_schema(path: Any) -> None:
    document = yaml.safe_load(path.read_text("utf-8"))
    jsonschema.validate(document, RuleFile.model_json_schema())
    RuleFile.model_validate(document)


@pytest.mark.parametrize(
    "document",
    [
        {"rules": [{"id": "x", "title": "X", "match": {"term": "a", "all": ["b"]}}]},
        {"rules": [{"id": "x", "title": "X", "match": {"any": []}}]},
        {"rules": [{"id": "x", "title": "X", "match": {"near": ["a"], "within": 3}}]},
        {"rules": [{"id": "x", "title": "X", "match": {"term": "a", "threshold": 101}}]},
        {"terms": {"a": [{"term": "x", "near": ["b", "c"]}]}},
    ],
)
def test_the_json_schema_refuses_what_editors_should_flag(document: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, RuleFile.model_json_schema())
