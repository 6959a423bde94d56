"""Text folding and tokenizing: case, accents, HTML, scripts, and offsets into the original."""

from __future__ import annotations

import pytest

from monitor.text import fold, is_cyrillic, latin_key, tokenize


@pytest.mark.parametrize(
    ("word", "folded"),
    [
        ("Havana", "havana"),
        ("HAVANA", "havana"),
        ("Álvarez", "alvarez"),
        ("Moscú", "moscu"),
        ("Díaz", "diaz"),
        ("Kolokóltsev", "kolokoltsev"),
        ("Camagüey", "camaguey"),
        ("Straße", "strasse"),
        ("Россия", "россия"),
        ("ГАВАНЕ", "гаване"),
        ("Кубой", "кубои"),  # й folds to и, the same way in terms and text
        ("Ёлка", "елка"),
        ("Di\u0301az", "diaz"),  # decomposed input (NFD) folds the same as composed
    ],
)
def test_fold(word: str, folded: str) -> None:
    assert fold(word) == folded


@pytest.mark.parametrize(
    ("word", "key"),
    [
        ("колокольцев", "kolokoltsev"),
        ("путин", "putin"),
        ("лавров", "lavrov"),
        ("шоигу", "shoigu"),
        ("havana", "havana"),
        ("россия", "rossiya"),
    ],
)
def test_latin_key(word: str, key: str) -> None:
    assert latin_key(word) == key


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Lavrov in Havana", ["lavrov", "in", "havana"]),
        ("Díaz-Canel met Putin.", ["diaz", "canel", "met", "putin"]),
        ("Havana's port", ["havana", "s", "port"]),
        ("EE.UU. sanciona", ["ee", "uu", "sanciona"]),
        ("<p>Cuba</p><p>Rusia</p>", ["cuba", "rusia"]),
        ("sesi&oacute;n &amp; acuerdo", ["sesion", "acuerdo"]),
        ("&#8220;Cuba&#8221;", ["cuba"]),
        ("25&nbsp;000 toneladas", ["25", "000", "toneladas"]),
        ("S&P 500", ["s", "p", "500"]),
        ("«Адмирал Горшков»", ["адмирал", "горшков"]),
        ("", []),
    ],
)
def test_tokenize_words(text: str, words: list[str]) -> None:
    assert [token.folded for token in tokenize(text)] == words


@pytest.mark.parametrize(
    ("text", "original_words"),
    [
        ("Lavrov in Havana", ["Lavrov", "in", "Havana"]),
        ("D&iacute;az-Canel", ["D&iacute;az", "Canel"]),
        ("sesi&oacute;n", ["sesi&oacute;n"]),
        ("<b>Álvarez</b> Casas", ["Álvarez", "Casas"]),
        ("Ra&uacute;l Castro", ["Ra&uacute;l", "Castro"]),
        ("Di\u0301az", ["Di\u0301az"]),
        ("Колокольцев в Гаване", ["Колокольцев", "в", "Гаване"]),
    ],
)
def test_token_offsets_point_into_the_original_text(text: str, original_words: list[str]) -> None:
    assert [text[t.start : t.end] for t in tokenize(text)] == original_words


def test_cased_form_keeps_case_and_folds_accents() -> None:
    assert [t.cased for t in tokenize("US Álvarez us")] == ["US", "Alvarez", "us"]


@pytest.mark.parametrize(
    ("text", "lower"),
    [
        ("Кубой", ["кубой"]),  # й stays: folding it to и would hide the case ending
        ("Sanción", ["sanción"]),
        ("Di\u0301az-Canel", ["díaz", "canel"]),  # composed
        ("D&iacute;az", ["díaz"]),
        ("LAVROV's", ["lavrov", "s"]),
    ],
)
def test_lower_form_keeps_accents_for_the_analyzers(text: str, lower: list[str]) -> None:
    assert [t.lower for t in tokenize(text)] == lower


@pytest.mark.parametrize(
    ("word", "cyrillic"), [("Куба", True), ("Cuba", False), ("Kубa", True), ("2024", False)]
)
def test_is_cyrillic(word: str, cyrillic: bool) -> None:
    assert is_cyrillic(word) is cyrillic
