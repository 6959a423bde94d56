"""Evidence and explanations: every hit's field and offsets point at the item's original text."""

from __future__ import annotations

import json

import pytest

from monitor.matching import Matcher, explain
from monitor.models import Item
from tests.matching.support import DATA, matcher_for

TERMS = {
    "russia": ["Russia", "Russian", "Moscow", "Kolokoltsev", "Rusia", "rus(o|a|os|as)",
               "Росси(я|и|ю|ей)"],
    "cuba": ["Cuba", "Cuban", "Havana", "La Habana", "Díaz-Canel", "Куб(а|ы|е|у|ой)",
             "Гаван(а|ы|е|у|ой)"],
}  # fmt: skip
RULE = {"all": ["$russia", "$cuba"]}


def _items() -> list[Item]:
    rows = [
        json.loads(line) for line in (DATA / "explain-items.jsonl").read_text("utf-8").splitlines()
    ]
    return [
        Item(title=r["title"], summary=r.get("summary", ""), tags=tuple(r.get("tags", ())))
        for r in rows
    ]


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return matcher_for(RULE, TERMS)


@pytest.mark.parametrize("index", range(4))
def test_hit_offsets_slice_the_original_field_text(matcher: Matcher, index: int) -> None:
    item = _items()[index]
    (match,) = matcher.match(item)
    assert match.hits
    for hit in match.hits:
        assert item.field_text(hit.field)[hit.start : hit.end] == hit.text
        assert 0 <= hit.score <= 100


def test_hits_keep_entities_as_the_item_has_them(matcher: Matcher) -> None:
    (match,) = matcher.match(_items()[0])
    summary = [(h.text, h.term) for h in match.hits if h.field == "summary"]
    assert ("D&iacute;az-Canel", "Díaz-Canel") in summary
    assert ("Russia", "Russia") in summary  # "Russia&#8217;s": the entity is not part of it
    assert ("Kolokoltsov", "Kolokoltsev") in summary


def test_hits_in_cyrillic_and_in_tags(matcher: Matcher) -> None:
    (ru,) = matcher.match(_items()[1])
    assert [(h.field, h.text) for h in ru.hits][:3] == [
        ("title", "Колокольцев"),
        ("title", "Кубу"),
        ("summary", "России"),
    ]
    (tagged,) = matcher.match(_items()[3])
    assert ("tags", "Russia") in [(h.field, h.text) for h in tagged.hits]
    assert ("title", "Havanna") in [(h.field, h.text) for h in tagged.hits]


def test_one_hit_per_span_with_the_best_term(matcher: Matcher) -> None:
    (match,) = matcher.match(Item(title="Russian and Cuban"))
    assert [(h.term, h.text, h.score) for h in match.hits] == [
        ("Russian", "Russian", 100.0),  # not also the fuzzy "Russia" on the same word
        ("Cuban", "Cuban", 100.0),
    ]


def test_score_is_the_mean_of_hit_scores(matcher: Matcher) -> None:
    (match,) = matcher.match(Item(title="Kolokolcev in Havana"))
    assert match.score == pytest.approx((85.7 + 100) / 2, abs=0.1)


def test_explain_lists_rule_and_every_hit_with_context(matcher: Matcher) -> None:
    item = _items()[2]
    (match,) = matcher.match(item)
    text = explain(item, match)
    lines = text.splitlines()
    assert lines[0] == f"rule r (R), severity medium, score {match.score:.1f}"
    for hit in match.hits:
        assert f"{hit.field}[{hit.start}:{hit.end}]" in text
        assert f'"{hit.text}" ← term "{hit.term}"' in text
        assert f"[{hit.text}]" in text  # the hit, bracketed in its context
    assert len(lines) == 1 + 2 * len(match.hits)


def test_explain_marks_fuzzy_hits_and_elides_long_context(matcher: Matcher) -> None:
    item = Item(title="x " * 40 + "Kolokolcev met officials in Havana " + "y " * 40)
    (match,) = matcher.match(item)
    text = explain(item, match)
    assert '"Kolokolcev" ← term "Kolokoltsev" (fuzzy, 85.7)' in text
    assert '"Havana" ← term "Havana" (exact, 100.0)' in text
    assert "…x x" in text
    assert "y y…" in text


def test_explain_is_pure(matcher: Matcher) -> None:
    item = _items()[0]
    (match,) = matcher.match(item)
    assert explain(item, match) == explain(item, match)


def test_long_texts_keep_a_few_hits_per_term(matcher: Matcher) -> None:
    item = Item(title="Russia and Cuba", content=" ".join(["Havana and Moscow."] * 20))
    (match,) = matcher.match(item)
    per_term: dict[tuple[str, str], int] = {}
    for hit in match.hits:
        per_term[(hit.term, hit.field)] = per_term.get((hit.term, hit.field), 0) + 1
    assert max(per_term.values()) == 3
    assert ("Russia", "title") in per_term


@pytest.mark.parametrize(
    ("term", "title", "line"),
    [
        ("Куба", "переговоры с Кубой", '"Кубой" ← term "Куба" (inflected form, ru)'),
        ("sanción", "nuevas sanciones", '"sanciones" ← term "sanción" (inflected form, es)'),
        ("Havana", "in Havana", '"Havana" ← term "Havana" (exact, 100.0)'),
        ("Havana", "in Havanna", '"Havanna" ← term "Havana" (fuzzy, 92.3)'),
        ("Lavrov", "Лавров прибыл", '"Лавров" ← term "Lavrov" (transliterated, 100.0)'),
        ("Lavrov", "визит Лаврова", '"Лаврова" ← term "Lavrov" (transliterated, 100.0)'),
        ("sanction*", "sanctions", '"sanctions" ← term "sanction*" (prefix, 100.0)'),
    ],
)
def test_explanations_say_how_a_word_matched(term: str, title: str, line: str) -> None:
    item = Item(title=title)
    (match,) = matcher_for(term).match(item)
    assert explain(item, match).splitlines()[1].split(maxsplit=1)[1] == line
