"""docs/rules.md: its first example compiles and does what the text around it says."""

from __future__ import annotations

import re

import pytest
import yaml

from monitor.matching import Matcher, RuleFile, compile_rules
from monitor.models import Item
from tests.matching.support import REPO

DOC = REPO / "docs" / "rules.md"


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    first = re.search(r"```yaml\n(version: 1\n.*?)```", DOC.read_text("utf-8"), re.DOTALL)
    assert first is not None
    compiled = compile_rules([(DOC, RuleFile.model_validate(yaml.safe_load(first.group(1))))])
    assert isinstance(compiled, Matcher), compiled
    return compiled


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Russian minister met Cuban counterpart in Havana", True),
        ("Переговоры России и Кубы в Москве", True),
        ("Russia and Cuba: tourists return", False),
        ("Cubs beat Russia's baseball team", False),
        ("Russia holds talks with China, then with India and, later in the week, Cuba", False),
    ],
)
def test_first_example(matcher: Matcher, title: str, expected: bool) -> None:
    assert bool(matcher.match(Item(title=title))) is expected
