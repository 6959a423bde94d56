"""Matching one item against every compiled rule, with the evidence.

    item fields --tokenize--> words --Lexicon.lookup--> atoms --phrases--> term occurrences
                --rule trees (all/any/not/near)--> Match(hits = the occurrences that decided)

Term occurrences are computed once per item and shared by every rule; a rule none of whose
positive terms occurred is skipped without walking its tree.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from itertools import pairwise, product
from typing import TYPE_CHECKING

from monitor.durations import Budget
from monitor.matching.language import Lazy
from monitor.matching.lexicon import HOW_ORDER, Lexicon, Via
from monitor.models import Item, Match, TermHit
from monitor.text import Token, tokenize

if TYPE_CHECKING:
    from monitor.matching.catalog import RuleExample, TermSetInfo
    from monitor.matching.problems import RuleProblem

MAX_NEAR_COMBINATIONS = 4096  # bounds the proximity search on pathological items
MAX_HITS_PER_TERM = 3  # evidence per term and field: enough to see why, short enough to read


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """What the rest of monitor needs to know about a rule."""

    id: str
    title: str
    severity: str
    feeds: tuple[str, ...]  # empty: every feed
    budget: Budget | None = None  # `max_alerts`: alerts a webhook gets one by one per window


@dataclass(frozen=True, slots=True)
class CompiledTerm:
    label: str  # the term as the rule file writes it
    phrases: tuple[tuple[int, ...], ...]  # atom ids, one tuple per alternative form
    unless: tuple[tuple[int, ...], ...]  # phrases that cancel an overlapping hit


@dataclass(frozen=True, slots=True, order=True)
class Occurrence:
    term: int
    field: str
    first: int  # word positions, last exclusive
    last: int
    start: int  # character offsets in the field's original text
    end: int
    score: float
    how: str = "exact"  # the loosest way a word of the phrase matched (lexicon.How)
    lang: str = ""  # the language of an inflected or transliterated form


@dataclass(frozen=True, slots=True)
class TermNode:
    terms: tuple[int, ...]  # a literal term is one; a `$set` is all of its terms
    label: str
    # terms of the set that have `unless` phrases: those phrases cancel every term of the set
    # (`Cuban American` stops the fuzzy `Cubans` too, not only `Cuban`)
    vetoed_by: tuple[int, ...] = ()
    term_set: frozenset[int] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "term_set", frozenset(self.terms))


@dataclass(frozen=True, slots=True)
class AllNode:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyNode:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class NotNode:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class NearNode:
    children: tuple[Node, ...]
    within: int
    ordered: bool = False  # the operands must occur in the order written


Node = TermNode | AllNode | AnyNode | NotNode | NearNode


@dataclass(frozen=True, slots=True)
class CompiledRule:
    info: RuleInfo
    fields: tuple[str, ...]
    root: Node
    triggers: frozenset[int]  # terms of which at least one must occur for the rule to match
    feed_patterns: tuple[re.Pattern[str], ...] = field(default=())
    fulltext: bool = False  # reads the article pages of its candidates (docs/rules.md)
    prefilter: Node | None = None  # which items are candidates; None: some required part occurs
    langs: frozenset[str] = field(default=frozenset())  # empty: every language


Hits = list[Occurrence]
Span = tuple[str, int, int]  # field, first word, last word (exclusive)


@dataclass(slots=True)
class ItemTerms:
    """Every term occurrence in one item, and the spans of each term's `unless` phrases."""

    hits: dict[int, Hits] = field(default_factory=lambda: defaultdict(list))
    vetoes: dict[int, list[Span]] = field(default_factory=lambda: defaultdict(list))


