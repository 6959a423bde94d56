"""Why a rule did not match an item: the clause that failed, and the near misses.

A slow path for people (`monitor match --explain`), kept apart from `Matcher.match`, which it
does not touch: it scans every field, walks the whole rule tree and, for each term that did
not occur, scores the item's words against the term's words to show the closest candidates
and why the lexicon refused each one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

from rapidfuzz import fuzz

from monitor.matching.language import item_language
from monitor.matching.lexicon import CROSS_SCRIPT_PREFIX, Atom, default_threshold
from monitor.matching.matcher import (
    MAX_NEAR_COMBINATIONS,
    AllNode,
    AnyNode,
    CompiledRule,
    ItemTerms,
    Matcher,
    NearNode,
    Node,
    NotNode,
    Occurrence,
    TermNode,
    evaluate,
    in_scope,
    separate,
    starts_sentence,
)
from monitor.models import Item
from monitor.text import Token, fold, is_latin, latin_key, tokenize

NEAR_MISSES = 3  # candidates shown per absent term: the closest few say enough
NEAR_FLOOR = 60.0  # a candidate scoring less is no near miss, only another word
MAX_WORDS = 500  # distinct item words scored per term: bounds a hostile, huge item
ITEM_FIELDS = ("title", "summary", "content", "tags")
VETOED = "vetoed by the term's `unless`"


@dataclass(frozen=True, slots=True)
class NearMiss:
    """An item word close to a word of a term that did not occur, and why it was refused."""

    word: str  # as the item writes it
    field: str
    term: str  # the term's label
    score: float
    reason: str

    def as_json(self) -> dict[str, object]:
        return {"word": self.word, "field": self.field, "term": self.term,
                "score": round(self.score, 1), "reason": self.reason}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Clause:
    """One clause of a rule and whether it held: for a failed one, why."""

    path: str  # `all[1]`, `all[2].not[0]`: the position in the rule's `match` tree
    clause: str  # `$contact`, `near [$russia_side, $cuba_side] within 8`
    holds: bool
    reason: str  # why it failed, or the words that made it hold
    absent: tuple[str, ...] = ()  # terms that did not occur
    near_misses: tuple[NearMiss, ...] = ()
    parts: tuple[Clause, ...] = ()  # the failed branches of an `any`

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "path": self.path, "clause": self.clause, "holds": self.holds, "reason": self.reason,
        }  # fmt: skip
        if self.absent:
            out["absent"] = list(self.absent)
        if self.near_misses:
            out["near_misses"] = [miss.as_json() for miss in self.near_misses]
        if self.parts:
            out["parts"] = [part.as_json() for part in self.parts]
        return out


@dataclass(frozen=True, slots=True)
class Verdict:
    """One rule over one item: matched or not, with the clauses that decided."""

    rule_id: str
    rule_title: str
    matched: bool
    clauses: tuple[Clause, ...] = field(default=())


def why_not(matcher: Matcher, item: Item, rule: CompiledRule) -> Verdict:
    """The verdict of `rule` on `item`, explained clause by clause."""
    info = rule.info
    if not in_scope(rule, item.feed_url):
        reason = f"the item's feed {item.feed_url} is not one of the rule's feeds"
        clause = Clause("feeds", ", ".join(info.feeds), holds=False, reason=reason)
        return Verdict(info.id, info.title, matched=False, clauses=(clause,))
    if rule.langs and (language := item_language(item)).code not in rule.langs:
        reason = f"skipped for language: the item is in {language.describe()}"
        clause = Clause("lang", ", ".join(sorted(rule.langs)), holds=False, reason=reason)
        return Verdict(info.id, info.title, matched=False, clauses=(clause,))
    # every field, not only those some rule reads: a term in a field the rule ignores is news
    found = matcher.occurrences(item, ITEM_FIELDS)
    walk = _Walk(matcher, item, rule, found)
    matched = evaluate(found, rule.fields, rule.root) is not None
    if isinstance(rule.root, AllNode):
        clauses = tuple(
            walk.clause(f"all[{index}]", child) for index, child in enumerate(rule.root.children)
        )
    else:
        clauses = (walk.clause("match", rule.root),)
    return Verdict(info.id, info.title, matched, clauses)


def describe(node: Node) -> str:
    """A clause as a rule editor would write it, on one line."""
    if isinstance(node, TermNode):
        return node.label
    inner = ", ".join(describe(child) for child in node.children)
    if isinstance(node, NearNode):
        order = " ordered" if node.ordered else ""
        return f"near [{inner}] within {node.within}{order}"
    name = {AllNode: "all", AnyNode: "any", NotNode: "not"}[type(node)]
    return f"{name} [{inner}]"


class _Walk:
    def __init__(self, matcher: Matcher, item: Item, rule: CompiledRule, found: ItemTerms) -> None:
        self._matcher = matcher
        self._item = item
        self._rule = rule
        self._found = found

    def _holds(self, node: Node) -> list[Occurrence] | None:
        return evaluate(self._found, self._rule.fields, node)

    def _words(self, hits: list[Occurrence]) -> str:
        seen = dict.fromkeys(
            f'"{self._item.field_text(hit.field)[hit.start : hit.end]}" ({hit.field})'
            for hit in sorted(hits, key=lambda h: (h.field, h.start))
        )
        return ", ".join(list(seen)[:6]) or "no term needed"

    def clause(self, path: str, node: Node) -> Clause:
        text = describe(node)
        hits = self._holds(node)
        if isinstance(node, NotNode):
            return self._not(path, text, node)
        if hits is not None:
            return Clause(path, text, holds=True, reason=self._words(hits))
        if isinstance(node, TermNode):
            return self._term(path, node)
        if isinstance(node, NearNode):
            return self._near(path, text, node)
        parts = tuple(
            self.clause(f"{path}.{'all' if isinstance(node, AllNode) else 'any'}[{index}]", child)
            for index, child in enumerate(node.children)
        )
        failed = tuple(part for part in parts if not part.holds)
        reason = "no branch holds" if isinstance(node, AnyNode) else "a branch does not hold"
        return Clause(path, text, holds=False, reason=reason, parts=failed)

    def _not(self, path: str, text: str, node: NotNode) -> Clause:
        vetoes = [
            (describe(child), hits)
            for child in node.children
            if (hits := self._holds(child)) is not None
        ]
        if not vetoes:
            return Clause(path, text, holds=True, reason="no exclusion occurs")
        reason = "; ".join(f"vetoed by {label}: {self._words(hits)}" for label, hits in vetoes)
        return Clause(path, text, holds=False, reason=reason)

    def _term(self, path: str, node: TermNode) -> Clause:
        terms = self._matcher.compiled_terms
        labels = tuple(terms[term].label for term in node.terms)
        elsewhere = sorted(
            {hit.field for term in node.terms for hit in self._found.hits.get(term, ())}
            - set(self._rule.fields)
        )
        in_fields = [hit for term in node.terms for hit in self._found.hits.get(term, ())
                     if hit.field in self._rule.fields]  # fmt: skip
        if in_fields:  # present, but every occurrence overlaps an `unless` of the set
            reason = f"vetoed by `unless`: {self._words(in_fields)}"
        elif elsewhere:
            reason = f"occurs only in {', '.join(elsewhere)}, which the rule does not read"
        elif len(labels) > 1:
            reason = f"no term of the set ({len(labels)} terms) occurs"
        else:
            reason = "does not occur"
        absent = labels if len(labels) <= NEAR_MISSES * 4 else ()
        misses = _NearMisses(self._matcher, self._item, self._rule, self._found).of(node)
        vetoed = [f'"{miss.word}" ({miss.field})' for miss in misses if miss.reason == VETOED]
        if vetoed and not in_fields:  # the term's own `unless` cancelled it as it was found
            reason = f"vetoed by `unless`: {', '.join(vetoed)}"
        return Clause(path, node.label, False, reason, absent, misses)

    def _near(self, path: str, text: str, node: NearNode) -> Clause:
        operands: list[list[Occurrence]] = []
        for index, child in enumerate(node.children):
            hits = self._holds(child)
            if not hits:
                inner = self.clause(f"{path}.near[{index}]", child)
                reason = f"{describe(child)} does not occur"
                return Clause(path, text, holds=False, reason=reason, parts=(inner,))
            operands.append(hits)
        return Clause(path, text, holds=False, reason=_near_reason(node, operands))


def _near_reason(node: NearNode, operands: list[list[Occurrence]]) -> str:
    """Why operands that all occur do not satisfy `near`: too far apart, in different fields,
    sharing a word or out of order."""
    gap: int | None = None
    shared = unordered = False
    common = set.intersection(*({hit.field for hit in hits} for hits in operands))
    for name in sorted(common):
        per_field = [[hit for hit in hits if hit.field == name] for hits in operands]
        for count, combination in enumerate(product(*per_field)):
            if count >= MAX_NEAR_COMBINATIONS:
                break
            if not separate(combination, ordered=False):
                shared = True
                continue
            if node.ordered and not separate(combination, ordered=True):
                unordered = True
                continue
            distance = max(h.first for h in combination) - min(h.last for h in combination)
            gap = distance if gap is None else min(gap, distance)
    if gap is not None:
        return f"outside `within`: the closest are {gap} words apart, within is {node.within}"
    if unordered:
        return "not in the order written (`ordered: true`)"
    if shared:
        return "the operands occur only on the same words"
    return "the operands occur in different fields"


class _NearMisses:
    """The item words closest to the words of the terms of a clause that did not occur."""

    def __init__(self, matcher: Matcher, item: Item, rule: CompiledRule, found: ItemTerms) -> None:
        self._matcher = matcher
        self._lexicon = matcher.lexicon
        self._item = item
        self._rule = rule
        self._found = found

    def of(self, node: TermNode) -> tuple[NearMiss, ...]:
        atoms: dict[int, int] = {}  # atom id → the first term of the clause that has it
        for term in node.terms:
            for phrase in self._matcher.compiled_terms[term].phrases:
                for atom_id in phrase:
                    atoms.setdefault(atom_id, term)
        misses: list[NearMiss] = []
        seen: set[tuple[str, int]] = set()
        for negative, name, _start, text, token, atom_id in self._scored(atoms):
            term = atoms[atom_id]
            if (token.folded, term) in seen:
                continue
            seen.add((token.folded, term))
            reason = self._refusal(name, text, token, atom_id, term)
            label = self._matcher.compiled_terms[term].label
            misses.append(NearMiss(text[token.start : token.end], name, label, -negative, reason))
            if len(misses) == NEAR_MISSES:
                break
        return tuple(misses)

    def _scored(self, atoms: dict[int, int]) -> list[tuple[float, str, int, str, Token, int]]:
        """(-closeness, field, offset, field text, word, atom) for every distinct item word
        and atom close enough to be a near miss, the closest first."""
        scored: list[tuple[float, str, int, str, Token, int]] = []
        words: set[str] = set()
        for name, text, tokens in self._fields():
            for token in tokens:
                if token.folded in words or len(words) >= MAX_WORDS:
                    continue
                words.add(token.folded)
                for atom_id in atoms:
                    score = _closeness(token, self._lexicon.atoms[atom_id])
                    if score >= NEAR_FLOOR:
                        scored.append((-score, name, token.start, text, token, atom_id))
        scored.sort(key=lambda row: row[:3])
        return scored

    def _fields(self) -> list[tuple[str, str, list[Token]]]:
        out = []
        for name in self._rule.fields:
            text = self._item.field_text(name)
            if text:
                out.append((name, text, tokenize(text)))
        return out

    def _refusal(self, name: str, text: str, token: Token, atom_id: int, term: int) -> str:
        atom = self._lexicon.atoms[atom_id]
        tokens = tokenize(text)
        index = next(i for i, t in enumerate(tokens) if t.start == token.start)
        lang = (self._item.lang or "").split("-")[0].split("_")[0].lower()
        reading = self._lexicon.lookup(
            token, cased_text=name != "tags", initial=starts_sentence(text, tokens, index),
            lang=lang,
        )  # fmt: skip
        if atom_id in reading:
            return self._accepted_word(name, index, term)
        return _refused_word(token, atom, name != "tags")

    def _accepted_word(self, name: str, index: int, term: int) -> str:
        """The word satisfies the atom: the rest of the phrase, or an `unless`, failed."""
        for first, last in ((f, t) for n, f, t in self._found.vetoes.get(term, ()) if n == name):
            if first <= index < last:
                return VETOED
        compiled = self._matcher.compiled_terms[term]
        if any(len(phrase) > 1 for phrase in compiled.phrases):
            return "the word fits, but the rest of the phrase does not follow it"
        return "the word fits, but an `unless` of the set vetoes it"


def _refused_word(token: Token, atom: Atom, cased_text: bool) -> str:
    """Why the lexicon does not take this word for the atom."""
    if atom.case_sensitive:
        return "case-sensitive: matches only as written"
    if atom.capital_only and cased_text and not token.cased[:1].isupper():
        return "a name: matches capitalized words only"
    if atom.mode == "substring":
        return "not contained in the word"
    if atom.mode == "prefix":
        return f"does not start with `{atom.key}`"
    if atom.mode == "exact":
        return _refused_exact(atom)
    return _refused_fuzzy(fold(token.lower or token.folded), atom)


def _refused_exact(atom: Atom) -> str:
    form = f"not a form of the dictionary word `{atom.inflect}`; " if atom.inflect else ""
    if default_threshold(atom.key) is None:
        return f"{form}words of 5 letters or fewer match exactly"
    return f"{form}the term matches exactly (fuzzy matching is off)"


def _refused_fuzzy(word: str, atom: Atom) -> str:
    """Why a fuzzy atom refuses the word: the guards of `Lexicon._probe_fuzzy`, in its order."""
    if atom.translit and is_latin(word) != is_latin(atom.key):
        ours, theirs = latin_key(word), latin_key(atom.key)
        if ours[:CROSS_SCRIPT_PREFIX] != theirs[:CROSS_SCRIPT_PREFIX]:
            return f"across scripts the first {CROSS_SCRIPT_PREFIX} letters differ"
        score = fuzz.ratio(ours, theirs)
    else:
        if word[:1] != atom.key[:1]:
            return "the first letter differs (fuzzy matching keeps it)"
        score = fuzz.ratio(word, atom.key)
    if score < atom.threshold:
        return f"below the threshold {atom.threshold:g}"
    return "refused by the item's language or the word's place in the sentence"


def _closeness(token: Token, atom: Atom) -> float:
    """How close a word is to an atom, 0-100, whatever the atom's mode: the ranking of near
    misses (the matcher's own rules decide the refusal)."""
    word = fold(token.lower or token.folded)
    key = atom.key if not atom.case_sensitive else fold(atom.key)
    target = word[: len(key)] if atom.mode == "prefix" else word
    score = fuzz.ratio(target, key)
    if atom.translit and is_latin(word) != is_latin(key):
        score = max(score, fuzz.ratio(latin_key(target), latin_key(key)))
    return float(score)
