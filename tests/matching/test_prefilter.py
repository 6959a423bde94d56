"""The quick first look (rules that cannot match are skipped from the item's words alone) never
changes a result: over every labeled item, `match` equals evaluating every rule in full."""

from __future__ import annotations

import json

import pytest

from bench.eval_rules import load_matcher, to_item
from monitor.matching import Matcher
from monitor.matching.matcher import _Evaluation
from monitor.models import Item, Match
from tests.matching.support import DATA, REPO, SHARED_DEV, matcher_for


def _brute_force(matcher: Matcher, item: Item) -> list[str]:
    # reaches into the matcher on purpose: this is the slow path the prefilter must agree with
    found = matcher.occurrences(item)
    return [
        rule.info.id
        for rule in matcher._rules
        if _Evaluation(found, rule.fields).run(rule.root) is not None
    ]


def _items() -> list[Item]:
    paths = sorted(DATA.glob("*.jsonl")) + ([SHARED_DEV] if SHARED_DEV.is_file() else [])
    rows = [json.loads(line) for p in paths for line in p.read_text("utf-8").splitlines()]
    return [to_item(row) if "labels" in row else Item(**row) for row in rows if row]


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return load_matcher(REPO / "config" / "rules")


def test_prefilter_agrees_with_full_evaluation(matcher: Matcher) -> None:
    items = _items()
    assert len(items) > 100
    for item in items:
        fast: list[Match] = matcher.match(item)
        assert [m.rule_id for m in fast] == _brute_force(matcher, item), item.title


def test_case_sensitive_terms_pass_the_prefilter() -> None:
    matcher = matcher_for({"all": [{"term": "US", "case_sensitive": True}, "Cuba"]})
    assert matcher.match(Item(title="US and Cuba"))
    assert not matcher.match(Item(title="us and Cuba"))
