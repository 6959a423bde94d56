"""Morphology: which words of an item are forms of a term's word, in English, Spanish and Russian.

A rule writes a word once, in its dictionary form (`Куба`, `sanción`, `visit`); an item has
inflected forms (`Кубой`, `sanciones`, `visited`). Both sides are reduced to *keys*,
`(language, lemma)`, and a word of an item is an inflected form of a term's word when they
share a key:

    term word  --dictionary_keys-->  {("ru", "куба")}
    item word  --item_keys------->   {("ru", "куба")}        Кубой, Кубе, Кубы…
                                     {("ru", "кубок")}       Кубок (a cup): no key in common

The language of a word comes from its script: Cyrillic words are Russian; Latin words are read
as English and as Spanish both (docs/rules.md measures that against an item-level guess).

Precision comes first, so a term word gets a key only in a language where it *is* a dictionary
form (`sanctions` is not: it matches itself, and `monitor check` says to write `sanction`), and a
capitalized term (a name) is not read as a Spanish common word (`China` is not *chino*; `Rubio`
is not *rubia*). Whether a name's lower-case form is also a common word (`путина`, the fishing
season; `rubio`, blond; `cuba`, a barrel) is `is_common_word`: such names match only capitalized
words of an item.

Two analyzers implement this: `LemmaAnalyzer` (pymorphy3 for Russian, simplemma for English and
Spanish: dictionaries of real word forms; the default) and `StemAnalyzer` (Snowball stemmers:
suffix stripping, kept to measure against). Every analysis is cached with a bound.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Literal, Protocol

import simplemma

from monitor.text import fold, is_cyrillic, latin_key

if TYPE_CHECKING:
    import pymorphy3

Lang = Literal["en", "es", "ru"]
Key = tuple[str, str]  # (language, folded lemma or stem); language "lat": a name's transliteration
LATIN_LANGS: tuple[Lang, ...] = ("en", "es")
CACHE_SIZE = 65536  # distinct words per analysis; news vocabulary repeats
# pymorphy3 tags of proper names: a parse without one of them is a common word
_NAME_TAGS = frozenset({"Name", "Surn", "Patr", "Geox", "Orgn", "Trad"})


def language_of(word: str) -> tuple[Lang, ...]:
    """The languages a word is read in: Russian for Cyrillic, English and Spanish for Latin."""
    if is_cyrillic(word):
        return ("ru",)
    if any(ch.isalpha() for ch in word) and all(_latin_letter(ch) for ch in word):
        return LATIN_LANGS
    return ()


def _latin_letter(ch: str) -> bool:
    return not ch.isalpha() or ch.isascii() or "\u00c0" <= ch <= "\u024f"


class Analyzer(Protocol):
    """What the lexicon asks of a morphology backend. Words come case-folded, accents kept."""

    name: str

    def item_keys(self, word: str, langs: tuple[Lang, ...]) -> frozenset[Key]:
        """The keys of a word of an item: every reading of it in each language."""
        ...

    def dictionary_keys(self, word: str, lang: Lang, *, name: bool) -> frozenset[Key]:
        """The keys of a term's word, empty when it is not a dictionary form in `lang`."""
        ...


@lru_cache(maxsize=1)
def _morph() -> pymorphy3.MorphAnalyzer:
    import pymorphy3  # noqa: PLC0415 - its dictionaries load only when a rule has Russian words

    # it logs every dictionary load at INFO: that is no news to a user of `monitor check`
    logging.getLogger("pymorphy3.opencorpora_dict.wrapper").setLevel(logging.WARNING)
    return pymorphy3.MorphAnalyzer()


@lru_cache(maxsize=CACHE_SIZE)
def _ru_parses(word: str) -> tuple[tuple[str, bool, bool], ...]:
    """(lemma, is a proper name, is a dictionary form) for each reading pymorphy3 has of a
    Russian word. A dictionary form is the lemma itself, or a nominative singular (Захарова,
    whose lemma pymorphy3 writes in the masculine, захаров), or the nominative of a word that
    has no singular (переговоры)."""
    readings: dict[tuple[str, bool, bool], None] = {}
    for parse in _morph().parse(word):
        tag = parse.tag
        nominative = tag.case == "nomn" and (tag.number != "plur" or "Pltm" in tag.grammemes)
        dictionary = parse.normal_form == word or nominative
        readings[(parse.normal_form, bool(_NAME_TAGS & tag.grammemes), dictionary)] = None
    return tuple(readings)


