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
from typing import Literal

from rapidfuzz import fuzz, process

from monitor.text import Token, fold, latin_key, strip_marks, words

Mode = Literal["exact", "prefix", "fuzzy", "substring"]

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


class Lexicon:
    """Every atom of every rule, indexed for lookup by item word."""

    def __init__(self) -> None:
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
        self._cache: dict[str, dict[int, float]] = {}
        self._cased_folded: dict[str, list[int]] = defaultdict(list)
        self._word_atoms: dict[str, frozenset[int]] = {}

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

    def atoms_in(self, text: str) -> set[int]:
        """Every atom that some word of `text` may satisfy, case aside: a quick, conservative
        first look that needs no offsets. An empty set means no term can occur in the text."""
        present: set[int] = set()
        cache = self._word_atoms
        for word in set(words(text)):
            atoms = cache.get(word)
            if atoms is None:  # first sight of this word
                if len(cache) >= CACHE_LIMIT:
                    cache.clear()
                folded = fold(word)
                found = self._folded_lookup(folded)
                atoms = frozenset((*found, *self._cased_folded.get(folded, ())))
                cache[word] = atoms
            if atoms:
                present.update(atoms)
        return present

    def _folded_lookup(self, folded: str) -> dict[int, float]:
        found = self._cache.get(folded)
        if found is None:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            found = self._lookup(folded)
            self._cache[folded] = found
        return found

    def lookup(self, token: Token) -> dict[int, float]:
        """The atoms this item word satisfies, with scores (0-100), in atom order. The dict is
        shared by every lookup of the word: read it, never change it."""
        found = self._folded_lookup(token.folded)
        cased = self._cased.get(token.cased) if self._cased else None
        if cased:
            return dict(sorted({**found, **dict.fromkeys(cased, 100.0)}.items()))
        return found

    def _lookup(self, word: str) -> dict[int, float]:
        scores: dict[int, float] = {}
        latin = latin_key(word)
        for atom_id in (*self._exact.get(word, ()), *self._exact_latin.get(latin, ())):
            scores[atom_id] = 100.0
        self._probe_prefixes(word, self._prefix, scores)
        if latin:
            self._probe_prefixes(latin, self._prefix_latin, scores)
        self._probe_fuzzy(word, "native", self._fuzzy, scores)
        if latin:
            self._probe_fuzzy(latin, "latin", self._fuzzy_latin, scores)
        for atom_id in self._substring:
            if self.atoms[atom_id].key in word:
                scores[atom_id] = 100.0
        return dict(sorted(scores.items()))

    def _probe_prefixes(
        self, word: str, index: dict[str, list[int]], scores: dict[int, float]
    ) -> None:
        lengths = self._prefix_lengths.get(id(index))
        if lengths is None:
            lengths = sorted({len(prefix) for prefix in index})
            self._prefix_lengths[id(index)] = lengths
        for length in lengths:
            if length > len(word):
                break
            for atom_id in index.get(word[:length], ()):
                scores[atom_id] = 100.0

    def _probe_fuzzy(
        self, word: str, kind: str, index: dict[str, list[int]], scores: dict[int, float]
    ) -> None:
        if not word or word[0] not in index:
            return
        keys, atom_ids, cutoff = self._fuzzy_group(kind, word[0], index)
        for _choice, score, position in process.extract(
            word, keys, scorer=fuzz.ratio, score_cutoff=cutoff, limit=None
        ):
            atom_id = atom_ids[position]
            if score >= self.atoms[atom_id].threshold and score > scores.get(atom_id, -1.0):
                scores[atom_id] = float(score)

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
) -> Atom:
    """The atom for one folded word of a term, with the term's options applied."""
    key = word
    if case_sensitive:
        return Atom(key=key, mode="exact", threshold=100.0, case_sensitive=True, translit=False)
    if not whole_word:
        return Atom(
            key=key, mode="substring", threshold=100.0, case_sensitive=False, translit=False
        )
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
    if level is None or level >= 100:
        return Atom(key=key, mode="exact", threshold=100.0, case_sensitive=False, translit=translit)
    return Atom(key=key, mode="fuzzy", threshold=level, case_sensitive=False, translit=translit)


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
