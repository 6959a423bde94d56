"""Morphology: which words of an item are forms of a term's word, in English, Spanish and Russian.

A rule writes a word once, in its dictionary form (`Куба`, `sanción`, `visit`); an item has
inflected forms (`Кубой`, `sanciones`, `visited`). Both sides are reduced to *keys*,
`(language, lemma or stem)`, and a word of an item is an inflected form of a term's word when
they share a key:

    term word  --dictionary_keys-->  {("ru", "куба")}
    item word  --item_keys------->   {("ru", "куба")}        Кубой, Кубе, Кубы…
                                     {("ru", "кубок")}       Кубок (a cup): no key in common

The language of a word comes from its script: Cyrillic words are Russian; Latin words are read
as English and as Spanish both, or in the item's language when it says one (lexicon.py).

Words are read by dictionaries of real word forms, which join a word's inflections and nothing
else: pymorphy3 (OpenCorpora) for Russian, simplemma for English and Spanish. A term word gets
keys only where it is a dictionary form (`санкции` and `sanctions` are not; `monitor check`
says to write `санкция`, `sanction`), and a name is not read as a Spanish word (`China` is not
*chino*). Stemmers join more: Snowball makes *aide* a form of `aid`, *Cooper* of `cooperation`,
*deportation* of `deporte`, the Spanish *meta* of `met` (docs/rules.md lists what each joined in
our corpus).

Three analyzers, measured in docs/rules.md: `LemmaAnalyzer` (pymorphy3 + simplemma, with
Snowball to choose which words to look up; the default), `MorphAnalyzer` (pymorphy3 + Snowball
for English and Spanish) and `StemAnalyzer` (Snowball for all three). Every analysis is cached
with a bound.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Literal, Protocol

from monitor.dictionaries import dictionary_factory
from monitor.text import WORD_CACHE, fold, is_cyrillic, latin_key

if TYPE_CHECKING:
    import pymorphy3
    import simplemma
    from simplemma.strategies import DictionaryLookupStrategy

Lang = Literal["en", "es", "ru"]
Key = tuple[str, str]  # (language, folded lemma or stem); language "lat": a name's transliteration
LATIN_LANGS: tuple[Lang, ...] = ("en", "es")
CACHE_SIZE = WORD_CACHE  # distinct words per analysis (monitor.text)
# pymorphy3 tags of proper names
_NAME_TAGS = frozenset({"Name", "Surn", "Patr", "Geox", "Orgn", "Trad"})
_SNOWBALL = {"en": "english", "es": "spanish", "ru": "russian"}
_FUNCTION_WORDS = frozenset({"PREP", "CONJ", "PRCL", "INTJ"})


@lru_cache(maxsize=CACHE_SIZE)
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


# --- Russian: pymorphy3 ---------------------------------------------------------------------


@lru_cache(maxsize=1)
def _morph() -> pymorphy3.MorphAnalyzer:
    import pymorphy3  # noqa: PLC0415 - its dictionaries load only when a rule has Russian words

    # it logs every dictionary load at INFO: that is no news to a user of `monitor check`
    logging.getLogger("pymorphy3.opencorpora_dict.wrapper").setLevel(logging.WARNING)
    return pymorphy3.MorphAnalyzer()


@lru_cache(maxsize=CACHE_SIZE)
def _ru_parses(word: str) -> tuple[tuple[str, bool, bool], ...]:
    """(lemma, is a proper name, is a dictionary form) for each reading pymorphy3 has of a
    Russian word, likeliest first. A dictionary form is the lemma itself, or a nominative
    singular (Захарова, whose lemma pymorphy3 writes in the masculine, захаров), or the
    nominative of a word that has no singular (переговоры).

    A word whose likeliest reading is a preposition, conjunction, particle or interjection is
    read as that only: *после* (after) is also the prepositional of *посол* (an ambassador),
    one reading in a thousand."""
    parses = _morph().parse(word)
    if parses and parses[0].tag.POS in _FUNCTION_WORDS:
        parses = [parse for parse in parses if parse.tag.POS in _FUNCTION_WORDS]
    readings: dict[tuple[str, bool, bool], None] = {}
    for parse in parses:
        tag = parse.tag
        nominative = tag.case == "nomn" and (tag.number != "plur" or "Pltm" in tag.grammemes)
        dictionary = parse.normal_form == word or nominative
        readings[(parse.normal_form, bool(_NAME_TAGS & tag.grammemes), dictionary)] = None
    return tuple(readings)


def _ru_dictionary_keys(word: str, *, name: bool) -> frozenset[Key]:
    lemmas = {lemma for lemma, _, dictionary in _ru_parses(word) if dictionary}
    # a surname pymorphy3 does not know (Колокольцев) reads as some other word's form; the
    # rule wrote it in its dictionary form, so the word itself is a lemma too
    if name or word in lemmas:
        lemmas.add(word)
    return frozenset(("ru", fold(lemma)) for lemma in lemmas)


def _ru_item_keys(word: str) -> set[Key]:
    keys: set[Key] = set()
    for lemma, proper, _ in _ru_parses(word):
        keys.add(("ru", fold(lemma)))
        if proper:  # Лаврову is a form of Lavrov too
            keys.add(("lat", latin_key(fold(lemma))))
    return keys


# --- English and Spanish: Snowball, or simplemma's dictionaries -----------------------------


@lru_cache(maxsize=3)
def _stemmer(lang: Lang) -> Callable[[str], str]:
    import Stemmer  # noqa: PLC0415 - PyStemmer, imported with the first rule that inflects

    stem: Callable[[str], str] = Stemmer.Stemmer(_SNOWBALL[lang]).stemWord
    return stem


@lru_cache(maxsize=CACHE_SIZE)
def _stem(word: str, lang: Lang) -> str:
    return fold(_stemmer(lang)(word))


@lru_cache(maxsize=1)
def _simplemma() -> tuple[simplemma.Lemmatizer, DictionaryLookupStrategy]:
    """simplemma's lemmatizer and its dictionary lookup, on the dictionaries of
    monitor.dictionaries (tries opened in milliseconds, built once)."""
    from simplemma import Lemmatizer  # noqa: PLC0415 - loaded with the first Latin rule word
    from simplemma.strategies import DefaultStrategy, DictionaryLookupStrategy  # noqa: PLC0415

    factory = dictionary_factory()
    return (
        # no cache of its own (65,536 lemmas): _lemma keeps WORD_CACHE of them
        Lemmatizer(
            cache_max_size=0, lemmatization_strategy=DefaultStrategy(dictionary_factory=factory)
        ),
        DictionaryLookupStrategy(factory),
    )


@lru_cache(maxsize=CACHE_SIZE)
def _lemma(word: str, lang: Lang) -> str:
    """simplemma's lemma of a case-folded word; it knows names by their capital (Cubans →
    Cuban), so a word it does not know in lower case is also asked capitalized."""
    lemmatizer, _ = _simplemma()
    lemma = lemmatizer.lemmatize(word, lang=lang)
    if lemma == word and word[:1].islower():
        lemma = lemmatizer.lemmatize(word.capitalize(), lang=lang)
    return fold(lemma)


@lru_cache(maxsize=CACHE_SIZE)
def _is_known(word: str, lang: Lang) -> bool:
    _, lookup = _simplemma()
    from simplemma.utils import normalize_token  # noqa: PLC0415

    return lookup.get_lemma(normalize_token(word), lang) is not None


def _known_elsewhere(word: str, lang: Lang) -> bool:
    """Whether a word unknown to simplemma in `lang` is a word of the other Latin language:
    `sanctions` is English (a plural), not a Spanish dictionary form simplemma does not know."""
    if _is_known(word, lang):
        return False
    return any(_is_known(word, other) for other in LATIN_LANGS if other != lang)


class MorphAnalyzer:
    """pymorphy3 for Russian, Snowball stems for English and Spanish."""

    name = "morph"

    def item_keys(self, word: str, langs: tuple[Lang, ...]) -> frozenset[Key]:
        return _morph_item_keys(word, langs)

    def dictionary_keys(self, word: str, lang: Lang, *, name: bool) -> frozenset[Key]:
        return _morph_dictionary_keys(word, lang, name)


@lru_cache(maxsize=CACHE_SIZE)
def _morph_dictionary_keys(word: str, lang: Lang, name: bool) -> frozenset[Key]:
    if lang == "ru":
        return _ru_dictionary_keys(word, name=name)
    if name and lang == "es":
        return frozenset()  # Spanish names do not inflect; `China` read in Spanish is *chino*
    return frozenset({(lang, _stem(word, lang))})


@lru_cache(maxsize=CACHE_SIZE)
def _morph_item_keys(word: str, langs: tuple[Lang, ...]) -> frozenset[Key]:
    keys: set[Key] = set()
    for lang in langs:
        if lang == "ru":
            keys |= _ru_item_keys(word)
        else:
            keys.add((lang, _stem(word, lang)))
    return frozenset(keys)


class LemmaAnalyzer:
    """pymorphy3 for Russian, simplemma's dictionaries of word forms for English and Spanish
    (the default): a Latin term word gets a key only where it is its own lemma (`sanctions`
    is not).

    simplemma's stream dictionaries (the fallback of monitor.dictionaries) cost 0.3 ms
    a lookup, too much for every new word of every item, so a Latin item word is looked up only
    when its Snowball stem (C, microseconds) is the stem of some term word: the stem proposes,
    the dictionary confirms. Irregular forms whose stems differ (met / meet, sostuvo /
    sostener) are therefore not reached; a rule lists them.
    """

    name = "lemma"

    def __init__(self) -> None:
        self._stems: dict[str, set[str]] = {lang: set() for lang in LATIN_LANGS}
        self._items: dict[tuple[str, tuple[Lang, ...]], frozenset[Key]] = {}

    def item_keys(self, word: str, langs: tuple[Lang, ...]) -> frozenset[Key]:
        found = self._items.get((word, langs))
        if found is None:
            if len(self._items) >= CACHE_SIZE:
                self._items.clear()
            found = self._item_keys(word, langs)
            self._items[(word, langs)] = found
        return found

    def _item_keys(self, word: str, langs: tuple[Lang, ...]) -> frozenset[Key]:
        keys: set[Key] = set()
        for lang in langs:
            if lang == "ru":
                keys |= _ru_item_keys(word)
            elif _stem(word, lang) in self._stems[lang]:
                keys.add((lang, _lemma(word, lang)))
        return frozenset(keys)

    def dictionary_keys(self, word: str, lang: Lang, *, name: bool) -> frozenset[Key]:
        keys = _lemma_dictionary_keys(word, lang, name)
        if keys and lang != "ru":
            stem = _stem(word, lang)
            if stem not in self._stems[lang]:
                self._stems[lang].add(stem)
                self._items.clear()  # a word seen before may now be a form of this one
        return keys


@lru_cache(maxsize=CACHE_SIZE)
def _lemma_dictionary_keys(word: str, lang: Lang, name: bool) -> frozenset[Key]:
    if lang == "ru":
        return _ru_dictionary_keys(word, name=name)
    if name and lang == "es":
        return frozenset()
    folded = fold(word)
    if _lemma(word, lang) != folded or _known_elsewhere(word, lang):
        return frozenset()
    return frozenset({(lang, folded)})


class StemAnalyzer:
    """Snowball stemmers for all three languages: a word and a term's word match when their
    stems are equal."""

    name = "stem"

    def item_keys(self, word: str, langs: tuple[Lang, ...]) -> frozenset[Key]:
        return frozenset((lang, _stem(word, lang)) for lang in langs)

    def dictionary_keys(self, word: str, lang: Lang, *, name: bool) -> frozenset[Key]:
        if name and lang == "es":
            return frozenset()
        return frozenset({(lang, _stem(word, lang))})


ANALYZERS: dict[str, Callable[[], Analyzer]] = {
    "morph": MorphAnalyzer,
    "lemma": LemmaAnalyzer,
    "stem": StemAnalyzer,
}
DEFAULT_ANALYZER = "lemma"


def suggested_lemma(word: str) -> str | None:
    """The dictionary form of a word, when a dictionary knows one and it differs: `санкции` →
    `санкция`, `sanctions` → `sanction`; None otherwise."""
    if is_cyrillic(word):
        lemmas = [lemma for lemma, _, _ in _ru_parses(word)]
        return lemmas[0] if lemmas and lemmas[0] != word else None
    lemmatizer, _ = _simplemma()
    for lang in language_of(word):
        if _is_known(word, lang):
            lemma = str(lemmatizer.lemmatize(word, lang=lang))
            if lemma.casefold() != word:
                return lemma
    return None


def russian_words(prefix: str) -> list[str]:
    """Every word form pymorphy3's dictionary knows that starts with `prefix` (lower case): the
    word list that bench/eval_rules.py --collisions reads for Russian false friends."""
    return sorted({known for known, *_ in _morph().iter_known_word_parses(prefix)})