class _Evaluation:
    """One rule over one item's occurrences."""

    def __init__(self, found: ItemTerms, fields: tuple[str, ...]) -> None:
        self._occurrences = found.hits
        self._vetoes = found.vetoes
        self._fields = fields

    def run(self, node: Node) -> Hits | None:
        """The occurrences that make `node` true, or None when it is false."""
        if isinstance(node, TermNode):
            return self._term(node)
        if isinstance(node, AllNode):
            hits: Hits = []
            for child in node.children:
                found = self.run(child)
                if found is None:
                    return None
                hits.extend(found)
            return hits
        if isinstance(node, AnyNode):
            results = [found for child in node.children if (found := self.run(child)) is not None]
            return [hit for found in results for hit in found] if results else None
        if isinstance(node, NotNode):
            return None if any(self.run(child) is not None for child in node.children) else []
        return self._near(node)

    def _term(self, node: TermNode) -> Hits | None:
        # an item has few terms and a set may have hundreds: walk the item's
        hits = [
            occurrence
            for term, occurrences in self._occurrences.items()
            if term in node.term_set
            for occurrence in occurrences
            if occurrence.field in self._fields
        ]
        if hits and node.vetoed_by:
            spans = [span for term in node.vetoed_by for span in self._vetoes.get(term, ())]
            hits = [hit for hit in hits if not _overlaps(hit, spans)]
        return hits or None

    def _near(self, node: NearNode) -> Hits | None:
        operands: list[Hits] = []
        for child in node.children:
            found = self.run(child)
            if not found:
                return None
            operands.append(found)
        best: tuple[int, float, tuple[Occurrence, ...]] | None = None
        for field_name in sorted({hit.field for hit in operands[0]}):
            per_field = [[hit for hit in hits if hit.field == field_name] for hits in operands]
            if not all(per_field):
                continue
            for count, combination in enumerate(product(*per_field)):
                if count >= MAX_NEAR_COMBINATIONS:
                    break
                if not _separate(combination, node.ordered):
                    continue
                gap = max(hit.first for hit in combination) - min(hit.last for hit in combination)
                # the closest combination; among equals, the best-scoring
                key = (gap, -sum(hit.score for hit in combination), combination)
                if gap <= node.within and (best is None or key < best):
                    best = key
        return list(best[2]) if best is not None else None


