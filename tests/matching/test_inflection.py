"""Inflection, table-driven: a term written once in its dictionary form matches the other forms
of its words in English, Spanish and Russian, and nothing that merely shares letters with them."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.models import Item
from tests.matching.support import matcher_for

# id, term, item text (title; lang in the id's suffix when the item says it), how it matched
# (None: no match)
FORMS: list[tuple[str, Any, str, str | None, str | None]] = [
    # --- Russian: six cases of countries, cities, surnames, nouns -------------------------
    ("ru-gen", "Куба", "поставки нефти для Кубы", "Кубы", "inflected"),
    ("ru-dat", "Куба", "Россия поможет Кубе", "Кубе", "inflected"),
    ("ru-acc", "Куба", "визит на Кубу", "Кубу", "inflected"),
    ("ru-ins", "Куба", "соглашение с Кубой", "Кубой", "inflected"),
    ("ru-city", "Гавана", "посол в Гаване", "Гаване", "inflected"),
    ("ru-ambassador", "посол", "встреча с послом", "послом", "inflected"),
    ("ru-surname-gen", "Колокольцев", "визит Колокольцева", "Колокольцева", "inflected"),
    ("ru-surname-ins", "Колокольцев", "встреча с Колокольцевым", "Колокольцевым", "inflected"),
    ("ru-surname-fem", "Захарова", "заявление Захаровой", "Захаровой", "inflected"),
    ("ru-noun", "визит", "в ходе визита", "визита", "inflected"),
    ("ru-noun-ins", "визит", "с официальным визитом", "визитом", "inflected"),
    ("ru-plural", "санкция", "новые санкции", "санкции", "inflected"),
    ("ru-verb", "прибыть", "министр прибыл в Гавану", "прибыл", "inflected"),
    ("ru-phrase", "Белый дом", "заявление Белого дома", "Белого дома", "inflected"),
    ("ru-exact", "Куба", "Куба и Россия", "Куба", "exact"),
    # --- Spanish: number, gender, moved accents, verbs ---------------------------------
    ("es-plural-accent", "sanción", "nuevas sanciones", "sanciones", "inflected"),
    ("es-gender", "cubano", "la economía cubana", "cubana", "inflected"),
    ("es-plural-gender", "venezolano", "funcionarios venezolanos", "venezolanos", "inflected"),
    ("es-verb", "visitar", "el canciller visitó Cuba", "visitó", "inflected"),
    ("es-verb-future", "llegar", "Lavrov llegará mañana", "llegará", "inflected"),
    # --- English: plurals, possessives, -ed/-ing -----------------------------------------
    ("en-plural", "visit", "two visits to Havana", "visits", "inflected"),
    ("en-past", "visit", "Lavrov visited Havana", "visited", "inflected"),
    ("en-ing", "tour", "Lavrov touring Africa", "touring", "inflected"),
    ("en-british", "travel", "he travelled to Ankara", "travelled", "inflected"),
    ("en-possessive", "Lavrov", "Lavrov's visit", "Lavrov", "exact"),
    ("en-demonym-plural", "Cuban", "Cubans queue for fuel", "Cubans", "inflected"),
    # irregular forms whose stems differ are words of their own (docs/rules.md)
    ("en-irregular", "meet", "they met", None, None),
    ("es-irregular", "sostener", "sostuvo conversaciones", None, None),
    # --- across scripts: a Latin name reaches Russian case forms ------------------------
    ("translit-inflected", "Lavrov", "визит Лаврова", "Лаврова", "transliterated"),
    ("translit-typo-name", "Колокольцев", "Kolokoltsov arrives", "Kolokoltsov", "transliterated"),
]

# what shares letters with a term and must not match it
TRAPS: list[tuple[str, Any, str]] = [
    ("kubok", "Куба", "выиграл Кубок России"),
    ("kubka", "Куба", "финал Кубка Гагарина"),
    ("kuban", "Куба", "на Кубани ливни"),
    ("cube", "Куба", "объём куба с ребром в метр"),  # куба: genitive of куб, lower case
    ("laurels", "Лавров", "лавры победителя"),
    ("fishing-season", "Путин", "путина на Камчатке началась"),  # путина: the fishing season
    ("prussia", "Россия", "Восточной Пруссии"),
    ("after-not-ambassador", "посол", "после переговоров"),  # после: a preposition
    ("cup-forms", "Куба", "в финале Кубка и с Кубком"),
    ("bucket", "Cuba", "un cubo de agua"),
    ("buckets", "Cuba", "cubos de Rubik"),
    ("barrel", "Cuba", "una cuba de vino"),  # cuba (lower case): a barrel
    ("blond", "Rubio", "un niño rubio y pecoso"),
    ("blonde", "Rubio", "una actriz rubia"),
    ("porcelain", "China", "fine china and silver"),
    ("chinese-man", "China", "un turista chino"),
    ("cigar-not-city", "habano", "llega a La Habana"),  # Habana, a name, is not *habana*
    ("cubs", "Cuba", "Cubs rout Cardinals"),
    ("tampa-trampa", "Трамп", "Tampa Bay wins"),
    ("tampa-trampa-form", "Трампа", "Tampa Bay wins"),
    ("poutine", "Путин", "poutine festival"),
    ("poutine-form", "Путине", "poutine festival"),
    ("us-pronoun", "US", "told us why"),
    ("articles", "el", "se reúne la junta"),  # two-letter words do not inflect
    ("not-a-dictionary-form", "sanctions", "Treasury sanctioned him"),
    # what a stemmer would join (docs/rules.md, "Inflection, measured")
    ("aide", "aid", "a Kremlin aide said"),
    ("cooper", "cooperation", "Anderson Cooper reports"),
    ("deportation", "deporte", "deportation flights resume"),
    ("accounts", "accountable", "frozen bank accounts"),
    ("opposite", "opposition", "on the opposite shore"),
    ("meta-es", "met", "la meta de inflación"),
    ("firm-en", "firmar", "a Russian firm"),
]


@pytest.mark.parametrize(("term", "title", "text", "how"), [c[1:] for c in FORMS],
                         ids=[c[0] for c in FORMS])  # fmt: skip
def test_forms(term: Any, title: str, text: str | None, how: str | None) -> None:
    found = matcher_for(term).match(Item(title=title))
    expected = [(text, how)] if text is not None else []
    assert [(hit.text, hit.how) for m in found for hit in m.hits] == expected


@pytest.mark.parametrize(("term", "title"), [c[1:] for c in TRAPS], ids=[c[0] for c in TRAPS])
def test_traps(term: Any, title: str) -> None:
    assert matcher_for(term).match(Item(title=title)) == []


@pytest.mark.parametrize(
    ("term", "title", "lang", "expected"),
    [
        ("chino", "Fine china and Cuban cigars", "en", False),  # English china is no chino
        ("chino", "Fine china and Cuban cigars", None, True),  # no language: read as Spanish too
        ("chino", "Empresas china y rusa", "es", True),
        ("deporte", "deportees flown home", "en", False),
        ("deporte", "deportees flown home", None, True),  # known: read as Spanish *deportes*
    ],
)
def test_an_item_language_limits_latin_readings(
    term: str, title: str, lang: str | None, expected: bool
) -> None:
    assert bool(matcher_for(term).match(Item(title=title, lang=lang))) is expected


@pytest.mark.parametrize(
    ("term", "title", "expected"),
    [
        ({"term": "Куба", "exact": True}, "соглашение с Кубой", False),
        ({"term": "Куба", "exact": True}, "Куба", True),
        ({"term": "US", "exact": True}, "US sanctions", True),
        ({"term": "Havana", "exact": True}, "Havanna", False),  # no typos either
        ({"term": "Lavrov", "exact": True}, "Лавров", False),  # nor the other script
        ({"term": "Куба", "case_sensitive": True}, "Кубой", False),
        ("Куб(а|ы)", "Кубой", True),  # each alternative inflects
        ("sanction*", "sanctioned", True),
        ("Куба", "кубинские тегов", False),
    ],
)
def test_opting_out(term: Any, title: str, expected: bool) -> None:
    assert bool(matcher_for(term).match(Item(title=title))) is expected


def test_tags_may_write_names_in_lower_case() -> None:
    matcher = matcher_for("Rubio")
    assert matcher.match(Item(title="Senator speaks", tags=("rubio",)))
    assert not matcher.match(Item(title="un niño rubio"))


def test_hits_say_how_and_in_what_language() -> None:
    (match,) = matcher_for("Куба").match(Item(title="соглашение с Кубой"))
    assert match.hits[0].as_json() | {} == {
        "term": "Куба", "field": "title", "text": "Кубой", "start": 13, "end": 18,
        "score": 100.0, "how": "inflected", "lang": "ru",
    }  # fmt: skip
