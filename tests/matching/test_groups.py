"""Boolean groups, proximity, fields and feed scope: table-driven over small rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.matching import compile_rules
from monitor.models import Item
from tests.matching.support import hits, matcher_for, matches, rule_file

TERMS = {
    "russia": ["Russia", "Russian", "Moscow", "Kremlin", "Rusia", "Росси(я|и|ю|ей)"],
    "cuba": ["Cuba", "Cuban", "Havana", "La Habana", "Куб(а|ы|е|у|ой)"],
    "talks": ["talks", "met", "meets", "signed", "переговор*"],
    "sport": ["baseball", "boxing"],
    "actors": ["$russia", "$cuba"],  # a set may include other sets
}

GROUP_CASES: list[tuple[str, Any, str, bool]] = [
    ("all-yes", {"all": ["$russia", "$cuba"]}, "Russia and Cuba sign deal", True),
    ("all-no", {"all": ["$russia", "$cuba"]}, "Russia signs deal", False),
    ("any-first", {"any": ["$russia", "$cuba"]}, "Kremlin says", True),
    ("any-second", {"any": ["$russia", "$cuba"]}, "Havana says", True),
    ("any-none", {"any": ["$russia", "$cuba"]}, "Beijing says", False),
    ("not-excludes", {"all": ["$cuba"], "not": ["$sport"]}, "Cuban baseball star", False),
    ("not-passes", {"all": ["$cuba"], "not": ["$sport"]}, "Cuban minister", True),
    (
        "nested",
        {"all": ["$russia", {"any": ["$cuba", "Venezuela"]}]},
        "Russia, Venezuela talks",
        True,
    ),
    (
        "nested-no",
        {"all": ["$russia", {"any": ["$cuba", "Venezuela"]}]},
        "Russia, Chile talks",
        False,
    ),
    (
        "nested-not",
        {"all": ["$russia", {"not": [{"all": ["$sport", "$cuba"]}]}]},
        "Russia boxing",
        True,
    ),
    (
        "nested-not-both",
        {"all": ["$russia", {"not": [{"all": ["$sport", "$cuba"]}]}]},
        "Russia beats Cuba at boxing",
        False,
    ),
    ("set-of-sets", "$actors", "Moscow says", True),
    ("set-of-sets-2", "$actors", "La Habana dice", True),
    ("single-term", "Kremlin", "Kremlin says", True),
    (
        "several-keys",
        {"all": ["$russia"], "any": ["$cuba"], "not": ["$sport"]},
        "Russia Cuba",
        True,
    ),
    (
        "several-keys-not",
        {"all": ["$russia"], "any": ["$cuba"], "not": ["$sport"]},
        "Russia Cuba baseball",
        False,
    ),
    ("cyrillic", {"all": ["$russia", "$cuba", "$talks"]}, "Переговоры России и Кубы", True),
]


@pytest.mark.parametrize(
    ("match", "title", "expected"), [c[1:] for c in GROUP_CASES], ids=[c[0] for c in GROUP_CASES]
)
def test_group(match: Any, title: str, expected: bool) -> None:
    assert matches(matcher_for(match, TERMS), title) is expected


NEAR = {"near": ["$russia", "$cuba"], "within": 3}
NEAR_CASES: list[tuple[str, Any, str, bool]] = [
    ("adjacent", NEAR, "Russia Cuba talks", True),
    ("three-between", NEAR, "Russia holds talks with Cuba", True),
    ("four-between", NEAR, "Russia holds long talks with Cuba", False),
    ("reverse-order", NEAR, "Havana hosts a Russian frigate", True),
    # the point of proximity: a contact names the two close together, a list or an article
    # that mentions both in different places does not
    (
        "list",
        {"near": ["$russia", "$cuba"], "within": 2},
        "Bulgaria and Albania beat Russia for the seats, while China and Cuba won",
        False,
    ),
    (
        "minister-met",
        {"near": ["$russia", "$talks", "$cuba"], "within": 4},
        "Russian minister met Cuban counterpart",
        True,
    ),
    (
        "three-way-far",
        {"near": ["$russia", "$talks", "$cuba"], "within": 2},
        "Russian minister met in Paris the Cuban counterpart",
        False,
    ),
    ("default-within-8", {"near": ["$russia", "$cuba"]}, "Russia " + "x " * 8 + "Cuba", True),
    ("default-within-9", {"near": ["$russia", "$cuba"]}, "Russia " + "x " * 9 + "Cuba", False),
    ("within-0", {"near": ["La", "Habana"], "within": 0}, "La Habana", True),
    (
        "near-any",
        {"near": [{"any": ["Lavrov", "Putin"]}, "$cuba"], "within": 1},
        "Putin in Havana",
        True,
    ),
]


@pytest.mark.parametrize(
    ("match", "title", "expected"), [c[1:] for c in NEAR_CASES], ids=[c[0] for c in NEAR_CASES]
)
def test_near(match: Any, title: str, expected: bool) -> None:
    assert matches(matcher_for(match, TERMS), title) is expected


def test_near_needs_the_same_field() -> None:
    matcher = matcher_for(NEAR, TERMS)
    assert not matches(matcher, "Russia says", summary="Cuba says")
    assert matches(matcher, "Russia says", summary="Russia and Cuba")


def test_near_reports_the_closest_pair() -> None:
    matcher = matcher_for(NEAR, TERMS)
    assert hits(matcher, "Cuba, and then later Russia and Cuba") == ["Russia", "Cuba"]


def test_any_reports_every_branch_that_held() -> None:
    matcher = matcher_for({"any": ["$russia", "$cuba"]}, TERMS)
    assert hits(matcher, "Russia and Cuba") == ["Russia", "Cuba"]


def test_hits_follow_field_order_then_offsets() -> None:
    matcher = matcher_for({"all": ["$russia", "$cuba"]}, TERMS)
    (match,) = matcher.match(Item(title="Havana", summary="Moscow and Cuba"))
    assert [(h.field, h.text) for h in match.hits] == [
        ("title", "Havana"),
        ("summary", "Moscow"),
        ("summary", "Cuba"),
    ]


@pytest.mark.parametrize(
    ("fields", "item", "expected"),
    [
        (["title"], Item(title="Cuba"), True),
        (["title"], Item(title="x", summary="Cuba"), False),
        (["summary"], Item(title="x", summary="Cuba"), True),
        (["content"], Item(title="x", content="Cuba"), True),
        (["tags"], Item(title="x", tags=("World", "Cuba")), True),
        (["tags"], Item(title="Cuba"), False),
        (["title", "summary", "content", "tags"], Item(title="x", content="Cuba"), True),
    ],
)
def test_fields(fields: list[str], item: Item, expected: bool) -> None:
    matcher = matcher_for("$cuba", TERMS, fields=fields)
    assert bool(matcher.match(item)) is expected


@pytest.mark.parametrize(
    ("feeds", "feed_url", "expected"),
    [
        ([], "https://a.example/rss", True),
        (["https://a.example/rss"], "https://a.example/rss", True),
        (["https://a.example/rss"], "https://b.example/rss", False),
        (["https://*.example/*"], "https://news.example/world.xml", True),
        (["https://*.example/*"], "https://news.example.org/world.xml", False),
        (["https://a.example/rss"], "", True),  # a dry run has no feed: every rule applies
    ],
)
def test_feed_scope(feeds: list[str], feed_url: str, expected: bool) -> None:
    matcher = matcher_for("$cuba", TERMS, feeds=feeds)
    assert bool(matcher.match(Item(title="Cuba", feed_url=feed_url))) is expected
    assert matcher.rules[0].feeds == tuple(feeds)


def test_rule_info_and_match_carry_id_title_severity() -> None:
    matcher = matcher_for("$cuba", TERMS, severity="critical")
    (info,) = matcher.rules
    assert (info.id, info.title, info.severity, info.feeds) == ("r", "R", "critical", ())
    (match,) = matcher.match(Item(title="Cuba"))
    assert (match.rule_id, match.rule_title, match.severity) == ("r", "R", "critical")


def test_default_severity_is_medium() -> None:
    assert matcher_for("$cuba", TERMS).rules[0].severity == "medium"


def test_one_match_per_rule_in_rule_order() -> None:
    data = {
        "terms": TERMS,
        "rules": [
            {"id": "b-rule", "title": "B", "match": "$cuba"},
            {"id": "a-rule", "title": "A", "match": {"all": ["$cuba", "$russia"]}},
            {"id": "c-rule", "title": "C", "match": "Venezuela"},
        ],
    }
    matcher = compile_rules([(Path("r.yaml"), rule_file(data))])
    assert not isinstance(matcher, list)
    found = matcher.match(Item(title="Russia and Cuba, Cuba again"))
    assert [m.rule_id for m in found] == ["b-rule", "a-rule"]


def test_matching_is_deterministic() -> None:
    matcher = matcher_for({"all": ["$russia", "$cuba"]}, TERMS)
    item = Item(title="Kremlin hosts Cuban delegation", summary="Russia and Cuba, Moscow, Havana")
    first = matcher.match(item)
    assert all(matcher.match(item) == first for _ in range(5))


def test_an_item_with_no_text_matches_nothing() -> None:
    assert matcher_for("$cuba", TERMS).match(Item(title="")) == []


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Cuban-American chef", []),  # the fuzzy `Cubans` is cancelled too, not only `Cuban`
        ("Cubans and Cuban Americans", ["Cubans"]),
        ("Cuban officials", ["Cuban"]),
    ],
)
def test_unless_in_a_set_cancels_every_term_of_the_set(title: str, expected: list[str]) -> None:
    terms = {"cuba": [{"term": "Cuban", "unless": ["Cuban American"]}, "Cubans"]}
    assert hits(matcher_for("$cuba", terms), title) == expected


ORDERED = {"near": ["sanction*", "$cuba"], "within": 2, "ordered": True}


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("new sanctions on Cuba", True),
        ("sanctions against the Cuban military", True),
        ("Cuba condemns sanctions", False),  # the right words, the wrong order
        ("sanctions on Venezuela's oil and Cuba", False),  # too far
    ],
)
def test_ordered_near(title: str, expected: bool) -> None:
    assert matches(matcher_for(ORDERED, TERMS), title) is expected


def test_unordered_near_takes_either_order() -> None:
    assert matches(matcher_for({**ORDERED, "ordered": False}, TERMS), "Cuba condemns sanctions")


def test_near_prefers_exact_hits_among_equally_close_ones() -> None:
    terms = {"russia": ["Russia", "Russian"], "cuba": ["Cuba"]}
    matcher = matcher_for({"near": ["$russia", "$cuba"], "within": 3}, terms)
    (match,) = matcher.match(Item(title="Russian businessmen in Cuba"))
    assert [(h.term, h.score) for h in match.hits] == [("Russian", 100.0), ("Cuba", 100.0)]


def test_one_word_cannot_stand_for_two_operands_of_near() -> None:
    terms = {"states": ["Cuba", "Venezuela"], "cuba": ["Cuba"]}
    matcher = matcher_for({"near": ["$cuba", "$states"], "within": 1}, terms)
    assert not matches(matcher, "Cuba suffers blackout")
    assert matches(matcher, "Cuba and Venezuela")