class Matcher:
    """Compiled rules, ready to match items. Build it with `compile_rules`."""

    def __init__(
        self, lexicon: Lexicon, terms: list[CompiledTerm], rules: list[CompiledRule]
    ) -> None:
        self.rules: tuple[RuleInfo, ...] = tuple(rule.info for rule in rules)
        # hints and warnings about the rules, for `monitor check` (lint.py)
        self.notes: tuple[RuleProblem, ...] = ()
        # for `monitor terms` and the examples `monitor check` runs (catalog.py)
        self.term_sets: tuple[TermSetInfo, ...] = ()
        self.examples: tuple[RuleExample, ...] = ()
        self._atom_labels: dict[int, str] = {}
        self._lexicon = lexicon
        self._terms = terms
        self._rules = rules
        self._fields = tuple(
            name
            for name in ("title", "summary", "content", "tags")
            if any(name in rule.fields for rule in rules)
        )
        self._starts: dict[int, list[tuple[int, tuple[int, ...], bool]]] = defaultdict(list)
        # the quick first look: which terms may occur given the atoms present, and which rules
        # may then match (each rule is filed under the smallest group of terms it requires)
        self._maybe: dict[int, list[tuple[int, frozenset[int]]]] = defaultdict(list)
        for term_id, term in enumerate(terms):
            for phrase in term.phrases:
                self._starts[phrase[0]].append((term_id, phrase, False))
                self._maybe[phrase[0]].append((term_id, frozenset(phrase)))
            for phrase in term.unless:
                self._starts[phrase[0]].append((term_id, phrase, True))
        self._required = [_required(rule.root) for rule in rules]
        self._anchors: dict[int, list[int]] = defaultdict(list)
        self._always: set[int] = set()  # rules that require no term (none compile so; defensive)
        for index, groups in enumerate(self._required):
            if not groups:
                self._always.add(index)
            for term_id in min(groups, key=len, default=()):
                self._anchors[term_id].append(index)

    @property
    def lexicon(self) -> Lexicon:
        return self._lexicon

    @property
    def compiled_terms(self) -> tuple[CompiledTerm, ...]:
        return tuple(self._terms)

    @property
    def compiled_rules(self) -> tuple[CompiledRule, ...]:
        return tuple(self._rules)

    def term_labels(self) -> list[str]:
        """Every term of the rules, as the rule files write it."""
        return [term.label for term in self._terms]

    def word_matches(self, token: Token) -> list[tuple[str, str, str]]:
        """The terms one word satisfies on its own, as (term, how, language): a look at the
        vocabulary for tools (bench/eval_rules.py --collisions lists false-friend candidates)."""
        if not self._atom_labels:
            self._atom_labels = {
                atom: term.label for term in self._terms for phrase in term.phrases
                for atom in phrase
            }  # fmt: skip
        found = self._lexicon.lookup(token, initial=False)
        return [
            (self._atom_labels[atom], how, lang)
            for atom, (_score, how, lang) in found.items()
            if atom in self._atom_labels
        ]

    @property
    def reads_pages(self) -> bool:
        """Whether some rule reads article pages whatever its feed says."""
        return any(rule.fulltext for rule in self._rules)

    def page_candidates(
        self, item: Item, matched: Collection[str], *, every_rule: bool = False
    ) -> tuple[str, ...]:
        """The rules for which the item's article page is worth fetching: they read pages
        (their `fulltext`, or every rule with `every_rule`: the feed's), search `content`, watch
        the item's feed, did not match it (`matched`), and their prefilter holds on its text."""
        wanting = [
            (index, rule)
            for index, rule in enumerate(self._rules)
            if (every_rule or rule.fulltext)
            and "content" in rule.fields
            and rule.info.id not in matched
            and _in_scope(rule, item.feed_url)
        ]
        if not wanting:
            return ()
        found = self.occurrences(item)
        return tuple(
            rule.info.id for index, rule in wanting if self._prefilter_holds(found, index, rule)
        )

    def _prefilter_holds(self, found: ItemTerms, index: int, rule: CompiledRule) -> bool:
        if rule.prefilter is not None:
            return _Evaluation(found, rule.fields).run(rule.prefilter) is not None
        groups = self._required[index]
        return len(groups) >= 2 and any(
            hit.field in rule.fields
            for group in groups
            for term in group
            for hit in found.hits.get(term, ())
        )

    def match(self, item: Item) -> list[Match]:
        """One `Match` per rule the item satisfies, in rule order."""
        candidates, fields = self._candidates(item)
        if not candidates:
            return []
        found = self.occurrences(item, fields)
        if not found.hits:
            return []
        matches: list[Match] = []
        for rule in candidates:
            if rule.triggers.isdisjoint(found.hits):
                continue
            hits = _Evaluation(found, rule.fields).run(rule.root)
            if hits is None:
                continue
            matches.append(self._to_match(rule, item, hits))
        return matches

    def _candidates(self, item: Item) -> tuple[list[CompiledRule], list[str]]:
        """The rules that may match, in rule order, from the words of the item alone: a rule
        whose required terms cannot all occur (a word of each is missing) is not a candidate.
        Most news items stop here, at the cost of one dict probe per distinct word. Also
        returns the fields where some term may occur."""
        atoms: set[int] = set()
        fields: list[str] = []
        for name in self._fields:
            text = item.field_text(name)
            present = self._lexicon.atoms_in(text) if text else None
            if present:
                atoms |= present
                fields.append(name)
        if not atoms and not self._always:
            return [], fields
        terms = {
            term_id
            for atom_id in atoms
            for term_id, needed in self._maybe.get(atom_id, ())
            if needed <= atoms
        }
        indexes = {index for term_id in terms for index in self._anchors.get(term_id, ())}
        language = Lazy(item)  # identified only for a `lang:` rule the words leave standing
        candidates = [
            self._rules[index]
            for index in sorted(indexes | self._always)
            if _in_scope(self._rules[index], item.feed_url)
            and all(not group.isdisjoint(terms) for group in self._required[index])
            and language.among(self._rules[index].langs)
        ]
        return candidates, fields

    def occurrences(self, item: Item, fields: Iterable[str] | None = None) -> ItemTerms:
        """Every term occurrence in the item (or in some of its fields), by term id."""
        found = ItemTerms()
        for name in self._fields if fields is None else fields:
            text = item.field_text(name)
            if text:
                self._scan(name, text, found, _language(item.lang))
        return found

    def _scan(self, field_name: str, text: str, found: ItemTerms, lang: str = "") -> None:
        tokens = tokenize(text)
        cased_text = field_name != "tags"
        words = [
            self._lexicon.lookup(
                token,
                cased_text=cased_text,
                initial=_starts_sentence(text, tokens, index),
                lang=lang,
            )
            for index, token in enumerate(tokens)
        ]
        hits: dict[tuple[int, int], Occurrence] = {}
        vetoes: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for position, atoms in enumerate(words):
            for atom_id in atoms:
                for term_id, phrase, is_veto in self._starts.get(atom_id, ()):
                    via = _phrase_score(words, position, phrase)
                    if via is None:
                        continue
                    score = via[0]
                    last = position + len(phrase)
                    if is_veto:
                        vetoes[term_id].append((position, last))
                        continue
                    known = hits.get((term_id, position))
                    if known is None or score > known.score or last > known.last:
                        hits[(term_id, position)] = Occurrence(
                            term_id, field_name, position, last,
                            tokens[position].start, tokens[last - 1].end, score,
                            via[1], via[2],
                        )  # fmt: skip
        for term_id, spans in vetoes.items():
            found.vetoes[term_id].extend((field_name, first, last) for first, last in spans)
        for (term_id, _), occurrence in sorted(hits.items()):
            if _overlaps(occurrence, found.vetoes.get(term_id, ())):
                continue
            found.hits[term_id].append(occurrence)

    def _to_match(self, rule: CompiledRule, item: Item, hits: Hits) -> Match:
        best: dict[tuple[str, int, int], Occurrence] = {}
        for hit in hits:  # one hit per span: the best-scoring term that found it
            span = (hit.field, hit.start, hit.end)
            if span not in best or (-hit.score, hit.term) < (-best[span].score, best[span].term):
                best[span] = hit
        # a long article repeats names: keep the first few hits of each term in each field, in
        # the order the rule found them (so the pair that satisfied a `near` stays)
        kept: dict[Occurrence, None] = {}
        seen: dict[tuple[int, str], int] = defaultdict(int)
        for hit in hits:
            key = (hit.term, hit.field)
            if hit in kept or best[(hit.field, hit.start, hit.end)] is not hit:
                continue
            if seen[key] < MAX_HITS_PER_TERM:
                seen[key] += 1
                kept[hit] = None
        unique = sorted(kept, key=lambda h: (self._fields.index(h.field), h.start, h.end))
        term_hits = tuple(
            TermHit(
                term=self._terms[hit.term].label,
                field=hit.field,
                text=item.field_text(hit.field)[hit.start : hit.end],
                start=hit.start,
                end=hit.end,
                score=hit.score,
                how=hit.how,
                lang=hit.lang.split(",")[0] or None,
            )
            for hit in unique
        )
        score = sum(hit.score for hit in unique) / len(unique) if unique else 100.0
        return Match(
            rule_id=rule.info.id,
            rule_title=rule.info.title,
            severity=rule.info.severity,
            score=round(score, 1),
            hits=term_hits,
        )


