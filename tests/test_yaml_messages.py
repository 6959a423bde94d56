"""YAML syntax errors in our words, with the offending line and a caret (yamlpos), and the
valid parts of a rule file that is not (matching/partial.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config.yamlpos import load_positioned
from monitor.matching.partial import valid_parts


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("terms:\n  cuba:\n    - Cuba\n   - Havana\n", (4, 4), "not indented like the lines"),
        ("rules:\n  - id: a\n    title: Cuba: the island\n", (3, 16), "quote a value that"),
        ("terms:\n\t- a\n", (2, 1), "a tab: YAML indents with spaces only"),
        ("terms:\n  r: [Russia, Moscow\n  c: [Cuba]\n", (3, 4), "it opens on line 2"),
        ('terms:\n  r: ["Russia]\n', (2, 7), "a quote that is never closed"),
        ("terms:\n  r:\n    - *ba\n", (3, 7), "as an alias: put the value in quotes"),
        ("a: @b\n", (1, 4), "'@' cannot start a plain value"),
        ("a: 1\n---\nb: 2\n", (2, 1), "a second document"),
        ("a: |x\n", (1, 5), "not valid YAML here (expected chomping"),
    ],
)
def test_syntax_errors_say_what_to_change_and_show_where(
    tmp_path: Path, text: str, where: tuple[int, int], words: str
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    ((position, message),) = load_positioned(path, {}).problems
    assert (position.line, position.column) == where
    first, shown, caret = message.splitlines()
    assert first.startswith("invalid YAML: ")
    assert words in first
    line = text.splitlines()[where[0] - 1].replace("\t", " ")
    assert shown == f"    {where[0]} | {line}"
    assert caret == "    " + " " * len(str(where[0])) + " | " + " " * (where[1] - 1) + "^"


def test_a_rule_file_keeps_its_valid_sets_and_rules_in_their_places() -> None:
    data = {
        "terms": {"good": ["Cuba"], "bad": [{"term": "x", "fuzzy": "maybe"}]},
        "rules": [
            {"id": "Bad_Id", "title": "T", "match": "$good"},
            {"id": "fine", "title": "Fine", "match": "$good"},
            {"id": "no-title", "match": "x"},
        ],
    }
    source = valid_parts(Path("r.yaml"), data)
    assert source is not None
    assert list(source.file.terms) == ["good"]
    assert source.broken_sets == frozenset({"bad"})
    assert [(i, r.id) for i, r in source.indexed_rules()] == [(1, "fine")]
    assert source.broken_rule_ids == ("Bad_Id", "no-title")


@pytest.mark.parametrize("data", [["a list"], {"rules": "not a list"}, {"colour": "red"}])
def test_a_file_without_a_valid_frame_has_no_parts(data: object) -> None:
    assert valid_parts(Path("r.yaml"), data) is None
