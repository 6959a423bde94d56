"""The vocabulary of every rule, compiled once, and the lookup of one item word against it.

A term is split into *atoms*, one per word (`La Habana` is two). Looking up a word of an item
returns every atom it satisfies with a score, at the cost of a few dict probes and, for fuzzy
atoms, one `rapidfuzz.process.extract` call over the atoms that share its first letter (a typo
rarely hits the first letter, and requiring it is what keeps Prussia from matching Russia). News
vocabulary repeats, so results are cached per word: a steady-state match does no fuzzy work.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

from rapidfuzz import fuzz, process

from monitor.matching.morph import LATIN_LANGS, Analyzer, Key, language_of
from monitor.text import Token, fold, is_latin, latin_key, strip_marks, words

Mode = Literal["exact", "prefix", "fuzzy", "substring"]
# How an item word satisfied an atom, from the surest to the loosest: a phrase reports its
# loosest word. `transliterated` is the other script's spelling (exact or within the fuzzy
# threshold); `inflected` another form of the same dictionary word.
How = Literal["exact", "prefix", "inflected", "transliterated", "fuzzy"]
HOW_ORDER: dict[str, int] = {
    "exact": 0, "prefix": 1, "inflected": 2, "transliterated": 3, "fuzzy": 4,
}  # fmt: skip
Via = tuple[float, How, str]  # score, how, language of the analysis ("" when none)
EXACT: Via = (100.0, "exact", "")
PREFIX: Via = (100.0, "prefix", "")
TRANSLITERATED: Via = (100.0, "transliterated", "")
# Across scripts a transliteration is noisy (Tampa ~ Трампа, poutine ~ путине): a fuzzy match
# between a Latin and a Cyrillic word needs this many leading letters of the two spellings
# to agree, which keeps Kolokoltsov ~ Колокольцев (the names differ at their ends)
CROSS_SCRIPT_PREFIX = 3
MIN_INFLECTED = 3  # letters of a term word for its other forms to match

CACHE_LIMIT = 200_000  # words; cleared when full, which keeps the cache bounded and deterministic
_ALTERNATIVES = re.compile(r"\(([^()]*)\)")


def default_threshold(word: str) -> float | None:
    """The fuzzy threshold for a word of this length, or None when it must match exactly.

    One inserted or dropped letter in a 6-letter word scores 92.3 (Havanna ~ Havana); one wrong
    letter scores 83.3 (Cubas ~ Cuban is refused). Words of 5 letters or fewer are exact: Cuba,
    Cubs, Putin, poutine are all different words.
    """
    if not word.isalpha() or len(word) <= 5:
        return None
    if len(word) <= 7:
        return 90.0
    if len(word) <= 9:
        return 88.0  # one wrong letter in 8 scores 87.5: policies is not policías
    return 85.0


MAX_FORMS = 256  # forms one term may expand to: 18 groups of two were 262,144 (and 434 MB)


def alternative_count(text: str) -> int:
    """How many forms `expand_alternatives(text)` would make, without making them."""
    count = 1
    for group in _ALTERNATIVES.findall(text):
        count *= len(group.split("|"))
    return count


def expand_alternatives(text: str) -> list[str]:
    """`Куб(а|ы)` → [`Куба`, `Кубы`]; several groups multiply; `(|s)` allows an empty form.

    Parentheses and `|` need no quoting in YAML, even inside a `[flow, list]`."""
    found = _ALTERNATIVES.search(text)
    if found is None:
        return [text]
    head, tail = text[: found.start()], text[found.end() :]
    return [
        expanded
        for choice in found.group(1).split("|")
        for expanded in expand_alternatives(head + choice + tail)
    ]


@dataclass(frozen=True, slots=True)
class Atom:
    """One word of a term, with how it is compared."""

    key: str  # folded word; accent-folded with case kept when case_sensitive
    mode: Mode
    threshold: float  # fuzzy only
    case_sensitive: bool
    translit: bool
    # the word as written, case-folded with accents kept, when its other forms match too
    # (empty: no inflection, for `exact`, case-sensitive, prefix and substring atoms)
    inflect: str = ""
    name: bool = False  # written capitalized: read as a name (no Spanish common-noun readings)
    # a name matches capitalized words only (Rubio is not rubio, blond; Путин is not путина, the
    # fishing season; US is not us), except in tags, which feeds often write in lower case
    capital_only: bool = False


class Lexicon:
    """Every atom of every rule, indexed for lookup by item word."""

    def __init__(self, analyzer: Analyzer | None = None) -> None:
        self.analyzer = analyzer
        self.atoms: list[Atom] = []
        self._ids: dict[Atom, int] = {}
        self._exact: dict[str, list[int]] = defaultdict(list)
        self._exact_latin: dict[str, list[int]] = defaultdict(list)
        self._cased: dict[str, list[int]] = defaultdict(list)
        self._prefix: dict[str, list[int]] = defaultdict(list)
        self._prefix_latin: dict[str, list[int]] = defaultdict(list)
        self._fuzzy: dict[str, list[int]] = defaultdict(list)
        self._fuzzy_latin: dict[str, list[int]] = defaultdict(list)
        self._substring: list[int] = []
        self._frozen: dict[str, tuple[list[str], list[int], float]] = {}
        self._prefix_lengths: dict[int, list[int]] = {}
        self._cache: dict[str, dict[int, Via]] = {}
        self._cased_folded: dict[str, list[int]] = defaultdict(list)
        self._word_atoms: dict[str, frozenset[int]] = {}
        self._seen_words: set[str] = set()  # the words of _word_atoms, as a set
        self._hit_words: set[str] = set()  # those of them that satisfy some atom
        self._inflected: dict[Key, list[int]] = defaultdict(list)
        self._capital_only: set[int] = set()

    def add(self, atom: Atom) -> int:
        known = self._ids.get(atom)
        if known is not None:
            return known
        atom_id = len(self.atoms)
        self.atoms.append(atom)
        self._ids[atom] = atom_id
        self._index(atom, atom_id)
        self._frozen.clear()
        self._prefix_lengths.clear()
        self._cache.clear()
        self._word_atoms.clear()
        self._seen_words.clear()
        self._hit_words.clear()
        return atom_id

    def _index(self, atom: Atom, atom_id: int) -> None:
        latin = latin_key(atom.key) if atom.translit and not atom.case_sensitive else ""
        if atom.case_sensitive:
            self._cased[atom.key].append(atom_id)
            self._cased_folded[fold(atom.key)].append(atom_id)
        elif atom.mode == "substring":
            self._substring.append(atom_id)
        elif atom.mode == "prefix":
            self._prefix[atom.key].append(atom_id)
            if latin:
                self._prefix_latin[latin].append(atom_id)
        else:
            self._exact[atom.key].append(atom_id)
            if latin:
                self._exact_latin[latin].append(atom_id)
            if atom.mode == "fuzzy":
                self._fuzzy[atom.key[0]].append(atom_id)
                if latin:
                    self._fuzzy_latin[latin[0]].append(atom_id)
        self._index_morphology(atom, atom_id)

    def _index_morphology(self, atom: Atom, atom_id: int) -> None:
        if atom.capital_only:
            self._capital_only.add(atom_id)
        if atom.inflect and self.analyzer is not None:
            for key in self._dictionary_keys(atom):
                self._inflected[key].append(atom_id)

    def _dictionary_keys(self, atom: Atom) -> frozenset[Key]:
        assert self.analyzer is not None
        word = atom.inflect
        keys: set[Key] = set()
        for lang in language_of(word):
            keys |= self.analyzer.dictionary_keys(word, lang, name=atom.name)
        if atom.name and atom.translit and is_latin(atom.key):
            keys.add(("lat", latin_key(atom.key)))  # Lavrov: Лаврову, Лавровым
        return frozenset(keys)

    def atoms_in(self, text: str) -> set[int]:
        """Every atom that some word of `text` may satisfy, case aside: a quick, conservative
        first look that needs no offsets. An empty set means no term can occur in the text."""
        present: set[int] = set()
        cache = self._word_atoms
        seen = set(words(text))
        # most words of an item satisfy no atom: set operations (in C) find the few that do
        new = seen - self._seen_words
        if new:
            if len(cache) + len(new) > CACHE_LIMIT:
                cache.clear()
                self._seen_words.clear()
                self._hit_words.clear()
            self._seen_words |= new
            for word in new:  # first sight of these words
                found = self._word_lookup(word)
                atoms = frozenset((*found, *self._cased_folded.get(fold(word), ())))
                cache[word] = atoms
                if atoms:
                    self._hit_words.add(word)
        for word in seen & self._hit_words:
            present.update(cache[word])
        return present

    def _word_lookup(self, lower: str) -> dict[int, Via]:
        """`lookup` of a case-folded word (accents kept), cached."""
        found = self._cache.get(lower)
        if found is None:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            found = self._lookup(lower)
            self._cache[lower] = found
        return found

    def lookup(
        self, token: Token, *, cased_text: bool = True, initial: bool = True, lang: str = ""
    ) -> dict[int, Via]:
        """The atoms this item word satisfies, with (score 0-100, how, language), in atom order.
        The dict is shared by every lookup of the word: read it, never change it.

        `cased_text`: the field writes names capitalized (titles and text do, tags often not),
        so a lower-case word there is no name. `initial`: the word starts a sentence; inside
        one, a capitalized word is a name, which Spanish does not inflect (*Habana*, the city,
        is not read as a form of *habano*, a cigar). `lang`: the item's language when it says
        one (`en`, `es`): a Latin word is then read in that language only (English *china* is
        not the Spanish *china*, a Chinese woman)."""
        found = self._word_lookup(token.lower or token.folded)
        cased = self._cased.get(token.cased) if self._cased else None
        if cased:
            found = dict(sorted({**found, **dict.fromkeys(cased, EXACT)}.items()))
        if not cased_text:
            return found
        capital = token.cased[:1].isupper()
        if not capital and self._capital_only and not self._capital_only.isdisjoint(found):
            found = {a: via for a, via in found.items() if a not in self._capital_only}
        if self._inflected and (lang in LATIN_LANGS or (capital and not initial)):
            found = self._readings_for(found, lang, name_position=capital and not initial)
        return found

    def _readings_for(
        self, found: dict[int, Via], lang: str, *, name_position: bool
    ) -> dict[int, Via]:
        """`found` without the Latin readings that the item's language or the word's place
        rule out."""
        if not any(via[1] == "inflected" and via[2] != "ru" for via in found.values()):
            return found
        kept: dict[int, Via] = {}
        for atom_id, via in found.items():
            if via[1] == "inflected" and via[2] != "ru":
                langs = set(via[2].split(","))
                if lang in LATIN_LANGS:
                    langs &= {lang}
                if name_position and not self.atoms[atom_id].name:
                    langs.discard("es")
                if not langs:
                    continue
                kept[atom_id] = (via[0], via[1], ",".join(sorted(langs)))
                continue
            kept[atom_id] = via
        return kept

    def _lookup(self, lower: str) -> dict[int, Via]:
        word = fold(lower)
        scores: dict[int, Via] = {}
        latin = latin_key(word)
        for atom_id in self._exact.get(word, ()):
            scores[atom_id] = EXACT
        for atom_id in self._exact_latin.get(latin, ()):
            scores.setdefault(atom_id, TRANSLITERATED)
        self._probe_prefixes(word, self._prefix, scores)
        if latin:
            self._probe_prefixes(latin, self._prefix_latin, scores)
        if self._inflected:
            self._probe_inflections(lower, scores)
        self._probe_fuzzy(word, "native", self._fuzzy, scores)
        if latin:
            self._probe_fuzzy(latin, "latin", self._fuzzy_latin, scores, latin_word=is_latin(word))
        for atom_id in self._substring:
            if self.atoms[atom_id].key in word:
                scores[atom_id] = EXACT
        return dict(sorted(scores.items()))

    def _probe_inflections(self, lower: str, scores: dict[int, Via]) -> None:
        assert self.analyzer is not None
        langs = language_of(lower)
        if not langs:
            return
        # an atom may be reached in English and in Spanish both (`cubas`): its language reads
        # `en,es`, and an item that says its language keeps the reading in that language
        readings: dict[int, set[str]] = defaultdict(set)
        for lang, lemma in self.analyzer.item_keys(lower, langs):
            for atom_id in self._inflected.get((lang, lemma), ()):
                if atom_id not in scores:
                    readings[atom_id].add(lang)
        for atom_id, found in readings.items():
            if found == {"lat"}:
                scores[atom_id] = (100.0, "transliterated", "ru")
            else:
                scores[atom_id] = (100.0, "inflected", ",".join(sorted(found - {"lat"})))

    def _probe_prefixes(
        self, word: str, index: dict[str, list[int]], scores: dict[int, Via]
    ) -> None:
        lengths = self._prefix_lengths.get(id(index))
        if lengths is None:
            lengths = sorted({len(prefix) for prefix in index})
            self._prefix_lengths[id(index)] = lengths
        for length in lengths:
            if length > len(word):
                break
            for atom_id in index.get(word[:length], ()):
                scores.setdefault(atom_id, PREFIX)

    def _probe_fuzzy(
        self,
        word: str,
        kind: str,
        index: dict[str, list[int]],
        scores: dict[int, Via],
        *,
        latin_word: bool = True,
    ) -> None:
        """Fuzzy atoms near `word`; `kind` latin compares transliterations, of a word that is
        itself Latin or not (`latin_word`)."""
        if not word or word[0] not in index:
            return
        keys, atom_ids, cutoff = self._fuzzy_group(kind, word[0], index)
        for choice, score, position in process.extract(
            word, keys, scorer=fuzz.ratio, score_cutoff=cutoff, limit=None
        ):
            atom_id = atom_ids[position]
            atom = self.atoms[atom_id]
            if score < atom.threshold or score <= scores.get(atom_id, (-1.0,))[0]:
                continue
            how: How = "fuzzy"
            if kind == "latin" and is_latin(atom.key) != latin_word:
                if choice[:CROSS_SCRIPT_PREFIX] != word[:CROSS_SCRIPT_PREFIX]:
                    continue
                how = "transliterated"
            scores[atom_id] = (float(score), how, "")

    def _fuzzy_group(
        self, kind: str, first: str, index: dict[str, list[int]]
    ) -> tuple[list[str], list[int], float]:
        group = self._frozen.get(kind + first)
        if group is None:
            atom_ids = index[first]
            keys = [
                latin_key(self.atoms[a].key) if kind == "latin" else self.atoms[a].key
                for a in atom_ids
            ]
            cutoff = min(self.atoms[a].threshold for a in atom_ids)
            group = (keys, list(atom_ids), cutoff)
            self._frozen[kind + first] = group
        return group


def atom_for(
    word: str,
    *,
    fuzzy: bool | None,
    threshold: int | None,
    prefix: bool,
    whole_word: bool,
    case_sensitive: bool,
    translit: bool,
    exact: bool = False,
    written: Token | None = None,
    analyze: bool = False,
) -> Atom:
    """The atom for one folded word of a term, with the term's options applied. `written` is
    the word as the rule has it: with `analyze`, a plain word matches its inflected forms, and
    a capitalized one is read as a name."""
    key = word
    if case_sensitive:
        return Atom(key=key, mode="exact", threshold=100.0, case_sensitive=True, translit=False)
    if not whole_word:
        return Atom(
            key=key, mode="substring", threshold=100.0, case_sensitive=False, translit=False
        )
    if exact:
        return Atom(key=key, mode="exact", threshold=100.0, case_sensitive=False, translit=False)
    if prefix:
        return Atom(
            key=key, mode="prefix", threshold=100.0, case_sensitive=False, translit=translit
        )
    auto = default_threshold(key)
    if threshold is not None and fuzzy is not False:
        level: float | None = float(threshold)
    elif fuzzy is False:
        level = None
    elif fuzzy is True:
        level = auto if auto is not None else 90.0
    else:
        level = auto
    mode: Mode = "exact" if level is None or level >= 100 else "fuzzy"
    morph = _morphology(written) if analyze and written is not None else {}
    return Atom(
        key=key, mode=mode, threshold=100.0 if mode == "exact" else float(level or 0),
        case_sensitive=False, translit=translit, **morph,
    )  # fmt: skip


def _morphology(written: Token) -> dict[str, Any]:
    lower = written.lower or written.folded
    name = written.cased[:1].isupper()
    acronym = len(written.cased) > 1 and written.cased.isupper()  # МВД, GAESA: no inflection
    # two-letter words are articles and pronouns (la, se, el), whose forms are each other
    plain = lower.isalpha() and len(lower) >= MIN_INFLECTED and not acronym
    return {
        "inflect": lower if plain else "",
        "name": name,
        "capital_only": name,
    }


def case_key(word: str) -> str:
    """The key of a case-sensitive word: accents folded, case kept."""
    return strip_marks(word)


__all__ = [
    "Atom",
    "Lexicon",
    "atom_for",
    "case_key",
    "default_threshold",
    "expand_alternatives",
    "fold",
]
