"""Each kind of term, table-driven: (term as a rule writes it, item text, the hit texts)."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.models import Item
from tests.matching.support import hits, matcher_for

CASES: list[tuple[str, Any, str, list[str]]] = [
    # id, term, title, expected hit texts ([] = no match)
    # --- plain words: case- and accent-insensitive, whole words -------------------------
    ("plain", "Havana", "Talks in Havana today", ["Havana"]),
    ("plain-case", "Havana", "TALKS IN HAVANA", ["HAVANA"]),
    ("plain-accent-in-text", "Alvarez", "Álvarez Casas received him", ["Álvarez"]),
    ("plain-accent-in-term", "Álvarez", "Alvarez Casas received him", ["Alvarez"]),
    ("plain-whole-word", "Cuba", "Cubanacán hotels", []),
    ("plain-possessive", "Cuba", "Cuba's grid fails", ["Cuba"]),
    ("plain-html-entity", "Díaz", "D&iacute;az-Canel spoke", ["D&iacute;az"]),
    # --- phrases: consecutive words, punctuation between them ignored ------------------
    ("phrase", "La Habana", "llega a La Habana", ["La Habana"]),
    ("phrase-broken", "La Habana", "la ciudad de Habana", []),
    ("phrase-hyphen", "Díaz-Canel", "Diaz Canel met Putin", ["Diaz Canel"]),
    ("phrase-dots", "U.S.", "The U.S. said", ["U.S"]),
    ("phrase-state-dept", "State Department", "the State Department said", ["State Department"]),
    # --- fuzzy by default for long words: typos and transliteration variants ----------
    ("fuzzy-kolokoltsov", "Kolokoltsev", "Kolokoltsov arrives", ["Kolokoltsov"]),
    ("fuzzy-kolokolcev", "Kolokoltsev", "Kolokolcev arrives", ["Kolokolcev"]),
    ("fuzzy-havanna", "Havana", "embassy in Havanna said", ["Havanna"]),
    ("fuzzy-goverment", "government", "the Cuban goverment", ["goverment"]),
    ("fuzzy-cyrillic-typo", "Гавана", "посол в Гаванне", []),  # inflected + typo: list the forms
    ("fuzzy-cyrillic-typo-form", "Гаване", "посол в Гаванне", ["Гаванне"]),
    ("fuzzy-far", "Kolokoltsev", "Kolobok arrives", []),
    # --- short words are exact: the false friends of Cuba, Putin, Kuba ------------------
    ("exact-short-cubs", "Cuba", "Cubs rout Cardinals", []),
    ("exact-short-cuban", "Cuba", "Cuban cigars", []),
    ("exact-short-putin", "Putin", "La Poutine Week returns", []),
    ("exact-short-kuban", "Куба", "На Кубани ливни", []),
    ("exact-short-kubok", "Куба", "выиграл Кубок России", []),
    # --- first letter must agree, so prefixed look-alikes do not pass -----------------
    ("friend-prussia", "Russia", "King of Prussia Mall", []),
    ("friend-prussian", "Russian", "Prussian Cultural Heritage", []),
    ("friend-prussia-ru", "Россия", "Восточной Пруссии", []),
    ("friend-prusia-es", "Rusia", "el legado de Prusia", []),
    ("friend-poutine", "Putin", "poutine with gravy", []),
    ("friend-havanese", "Havana", "a Havanese puppy", []),
    # --- explicit options -------------------------------------------------------------
    ("fuzzy-off", {"term": "Havana", "fuzzy": False}, "in Havanna", []),
    ("fuzzy-on-short", {"term": "Cuba", "fuzzy": True}, "Cubs", []),  # 75 < default 90
    ("threshold-low", {"term": "Cuba", "threshold": 70}, "Cubs", ["Cubs"]),
    ("threshold-high", {"term": "Kolokoltsev", "threshold": 95}, "Kolokolcev", []),
    ("threshold-100", {"term": "Havana", "threshold": 100}, "Havanna", []),
    ("case-sensitive-yes", {"term": "US", "case_sensitive": True}, "US sanctions", ["US"]),
    ("case-sensitive-no", {"term": "US", "case_sensitive": True}, "told us why", []),
    ("case-insensitive", "havana", "Talks in HAVANA", ["HAVANA"]),
    # a capitalized term is a name: it matches capitalized words only
    ("name-lower-case", "Havana", "told havana why", []),
    ("name-guard-us", "US", "told us why", []),
    ("name-guard-us-upper", "US", "US sanctions", ["US"]),
    (
        "whole-word-off",
        {"term": "terror", "whole_word": False},
        "antiterrorist law",
        ["antiterrorist"],
    ),
    ("translit-off", {"term": "Kolokoltsev", "translit": False}, "Колокольцев прибыл", []),
    # --- prefixes for inflected forms -------------------------------------------------
    ("prefix-star", "sanction*", "new sanctions on", ["sanctions"]),
    ("prefix-star-ru", "российск*", "российского посольства", ["российского"]),
    ("prefix-option", {"term": "Kreml", "prefix": True}, "Kremlin says", ["Kremlin"]),
    ("prefix-whole-word", "sanction*", "unsanctioned", []),
    ("prefix-in-phrase", "спонсор* терроризма", "спонсоров терроризма", ["спонсоров терроризма"]),
    ("prefix-last-word", "Gazprom*", "Gazpromneft deal", ["Gazpromneft"]),
    # --- alternatives (a|b) -----------------------------------------------------------
    ("alt", "Куб(а|ы|е|у|ой)", "переговоры с Кубой", ["Кубой"]),
    ("alt-other-form", "Куб(а|ы|е|у|ой)", "поставки Кубе", ["Кубе"]),
    ("alt-not-other-word", "Куб(а|ы|е|у|ой)", "жители Кубани", []),
    ("alt-empty-choice", "Путин(|а|у|ым)", "встреча с Путиным", ["Путиным"]),
    (
        "alt-two-groups",
        "Адмирал(|а) Горшков(|а)",
        "фрегата Адмирала Горшкова",
        ["Адмирала Горшкова"],
    ),
    ("alt-es", "rus(o|a|os|as)", "especialistas rusos", ["rusos"]),
    # --- transliteration: Latin terms reach Cyrillic text and back --------------------
    ("translit-ru-inflected", "Kolokoltsev", "с Колокольцевым", ["Колокольцевым"]),
    ("translit-ru", "Lavrov", "Лавров прибыл", ["Лавров"]),
    ("translit-to-latin", "Путин", "Putin said", ["Putin"]),
    ("translit-shoigu", "Shoigu", "Шойгу встретился", ["Шойгу"]),
    ("translit-no-prussia", "Russia", "Пруссия", []),
    # --- unless: a hit inside one of these phrases does not count ---------------------
    ("unless-idaho", {"term": "Moscow", "unless": ["Moscow Idaho"]}, "Moscow, Idaho police", []),
    (
        "unless-other-moscow",
        {"term": "Moscow", "unless": ["Moscow Idaho"]},
        "Moscow and Idaho",
        ["Moscow"],
    ),
    (
        "unless-kremlin",
        {"term": "Moscow", "unless": ["Moscow Idaho"]},
        "talks in Moscow",
        ["Moscow"],
    ),
    (
        "unless-illinois",
        {"term": "Havana", "unless": ["Havana Illinois"]},
        "Havana, Illinois, grant",
        [],
    ),
    ("unless-little", {"term": "Havana", "unless": ["Little Havana"]}, "a Little Havana cafe", []),
    (
        "unless-syndrome",
        {"term": "Havana", "unless": ["Havana syndrome"]},
        "'Havana syndrome' probe",
        [],
    ),
    (
        "unless-second-hit",
        {"term": "Havana", "unless": ["Little Havana"]},
        "Little Havana and Havana",
        ["Havana"],
    ),
    ("unless-gooding", {"term": "Cuba", "unless": ["Cuba Gooding"]}, "Cuba Gooding Jr. pleads", []),
]


@pytest.mark.parametrize(
    ("term", "title", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_term(term: Any, title: str, expected: list[str]) -> None:
    assert hits(matcher_for(term), title) == expected


@pytest.mark.parametrize(
    ("term", "title"),
    [
        ("Kolokoltsev", "Kolokoltsev"),
        ({"term": "US", "case_sensitive": True}, "US"),
        ("sanction*", "sanctions"),
        ("Куб(а|ы)", "Кубы"),
    ],
)
def test_exact_and_prefix_hits_score_100(term: Any, title: str) -> None:
    (match,) = matcher_for(term).match(Item(title=title))
    assert match.score == 100.0
    assert all(hit.score == 100.0 for hit in match.hits)


@pytest.mark.parametrize(
    ("title", "low", "high"),
    [("Kolokoltsov", 90.0, 91.0), ("Kolokolcev", 85.0, 86.0), ("Havanna", 92.0, 93.0)],
)
def test_fuzzy_hits_carry_their_ratio(title: str, low: float, high: float) -> None:
    matcher = matcher_for({"any": ["Kolokoltsev", "Havana"]})
    (match,) = matcher.match(Item(title=title))
    (hit,) = match.hits
    assert low <= hit.score <= high
