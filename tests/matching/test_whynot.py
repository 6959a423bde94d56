"""Why a rule did not match: the failed clause, the absent terms and the near misses with the
reason the lexicon refused each one. Table-driven: each case is one way a rule editor is
surprised."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.matching import Matcher
from monitor.matching.explain import explain_miss
from monitor.matching.whynot import Clause, Verdict, why_not
from monitor.models import Item
from tests.matching.support import REPO, load_rules, matcher_for

# (rule condition, item title, the failing clause's path, words of its reason,
#  (near-miss word, term, words of its refusal) or None)
CASES: list[tuple[Any, str, str, str, tuple[str, str, str] | None]] = [
    ({"all": ["Kolokoltsev", "talks"]}, "Kolokolzoff talks", "all[0]", "does not occur",
     ("Kolokolzoff", "Kolokoltsev", "below the threshold 85")),
    ({"all": ["Havana", "talks"]}, "Javana talks", "all[0]", "does not occur",
     ("Javana", "Havana", "first letter differs")),
    ({"all": ["Lavrov", "talks"]}, "Травров talks", "all[0]", "does not occur",
     ("Травров", "Lavrov", "across scripts the first 3 letters differ")),
    ({"all": [{"term": "Havana", "unless": ["Havana Illinois"]}, "talks"]},
     "Havana Illinois talks", "all[0]", 'vetoed by `unless`: "Havana" (title)',
     ("Havana", "Havana", "vetoed by the term's `unless`")),
    ({"all": ["Cuba"], "not": ["baseball"]}, "Cuba baseball", "all[1]",
     'vetoed by baseball: "baseball" (title)', None),
    ({"near": ["Russia", "Cuba"], "within": 2}, "Russia one two three four five Cuba", "match",
     "outside `within`: the closest are 5 words apart, within is 2", None),
    ({"near": ["Russia", "Cuba"], "ordered": True}, "Cuba and Russia", "match",
     "not in the order written", None),
    ({"all": ["meet", "Cuba"]}, "Cuba meat", "all[0]", "does not occur",
     ("meat", "meet", "not a form of the dictionary word `meet`")),
    ({"all": ["Rubio", "Cuba"]}, "Cuba rubio", "all[0]", "does not occur",
     ("rubio", "Rubio", "a name: matches capitalized words only")),
    ({"all": ["переговор*", "Cuba"]}, "Cuba перегаворы", "all[0]", "does not occur",
     ("перегаворы", "переговор*", "does not start with `переговор`")),
    ({"all": ["La Habana", "talks"]}, "Habana talks", "all[0]", "does not occur",
     ("Habana", "La Habana", "the rest of the phrase does not follow")),
    ({"any": ["Cuba", "Havana"]}, "Madrid", "match", "no branch holds", None),
]  # fmt: skip


def _verdict(matcher: Matcher, item: Item) -> Verdict:
    return why_not(matcher, item, matcher.compiled_rules[0])


def _failed(verdict: Verdict, path: str) -> Clause:
    (clause,) = [c for c in verdict.clauses if c.path == path]
    assert not clause.holds
    return clause


@pytest.mark.parametrize(("match", "title", "path", "reason", "miss"), CASES)
def test_a_miss_names_the_failed_clause_and_the_near_miss(
    match: Any, title: str, path: str, reason: str, miss: tuple[str, str, str] | None
) -> None:
    matcher = matcher_for(match)
    item = Item(title=title)
    assert not matcher.match(item)
    verdict = _verdict(matcher, item)
    assert not verdict.matched
    clause = _failed(verdict, path)
    assert reason in clause.reason
    if miss is not None:
        word, term, refusal = miss
        found = [(m.word, m.term) for m in clause.near_misses]
        assert (word, term) in found, clause.near_misses
        (near,) = [m for m in clause.near_misses if (m.word, m.term) == (word, term)]
        assert refusal in near.reason


def test_an_unless_of_a_set_vetoes_its_other_terms() -> None:
    terms = {"cuba": [{"term": "Cuban", "unless": ["Cuban American"]}, "Cubans"]}
    matcher = matcher_for({"all": ["$cuba", "talks"]}, terms)
    item = Item(title="Cubans American talks")
    assert not matcher.match(item)
    clause = _failed(_verdict(matcher, item), "all[0]")
    assert clause.reason == 'vetoed by `unless`: "Cubans" (title)'


def test_a_term_in_a_field_the_rule_does_not_read() -> None:
    matcher = matcher_for({"all": ["Cuba", "talks"]}, fields=["title"])
    verdict = _verdict(matcher, Item(title="Cuba", summary="talks"))
    clause = _failed(verdict, "all[1]")
    assert clause.reason == "occurs only in summary, which the rule does not read"
    assert clause.absent == ("talks",)


def test_a_match_holds_clause_by_clause() -> None:
    matcher = matcher_for({"all": ["Cuba", "talks"]})
    verdict = _verdict(matcher, Item(title="Cuba talks"))
    assert verdict.matched
    assert all(clause.holds for clause in verdict.clauses)


def test_out_of_scope_feed() -> None:
    matcher = matcher_for("Cuba", feeds=["https://a.example/*"])
    item = Item(title="Cuba", feed_url="https://b.example/rss")
    (clause,) = _verdict(matcher, item).clauses
    assert clause.path == "feeds"
    assert "not one of the rule's feeds" in clause.reason


def test_shipped_rules_explain_the_missing_contact_word() -> None:
    """`Путину позвонил Диас-Канель`: both states are named, but *позвонил* (called) is no
    word of `$contact`; the near misses show the closest words and why each was refused."""
    matcher = load_rules(REPO / "config" / "rules")
    assert isinstance(matcher, Matcher)
    item = Item(title="Путину позвонил Диас-Канель")
    (rule,) = [r for r in matcher.compiled_rules if r.info.id == "russia-cuba-contacts"]
    verdict = why_not(matcher, item, rule)
    assert not verdict.matched
    first, contact, exclusions = verdict.clauses
    assert first.holds
    assert first.reason == '"Путину" (title), "Диас-Канель" (title)'
    assert (contact.path, contact.clause, contact.holds) == ("all[1]", "$contact", False)
    assert contact.reason.startswith("no term of the set (")
    assert contact.near_misses
    assert {m.word for m in contact.near_misses} == {"позвонил"}
    assert all(m.score < 100 and m.reason for m in contact.near_misses)
    assert exclusions.holds
    text = explain_miss(verdict)
    assert text.splitlines()[0] == (
        "rule russia-cuba-contacts (Russian–Cuban state contacts): no match"
    )
    assert "fails  all[1] $contact: no term of the set" in text
    assert 'near miss "позвонил" (title) ~ term' in text


def test_near_misses_are_bounded_on_a_huge_item() -> None:
    matcher = matcher_for({"all": ["Havana", "talks"]})
    letters = "bcdefghijklmnopqrstuvwxyz"
    title = " ".join(f"Havan{a}{b}" for a in letters for b in letters) + " talks"
    clause = _failed(_verdict(matcher, Item(title=title)), "all[0]")
    assert 0 < len(clause.near_misses) <= 3
