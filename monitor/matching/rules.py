"""Compiling validated rule files into a `Matcher`, and every semantic problem on the way.

Pydantic (schema.py) checks the shape of each file; this module checks what only all files
together can tell: rule ids unique across files, term sets defined once and referenced by
name, no empty group, thresholds in range, and no rule that can never match (or that would
match every item). All problems are collected, each with the path into that file's YAML data.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from monitor.durations import parse_budget
from monitor.matching.lexicon import (
    MAX_FORMS,
    Lexicon,
    alternative_count,
    atom_for,
    expand_alternatives,
)
from monitor.matching.lint import term_advice
from monitor.matching.matcher import (
    AllNode,
    AnyNode,
    CompiledRule,
    CompiledTerm,
    Matcher,
    NearNode,
    Node,
    NotNode,
    RuleInfo,
    TermNode,
)
from monitor.matching.morph import ANALYZERS, DEFAULT_ANALYZER, Analyzer
from monitor.matching.problems import Loc, RuleProblem
from monitor.matching.schema import GROUP_KEYS, Condition, RuleFile, TermSpec
from monitor.text import Token, tokenize

DEFAULT_WITHIN = 8


TAG_PREFIX = "tag:"  # a rule's `feeds:` entry naming the feeds with a tag, not a URL pattern


class _Compiler:
    def __init__(
        self, analyzer: Analyzer | None, feed_tags: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        self.feed_tags = feed_tags or {}  # tag -> the URLs of the feeds that have it
        self.lexicon = Lexicon(analyzer)
        self.terms: list[CompiledTerm] = []
        self.problems: list[RuleProblem] = []
        self.notes: list[RuleProblem] = []  # hints and warnings (lint.py)
        self._term_ids: dict[tuple[object, ...], int] = {}
        self._sets: dict[str, tuple[Path, list[TermSpec]]] = {}
        self._expanded: dict[str, tuple[int, ...] | None] = {}
        self._expanding: list[str] = []

    def problem(self, path: Path, loc: Loc, message: str) -> None:
        self.problems.append(RuleProblem(path, loc, message))

    # -- term sets ---------------------------------------------------------------------------

    def collect_sets(self, files: Sequence[tuple[Path, RuleFile]]) -> None:
        first: dict[str, Path] = {}
        for path, rule_file in files:
            for name, entries in rule_file.terms.items():
                if name in first:
                    self.problem(
                        path, ("terms", name),
                        f"term set `{name}` is already defined in {first[name]}",
                    )  # fmt: skip
                    continue
                first[name] = path
                self._sets[name] = (path, entries)
        for name in self._sets:
            self.expand_set(name)

    def expand_set(self, name: str) -> tuple[int, ...] | None:
        """The term ids of a set (nested sets included), or None when it is broken."""
        if name in self._expanded:
            return self._expanded[name]
        path, entries = self._sets[name]
        if name in self._expanding:
            cycle = " → ".join(f"${n}" for n in [*self._expanding, name])
            self.problem(path, ("terms", name), f"term sets include each other: {cycle}")
            return None
        self._expanding.append(name)
        ids: list[int] = []
        for index, spec in enumerate(entries):
            loc: Loc = ("terms", name, index)
            if spec.term.startswith("$"):
                ids.extend(self.reference(path, loc, spec) or ())
            else:
                term_id = self.term(path, loc, spec)
                if term_id is not None:
                    ids.append(term_id)
        self._expanding.pop()
        if not entries:
            self.problem(path, ("terms", name), f"term set `{name}` is empty")
        result = tuple(dict.fromkeys(ids))
        self._expanded[name] = result
        return result

    def reference(self, path: Path, loc: Loc, spec: TermSpec | Condition) -> tuple[int, ...] | None:
        name = (spec.term or "")[1:]
        options = sorted(spec.model_fields_set - {"term"})
        if options:
            self.problem(path, (*loc, options[0]), "options do not apply to a `$set` reference")
        if name not in self._sets:
            close = difflib.get_close_matches(name, list(self._sets), n=1)
            hint = f" (did you mean `${close[0]}`?)" if close else ""
            self.problem(path, loc, f"unknown term set `${name}`{hint}")
            return None
        return self.expand_set(name)

    # -- terms -------------------------------------------------------------------------------

    def term(self, path: Path, loc: Loc, spec: TermSpec | Condition) -> int | None:
        text = spec.term or ""
        if (wrong := _shape_problem(text, spec)) is not None:
            where, message = wrong
            self.problem(path, (*loc, *where), message)
            return None
        body = text
        prefix = spec.prefix
        key = (body, prefix, spec.fuzzy, spec.threshold, spec.whole_word,
               spec.case_sensitive, spec.translit, spec.exact, tuple(spec.unless))  # fmt: skip
        if key in self._term_ids:
            return self._term_ids[key]
        for severity, message in term_advice(spec, self.lexicon.analyzer, _is_name):
            self.notes.append(RuleProblem(path, loc, message, severity))
        phrases = tuple(
            phrase
            for variant in expand_alternatives(body)
            if (phrase := self.phrase(variant, spec, prefix))
        )
        if not phrases:
            self.problem(path, loc, f"term `{text}` has no letters or digits to match")
            return None
        unless = tuple(
            phrase
            for other in spec.unless
            if (phrase := self.phrase(other, TermSpec(term=other), False))
        )
        self.terms.append(CompiledTerm(label=text, phrases=phrases, unless=unless))
        self._term_ids[key] = len(self.terms) - 1
        return len(self.terms) - 1

    def phrase(self, text: str, spec: TermSpec | Condition, prefix: bool) -> tuple[int, ...]:
        """The atoms of one variant of a term; a word ending in `*` is a prefix, and so is the
        last word when the term sets `prefix`."""
        atoms: list[int] = []
        chunks = text.split()
        for number, chunk in enumerate(chunks):
            words = tokenize(chunk.removesuffix("*"))
            for index, word in enumerate(words):
                is_last = index == len(words) - 1
                atom = atom_for(
                    word.cased if spec.case_sensitive else word.folded,
                    fuzzy=spec.fuzzy,
                    threshold=spec.threshold,
                    prefix=is_last
                    and (chunk.endswith("*") or (prefix and number == len(chunks) - 1)),
                    whole_word=spec.whole_word,
                    case_sensitive=spec.case_sensitive,
                    translit=spec.translit,
                    exact=spec.exact,
                    written=word,
                    analyze=self.lexicon.analyzer is not None,
                )
                atoms.append(self.lexicon.add(atom))
        return tuple(atoms)

    # -- conditions --------------------------------------------------------------------------

    def condition(self, path: Path, loc: Loc, cond: Condition) -> Node | None:
        """The compiled condition, or None when it is broken (the problem is recorded)."""
        if cond.term is not None:
            if cond.term.startswith("$"):
                ids = self.reference(path, loc, cond)
                if ids is None:
                    return None
                vetoed_by = tuple(term for term in ids if self.terms[term].unless)
                return TermNode(ids, cond.term, vetoed_by)
            term_id = self.term(path, loc, cond)
            return None if term_id is None else TermNode((term_id,), cond.term)
        parts: list[Node] = []
        broken = False
        for key in GROUP_KEYS:
            children = cond.group(key)
            if children is None:
                continue
            if not children:
                self.problem(path, (*loc, key), f"empty `{key}` group")
                broken = True
                continue
            compiled = [self.condition(path, (*loc, key, i), c) for i, c in enumerate(children)]
            if any(node is None for node in compiled):
                broken = True
                continue
            nodes = tuple(node for node in compiled if node is not None)
            part = self.group(path, (*loc, key), key, nodes, cond)
            if part is None:
                broken = True
            else:
                parts.append(part)
        if broken or not parts:
            return None
        return parts[0] if len(parts) == 1 else AllNode(_flatten(tuple(parts)))

    def group(
        self, path: Path, loc: Loc, key: str, nodes: tuple[Node, ...], cond: Condition
    ) -> Node | None:
        if key == "all":
            return AllNode(_flatten(nodes))
        if key == "any":
            return AnyNode(nodes)
        if key == "not":
            return NotNode(nodes)
        return self.near(path, loc, nodes, cond)

    def near(self, path: Path, loc: Loc, nodes: tuple[Node, ...], cond: Condition) -> Node | None:
        within = cond.within
        for index, node in enumerate(nodes):
            if not _is_near_operand(node):
                message = "`near` takes terms, `$sets` or `any` groups of terms"
                self.problem(path, (*loc, index), message)
                return None
        if len(nodes) < 2:
            self.problem(path, loc, "`near` needs at least two terms")
            return None
        if within is not None and not 0 <= within <= 1000:
            self.problem(path, (*loc[:-1], "within"), "`within` must be between 0 and 1000 words")
            return None
        return NearNode(nodes, DEFAULT_WITHIN if within is None else within, bool(cond.ordered))

    # -- rules -------------------------------------------------------------------------------

    def rules(self, files: Sequence[tuple[Path, RuleFile]]) -> list[CompiledRule]:
        compiled: list[CompiledRule] = []
        seen: dict[str, Path] = {}
        for path, rule_file in files:
            for index, rule in enumerate(rule_file.rules):
                loc: Loc = ("rules", index)
                if rule.id in seen:
                    self.problem(
                        path,
                        (*loc, "id"),
                        f"rule id `{rule.id}` is already used in {seen[rule.id]}",
                    )
                    continue
                seen[rule.id] = path
                root = self.condition(path, (*loc, "match"), rule.match)
                if root is None:
                    continue
                if not _can_match(root):
                    self.problem(
                        path,
                        (*loc, "match"),
                        f"rule `{rule.id}` can never match: it requires a term it also excludes",
                    )
                    continue
                if not _positive(root):
                    self.problem(
                        path,
                        (*loc, "match"),
                        f"rule `{rule.id}` has no positive term: it would match every item",
                    )
                    continue
                budget = parse_budget(rule.max_alerts) if rule.max_alerts else None
                info = RuleInfo(rule.id, rule.title, rule.severity, tuple(rule.feeds), budget)
                patterns = self.feed_patterns(path, (*loc, "feeds"), rule.feeds)
                if patterns is None:
                    continue
                fields = tuple(dict.fromkeys(rule.fields))
                langs = frozenset(rule.lang)
                compiled.append(CompiledRule(info, fields, root, _triggers(root), patterns, langs))
        return compiled

    def feed_patterns(
        self, path: Path, loc: Loc, feeds: Sequence[str]
    ) -> tuple[re.Pattern[str], ...] | None:
        """A rule's `feeds:` as patterns of feed URLs: globs as written, `tag:NAME` as the URLs
        of the feeds with that tag; None when a tag is unknown (a problem is recorded)."""
        patterns: list[re.Pattern[str]] = []
        known = True
        for index, feed in enumerate(feeds):
            if not feed.startswith(TAG_PREFIX):
                patterns.append(re.compile(fnmatch.translate(feed)))
                continue
            tag = feed.removeprefix(TAG_PREFIX)
            urls = self.feed_tags.get(tag)
            if urls is None:
                close = difflib.get_close_matches(tag, sorted(self.feed_tags), n=1)
                hint = f"; did you mean `tag:{close[0]}`?" if close else ""
                message = f"unknown feed tag `{tag}`: no feed in monitor.yaml has it{hint}"
                self.problem(path, (*loc, index), message)
                known = False
                continue
            patterns.extend(re.compile(re.escape(url)) for url in urls)
        return tuple(patterns) if known else None


def _is_name(token: Token) -> bool:
    return token.cased[:1].isupper()


_ANALYZER_CACHE: dict[str, Analyzer] = {}


def _analyzer(name: str | None) -> Analyzer | None:
    if name is None:
        return None
    if name not in _ANALYZER_CACHE:
        _ANALYZER_CACHE[name] = ANALYZERS[name]()
    return _ANALYZER_CACHE[name]


def _is_near_operand(node: Node) -> bool:
    if isinstance(node, AnyNode):
        return all(isinstance(child, TermNode) for child in node.children)
    return isinstance(node, TermNode)


def _flatten(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    out: list[Node] = []
    for node in nodes:
        out.extend(node.children if isinstance(node, AllNode) else (node,))
    return tuple(out)


def _can_match(node: Node) -> bool:
    if isinstance(node, TermNode):
        return bool(node.terms)
    if isinstance(node, NotNode):
        return True
    if isinstance(node, AnyNode):
        return any(_can_match(child) for child in node.children)
    if not all(_can_match(child) for child in node.children):
        return False
    if isinstance(node, AllNode):
        excluded = {
            term
            for child in node.children
            if isinstance(child, NotNode)
            for grandchild in child.children
            if isinstance(grandchild, TermNode)
            for term in grandchild.terms
        }
        required = [c for c in node.children if isinstance(c, TermNode)]
        return not any(set(child.terms) <= excluded for child in required)
    return True


def _positive(node: Node) -> bool:
    """Whether every way of satisfying the node needs at least one term to occur."""
    if isinstance(node, TermNode | NearNode):
        return True
    if isinstance(node, NotNode):
        return False
    if isinstance(node, AllNode):
        return any(_positive(child) for child in node.children)
    return all(_positive(child) for child in node.children)


def _triggers(node: Node) -> frozenset[int]:
    if isinstance(node, TermNode):
        return frozenset(node.terms)
    if isinstance(node, NotNode):
        return frozenset()
    return frozenset().union(*(_triggers(child) for child in node.children))


def compile_rules(
    files: Sequence[tuple[Path, RuleFile]],
    *,
    analyzer: str | None = DEFAULT_ANALYZER,
    feed_tags: Mapping[str, Sequence[str]] | None = None,
) -> Matcher | list[RuleProblem]:
    """All rule files at once (term sets are shared across files): a `Matcher`, or every
    problem found, in file order. `analyzer`: the morphology that inflects plain words
    (`morph`, the default; `lemma`, `stem`: see morph.py; None: every word matches as
    written). `feed_tags`: the config's feeds by tag, for rules' `feeds: [tag:NAME]`."""
    compiler = _Compiler(_analyzer(analyzer), feed_tags)
    compiler.collect_sets(files)
    rules = compiler.rules(files)
    if compiler.problems:
        order = {path: index for index, (path, _) in enumerate(files)}
        return sorted(compiler.problems, key=lambda problem: order.get(problem.path, len(order)))
    matcher = Matcher(compiler.lexicon, compiler.terms, rules)
    matcher.notes = tuple(compiler.notes)
    return matcher


def _shape_problem(text: str, spec: TermSpec | Condition) -> tuple[Loc, str] | None:
    """What is wrong with a term as written (where under its key, and what), if anything."""
    if spec.threshold is not None and not 0 <= spec.threshold <= 100:
        return ("threshold",), "threshold must be between 0 and 100"
    if re.search(r"\*(?=[^\s*])|\*\*", text):
        return (), f"`*` may only end a word: `{text}`"
    if text.count("(") != text.count(")") or re.search(r"\([^)]*\(|\)[^(]*\)", text):
        return (), f"unbalanced or nested parentheses in `{text}`"
    if (forms := alternative_count(text)) > MAX_FORMS:
        return (), (
            f"`{text[:80]}` makes {forms:,} forms (at most {MAX_FORMS}): split it into terms, "
            "or let inflection find the endings"
        )
    return None
