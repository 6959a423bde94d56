"""The shipped rules in config/rules: they compile, they avoid the classic false friends, and they
score above a measured floor on the labeled sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.eval_rules import evaluate, load_matcher, read_rows
from monitor.matching import Matcher
from monitor.models import Item
from tests.matching.support import DATA, REPO, SHARED_DEV

RULES = REPO / "config" / "rules"
SEEDED = ("russia-cuba-contacts", "us-pressure-on-cuba")
MORE = ("russia-venezuela-contacts", "russia-nicaragua-contacts", "cuba-security-services")
# Measured with bench/eval_rules.py (docs/rules.md has the figures): 1.000 on dev, 0.933 to
# 1.000 on the sets in tests/data/matching (rules corrected for the patterns each exposed, never
# for single items); the floors leave room for edits that trade one item for generality.
DEV_FLOOR = 0.95
HOLDOUT_FLOOR = 0.90


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return load_matcher(RULES)


def test_seeded_rules_are_there(matcher: Matcher) -> None:
    ids = [rule.id for rule in matcher.rules]
    assert set(SEEDED) | set(MORE) <= set(ids)
    assert len(ids) == len(set(ids))


def _lines(name: str) -> list[dict[str, object]]:
    path = DATA / name
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("row", _lines("false-friends.jsonl"), ids=lambda r: str(r["title"])[:40])
def test_false_friends_match_no_seeded_rule(matcher: Matcher, row: dict[str, str]) -> None:
    item = Item(title=row["title"], summary=row["summary"])
    fired = [m.rule_id for m in matcher.match(item) if m.rule_id in SEEDED]
    assert fired == []


@pytest.mark.parametrize(
    ("title", "rule_id"),
    [
        ("Kolokoltsev received in Havana by Cuban counterpart Álvarez Casas", SEEDED[0]),
        ("Kolokolcev se reúne en La Habana con Alvarez Casas", SEEDED[0]),
        ("Колокольцев провёл переговоры в Гаване с Альваресом Касасом", SEEDED[0]),
        ("Russian embassy in Havanna announces wheat donation", SEEDED[0]),
        ("Treasury sanctions Cuban officials over crackdown", SEEDED[1]),
        ("EEUU sanciona a la Policía Nacional Revolucionaria de Cuba", SEEDED[1]),
        ("США ввели санкции против кубинских чиновников", SEEDED[1]),
    ],
)
def test_seed_events_match(matcher: Matcher, title: str, rule_id: str) -> None:
    assert rule_id in [m.rule_id for m in matcher.match(Item(title=title))]


def _worst_f1(matcher: Matcher, path: Path, rules: tuple[str, ...] = SEEDED) -> float:
    per_rule, _, _ = evaluate(matcher, read_rows(path))
    assert set(rules) <= set(per_rule)
    return min(per_rule[rule_id].scores()[2] for rule_id in rules)


@pytest.mark.parametrize(
    ("name", "rules"),
    [
        ("holdout.jsonl", SEEDED),
        ("holdout2.jsonl", SEEDED),
        ("holdout3.jsonl", SEEDED),
        ("more-rules.jsonl", MORE),
    ],
)
def test_held_out_f1_floor(matcher: Matcher, name: str, rules: tuple[str, ...]) -> None:
    assert _worst_f1(matcher, DATA / name, rules) >= HOLDOUT_FLOOR


@pytest.mark.skipif(
    not SHARED_DEV.is_file(), reason=f"the labeled dev set is not here: {SHARED_DEV} is absent"
)
def test_dev_f1_floor(matcher: Matcher) -> None:
    assert _worst_f1(matcher, SHARED_DEV) >= DEV_FLOOR


# Worst per-rule F1 of the hand-inflected rules before issue 14 (every Russian case ending
# listed by hand, no inflection): the rules written in dictionary forms must not score lower.
BEFORE_DICTIONARY_FORMS = [
    ("holdout.jsonl", SEEDED, 1.0),
    ("holdout2.jsonl", SEEDED, 0.933),
    ("holdout3.jsonl", SEEDED, 0.963),
    ("more-rules.jsonl", MORE, 1.0),
]


@pytest.mark.parametrize(("name", "rules", "before"), BEFORE_DICTIONARY_FORMS)
def test_dictionary_forms_score_no_lower_than_hand_inflection(
    matcher: Matcher, name: str, rules: tuple[str, ...], before: float
) -> None:
    assert round(_worst_f1(matcher, DATA / name, rules), 3) >= before


@pytest.mark.skipif(not SHARED_DEV.is_file(), reason=f"{SHARED_DEV} is absent")
def test_dictionary_forms_score_no_lower_than_hand_inflection_on_dev(matcher: Matcher) -> None:
    assert _worst_f1(matcher, SHARED_DEV) >= 1.0