@lru_cache(maxsize=CACHE_SIZE)
def _lemma(word: str, lang: Lang) -> str:
    """The lemma of a case-folded word; simplemma knows names by their capital (Cubans →
    Cuban), so a word it does not know in lower case is also asked capitalized."""
    lemma = simplemma.lemmatize(word, lang=lang)
    if lemma == word and word[:1].islower():
        lemma = simplemma.lemmatize(word.capitalize(), lang=lang)
    return fold(lemma)


@lru_cache(maxsize=CACHE_SIZE)
def is_common_word(word: str) -> bool:
    """Whether a word, in lower case, is also a common (not proper) word in its language:
    `путина`, `rubio`, `cuba`, `trump`. A name term that is one matches capitalized words only."""
    if is_cyrillic(word):
        return any(not proper for _, proper, _ in _ru_parses(word))
    return any(simplemma.is_known(word, lang=lang) for lang in language_of(word))


class LemmaAnalyzer:
    """Dictionaries of word forms: pymorphy3 (OpenCorpora) for Russian, simplemma for English
    and Spanish. A word unknown to them keeps itself as its lemma."""

    name = "lemma"

    def item_keys(self, word: str, langs: tuple[Lang, ...]) -> frozenset[Key]:
        return _lemma_item_keys(word, langs)

    def dictionary_keys(self, word: str, lang: Lang, *, name: bool) -> frozenset[Key]:
        folded = fold(word)
        if lang == "ru":
            lemmas = {lemma for lemma, _, dictionary in _ru_parses(word) if dictionary}
            # a surname pymorphy3 does not know (Колокольцев) reads as some other word's form;
            # the rule wrote it in its dictionary form, so the word itself is a lemma too
            if name or word in lemmas:
                lemmas.add(word)
            return frozenset(("ru", fold(lemma)) for lemma in lemmas)
        if name and lang == "es":
            return frozenset()  # Spanish names do not inflect; `China` read in Spanish is *chino*
        if _lemma(word, lang) != folded or _known_elsewhere(word, lang):
            return frozenset()
        return frozenset({(lang, folded)})


@lru_cache(maxsize=CACHE_SIZE)
def _lemma_item_keys(word: str, langs: tuple[Lang, ...]) -> frozenset[Key]:
    keys: set[Key] = set()
    for lang in langs:
        if lang == "ru":
            for lemma, proper, _ in _ru_parses(word):
                keys.add(("ru", fold(lemma)))
                if proper:  # Лаврову is a form of Lavrov too
                    keys.add(("lat", latin_key(fold(lemma))))
        else:
            keys.add((lang, _lemma(word, lang)))
    return frozenset(keys)


def _known_elsewhere(word: str, lang: Lang) -> bool:
    """Whether a word unknown in `lang` is a word of another Latin language: `sanctions` is
    English (a plural), not a Spanish dictionary form that simplemma merely does not know."""
    if simplemma.is_known(word, lang=lang):
        return False
    return any(simplemma.is_known(word, lang=other) for other in LATIN_LANGS if other != lang)


class StemAnalyzer:
    """Snowball stemmers (PyStemmer) for all three languages: a word and a term's word match
    when their stems are equal. Kept to measure against `LemmaAnalyzer` (docs/rules.md)."""

    name = "stem"

    def __init__(self) -> None:
        import Stemmer  # noqa: PLC0415 - only the measurement uses it

        names = {"en": "english", "es": "spanish", "ru": "russian"}
        self._stem: dict[str, Callable[[str], str]] = {
            lang: Stemmer.Stemmer(names[lang]).stemWord for lang in names
        }

    def item_keys(self, word: str, langs: tuple[Lang, ...]) -> frozenset[Key]:
        return frozenset((lang, fold(self._stem[lang](word))) for lang in langs)

    def dictionary_keys(self, word: str, lang: Lang, *, name: bool) -> frozenset[Key]:
        if name and lang == "es":
            return frozenset()
        return frozenset({(lang, fold(self._stem[lang](word)))})


ANALYZERS: dict[str, Callable[[], Analyzer]] = {"lemma": LemmaAnalyzer, "stem": StemAnalyzer}


def suggested_lemma(word: str) -> str | None:
    """The dictionary form of a word, when a dictionary knows it and it differs: `sanctions` →
    `sanction`, `санкции` → `санкция`; None otherwise."""
    if is_cyrillic(word):
        lemmas = [lemma for lemma, _, _ in _ru_parses(word)]
        return lemmas[0] if lemmas and lemmas[0] != word else None
    for lang in language_of(word):
        if simplemma.is_known(word, lang=lang):
            lemma = simplemma.lemmatize(word, lang=lang)
            if lemma.casefold() != word:
                return str(lemma)
    return None