def evaluate(found: ItemTerms, fields: tuple[str, ...], node: Node) -> Hits | None:
    """The occurrences that make `node` true over `fields`, or None: for the why-not path."""
    return _Evaluation(found, fields).run(node)


def _phrase_score(
    words: list[dict[int, Via]], position: int, phrase: tuple[int, ...]
) -> Via | None:
    """When `phrase` matches the words from `position` on: the mean atom score, the loosest
    way a word matched and the language of the first analyzed word; else None."""
    if position + len(phrase) > len(words):
        return None
    if len(phrase) == 1:
        return words[position].get(phrase[0])
    total = 0.0
    how, lang = "exact", ""
    for offset, atom_id in enumerate(phrase):
        via = words[position + offset].get(atom_id)
        if via is None:
            return None
        total += via[0]
        if HOW_ORDER[via[1]] > HOW_ORDER[how]:
            how = via[1]
        lang = lang or via[2]
    return total / len(phrase), how, lang  # type: ignore[return-value]


_SENTENCE_END = frozenset('.!?:;«»"“”—–-|\n')


def _language(tag: str | None) -> str:
    """The primary language of an item's language tag: `en-US` → `en`; "" when none."""
    return (tag or "").split("-")[0].split("_")[0].lower()


def _starts_sentence(text: str, tokens: list[Token], index: int) -> bool:
    """Whether the word starts the field or follows a sentence end (or a quote or dash)."""
    if index == 0:
        return True
    between = text[tokens[index - 1].end : tokens[index].start]
    return any(ch in _SENTENCE_END for ch in between)


def _in_scope(rule: CompiledRule, feed_url: str) -> bool:
    """Whether the rule watches this feed. An item with no feed URL (a `monitor match` dry run)
    is in every rule's scope."""
    if not rule.feed_patterns or not feed_url:
        return True
    return any(pattern.fullmatch(feed_url) for pattern in rule.feed_patterns)


def _overlaps(hit: Occurrence, spans: Iterable[Span]) -> bool:
    return any(
        name == hit.field and first < hit.last and hit.first < last for name, first, last in spans
    )


def _separate(hits: tuple[Occurrence, ...], ordered: bool) -> bool:
    """Whether no two hits share a word (one word cannot stand for two operands of `near`),
    and, when `ordered`, whether they come in operand order."""
    if ordered:
        return all(a.last <= b.first for a, b in pairwise(hits))
    spans = sorted((hit.first, hit.last) for hit in hits)
    return all(a[1] <= b[0] for a, b in pairwise(spans))


def _required(node: Node) -> list[frozenset[int]]:
    """Groups of terms of which at least one each must occur for the node to hold."""
    if isinstance(node, TermNode):
        return [frozenset(node.terms)]
    if isinstance(node, AllNode | NearNode):
        return [group for child in node.children for group in _required(child)]
    if isinstance(node, AnyNode):
        groups = [_required(child) for child in node.children]
        if not all(groups):
            return []  # a branch with no term (an exclusion) can hold alone
        return [frozenset().union(*(min(g, key=len) for g in groups))]
    return []


# for the why-not path (whynot.py), which walks the same rules the same way
in_scope = _in_scope
required_groups = _required
separate = _separate
starts_sentence = _starts_sentence
