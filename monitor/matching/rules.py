"""Compiling validated rule files into a `Matcher`, and every semantic problem on the way.

Pydantic (schema.py) checks the shape of each file; this module checks what only all files
together can tell: rule ids unique across files, term sets referenced by name where they are
visible (a file's own sets, and the sets of `shared: true` files), no empty group, thresholds
in range, and no rule that can never match (or that would match every item). All problems are
collected, each with the path into that file's YAML data; a file that partly failed
validation is compiled from the parts that passed, so one run finds every problem.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from monitor.durations import parse_budget
from monitor.matching.catalog import RuleExample, TermSetInfo
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
    required_groups,
)
from monitor.matching.morph import ANALYZERS, DEFAULT_ANALYZER, Analyzer
from monitor.matching.problems import Loc, RuleProblem
from monitor.matching.schema import GROUP_KEYS, Condition, Rule, RuleFile, TermSpec
from monitor.models import Item
from monitor.text import Token, tokenize

DEFAULT_WITHIN = 8


@dataclass(frozen=True)
class RuleSource:
    """One rule file for the compiler: the parts of it that validated, and what is known of
    the parts that did not (so that one run reports every problem, and none twice)."""

    path: Path
    file: RuleFile
    # where each rule of `file.rules` is in the YAML list (a rule that did not validate is left
    # out, and the others keep their places); None: 0, 1, 2…
    rule_indexes: tuple[int, ...] | None = None
    broken_sets: frozenset[str] = frozenset()  # set names whose definition did not validate
    broken_rule_ids: tuple[str, ...] = ()  # ids of rules that did not validate

    def indexed_rules(self) -> list[tuple[int, Rule]]:
        indexes = self.rule_indexes or range(len(self.file.rules))
        return list(zip(indexes, self.file.rules, strict=True))


@dataclass
class Compiled:
    """What compiling gives: a matcher when there is no error, every problem, and every rule id
    the files declare (broken rules included, so a webhook naming one is no second error)."""

    matcher: Matcher | None
    problems: list[RuleProblem]
    rule_ids: frozenset[str]


SetKey = tuple[Path | None, str]  # (the file, for a set of its own; None for a shared set), name


@dataclass
class _Set:
    path: Path
    entries: list[TermSpec]
    shared: bool
    rules: set[str] = field(default_factory=set)  # ids of the rules that refer to it
    sets: set[SetKey] = field(default_factory=set)  # the sets that include it


_NO_FEED = re.compile(r"(?!)")  # matches no URL
TAG_PREFIX = "tag:"  # a rule's `feeds:` entry naming the feeds with a tag, not a URL pattern


class _Compiler:
    def __init__(
        self, analyzer: Analyzer | None, feed_tags: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        # tag -> the URLs of the feeds that have it; None: not known (monitor.yaml is invalid)
        self.feed_tags = feed_tags
        self.lexicon = Lexicon(analyzer)
        self.terms: list[CompiledTerm] = []
        self.problems: list[RuleProblem] = []
        self.notes: list[RuleProblem] = []  # hints and warnings (lint.py)
        self.examples: list[RuleExample] = []
        self._term_ids: dict[tuple[object, ...], int] = {}
        self._sets: dict[SetKey, _Set] = {}
        self._broken: dict[SetKey, None] = {}  # sets that did not validate: no second error
        self._expanded: dict[SetKey, tuple[int, ...] | None] = {}
        self._expanding: list[SetKey] = []
        self._rule: str | None = None  # the rule being compiled, whose references these are
        # a file that could not be read at all may define any set: no "unknown set" then
        self.lenient = False

    def problem(
        self, path: Path, loc: Loc, message: str, see: tuple[Path, Loc] | None = None
    ) -> None:
        self.problems.append(RuleProblem(path, loc, message, see=see))

    # -- term sets ---------------------------------------------------------------------------

    def collect_sets(self, sources: Sequence[RuleSource]) -> None:
        # shared sets first, so that a file's own set can be told it takes a shared name
        ordered = sorted(sources, key=lambda source: not source.file.shared)
        for source in ordered:
            path, shared = source.path, source.file.shared
            for name in source.broken_sets:
                self._broken[(None if shared else path, name)] = None
            for name, entries in source.file.terms.items():
                key: SetKey = (None if shared else path, name)
                if (None, name) in self._sets:
                    message = (
                        f"term set `{name}` is already defined, at"
                        if shared
                        else f"`{name}` is the name of a shared term set: give this file's own "
                        "set another name; the shared one is defined at"
                    )
                    first = self._sets[(None, name)]
                    self.problem(path, ("terms", name), message, see=(first.path, ("terms", name)))
                    continue
                self._sets[key] = _Set(path, entries, shared)
            if shared and source.file.rules:
                index = source.indexed_rules()[0][0]
                self.problem(
                    path, ("rules", index),
                    "a shared file (`shared: true`) holds term sets only: its sets serve every "
                    "file, so a rule here would hide among them; put the rule in a file of its own",
                )  # fmt: skip
        for key in self._sets:
            self.expand_set(key)

    def expand_set(self, key: SetKey) -> tuple[int, ...] | None:
        """The term ids of a set (nested sets included), or None when it is broken."""
        if key in self._expanded:
            return self._expanded[key]
        found = self._sets[key]
        name = key[1]
        if key in self._expanding:
            cycle = " → ".join(f"${k[1]}" for k in [*self._expanding, key])
            self.problem(found.path, ("terms", name), f"term sets include each other: {cycle}")
            return None
        self._expanding.append(key)
        ids: list[int] = []
        for index, spec in enumerate(found.entries):
            loc: Loc = ("terms", name, index)
            if spec.term.startswith("$"):
                ids.extend(self.reference(found.path, loc, spec) or ())
            else:
                term_id = self.term(found.path, loc, spec)
                if term_id is not None:
                    ids.append(term_id)
        self._expanding.pop()
        if not found.entries:
            self.problem(found.path, ("terms", name), f"term set `{name}` is empty")
        result = tuple(dict.fromkeys(ids))
        self._expanded[key] = result
        return result

    def resolve(self, path: Path, name: str) -> SetKey | None:
        """The set `$name` means in the file at `path`: its own, else a shared one."""
        for key in ((path, name), (None, name)):
            if key in self._sets:
                return key
        return None

    def reference(self, path: Path, loc: Loc, spec: TermSpec | Condition) -> tuple[int, ...] | None:
        name = (spec.term or "")[1:]
        options = sorted(spec.model_fields_set - {"term"})
        if options:
            self.problem(path, (*loc, options[0]), "options do not apply to a `$set` reference")
        key = self.resolve(path, name)
        if key is None:
            if (path, name) in self._broken or (None, name) in self._broken:
                return None  # its definition's own problem says enough
            owner = next((k for k in self._sets if k[1] == name and k[0] is not None), None)
            if owner is not None:
                found = self._sets[owner]
                self.problem(
                    path, loc,
                    f"term set `${name}` is another file's own: share it (move it to a file "
                    "with `shared: true`) or define it in this file; it is defined at",
                    see=(found.path, ("terms", name)),
                )  # fmt: skip
                return None
            if self.lenient or any(k[1] == name for k in self._broken):
                return None
            visible = sorted({k[1] for k in self._sets if k[0] in (None, path)})
            close = difflib.get_close_matches(name, visible, n=1)
            hint = f" (did you mean `${close[0]}`?)" if close else ""
            self.problem(path, loc, f"unknown term set `${name}`{hint}")
            return None
        if self._expanding:
            self._sets[key].sets.add(self._expanding[-1])
        elif self._rule is not None:
            self._sets[key].rules.add(self._rule)
        return self.expand_set(key)

    def set_catalog(self) -> tuple[TermSetInfo, ...]:
        """Every set, with the rules that use it directly or through the sets that include it."""
        infos = []
        for key, found in self._sets.items():
            rules = set(found.rules)
            pending, seen = list(found.sets), set(found.sets)
            while pending:  # the rules of every set that includes this one, at any depth
                outer = self._sets[pending.pop()]
                rules |= outer.rules
                for more in outer.sets - seen:
                    seen.add(more)
                    pending.append(more)
            infos.append(TermSetInfo(
                name=key[1], path=found.path, shared=found.shared,
                terms=len(self._expanded.get(key) or ()), rules=tuple(sorted(rules)),
                sets=tuple(sorted(f"${outer[1]}" for outer in found.sets)),
            ))  # fmt: skip
        return tuple(infos)

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

    def rules(self, sources: Sequence[RuleSource]) -> list[CompiledRule]:
        compiled: list[CompiledRule] = []
        seen: dict[str, tuple[Path, Loc]] = {}
        for source in sources:
            path = source.path
            for index, rule in source.indexed_rules():
                loc: Loc = ("rules", index)
                duplicate = rule.id in seen
                if duplicate:
                    message = f"rule id `{rule.id}` is already used, at"
                    self.problem(path, (*loc, "id"), message, see=seen[rule.id])
                else:
                    seen[rule.id] = (path, (*loc, "id"))
                self._rule = rule.id
                root = self.condition(path, (*loc, "match"), rule.match)  # its problems too
                self._rule = None
                if root is None or duplicate:
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
                valid, prefilter = self.prefilter(path, loc, rule.prefilter)
                if not valid:
                    continue
                compiled.append(
                    CompiledRule(
                        info,
                        fields,
                        root,
                        _triggers(root),
                        patterns,
                        fulltext=rule.fulltext,
                        prefilter=prefilter,
                        langs=frozenset(rule.lang),
                    )
                )
                self.fulltext_notes(path, loc, rule.fulltext, root, prefilter)
                self.examples.extend(_examples(path, loc, rule))
        return compiled

    def prefilter(self, path: Path, loc: Loc, cond: Condition | None) -> tuple[bool, Node | None]:
        """Whether a rule's `prefilter` is valid, and compiled (None: the rule has none)."""
        if cond is None:
            return True, None
        node = self.condition(path, (*loc, "prefilter"), cond)
        if node is None:
            return False, None
        if not _positive(node):
            message = "`prefilter` has no positive term: every item's page would be fetched"
            self.problem(path, (*loc, "prefilter"), message)
            return False, None
        return True, node

    def fulltext_notes(
        self, path: Path, loc: Loc, fulltext: bool, root: Node, prefilter: Node | None
    ) -> None:
        """A rule that reads pages but whose default prefilter can never hold."""
        if fulltext and prefilter is None and len(required_groups(root)) < 2:
            message = (
                "`fulltext` without a `prefilter` reads no page for this rule: its `match` "
                "requires one part, so a headline matches it or gives no reason to fetch "
                "the page; declare a `prefilter`"
            )
            self.notes.append(RuleProblem(path, (*loc, "fulltext"), message, "warning"))

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
            if self.feed_tags is None:  # unknown here: the rule watches no feed through it
                patterns.append(_NO_FEED)
                continue
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


def _examples(path: Path, loc: Loc, rule: Rule) -> list[RuleExample]:
    return [
        RuleExample(
            rule_id=rule.id,
            path=path,
            loc=(*loc, "examples", key, index),
            item=Item(
                title=entry.title, summary=entry.summary, content=entry.content, lang=entry.lang
            ),
            expect_match=key == "match",
        )
        for key, entries in (("match", rule.examples.match), ("no_match", rule.examples.no_match))
        for index, entry in enumerate(entries)
    ]


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


def compile_sources(
    sources: Sequence[RuleSource],
    *,
    analyzer: str | None = DEFAULT_ANALYZER,
    lenient: bool = False,
    feed_tags: Mapping[str, Sequence[str]] | None = None,
) -> Compiled:
    """Rule files, each with the parts of it that validated: a `Matcher` when nothing is wrong,
    and every problem found, in file order. `lenient`: some rule file could not be read at all,
    so a set or rule it may define is not reported unknown. `feed_tags`: the config's feeds by
    tag, for rules' `feeds: [tag:NAME]`."""
    compiler = _Compiler(_analyzer(analyzer), feed_tags)
    compiler.lenient = lenient
    compiler.collect_sets(sources)
    rules = compiler.rules(sources)
    rule_ids = frozenset(
        {rule.id for source in sources for rule in source.file.rules}
        | {rule_id for source in sources for rule_id in source.broken_rule_ids}
    )
    if compiler.problems:
        order = {source.path: index for index, source in enumerate(sources)}
        problems = sorted(compiler.problems, key=lambda p: order.get(p.path, len(order)))
        return Compiled(None, problems, rule_ids)
    matcher = Matcher(compiler.lexicon, compiler.terms, rules)
    matcher.notes = tuple(compiler.notes)
    matcher.term_sets = compiler.set_catalog()
    matcher.examples = tuple(compiler.examples)
    return Compiled(matcher, [], rule_ids)


def compile_rules(
    files: Sequence[tuple[Path, RuleFile]],
    *,
    analyzer: str | None = DEFAULT_ANALYZER,
    feed_tags: Mapping[str, Sequence[str]] | None = None,
) -> Matcher | list[RuleProblem]:
    """Validated rule files at once: a `Matcher`, or every problem found, in file order. A term
    set serves its own file's rules, and every file's when its file is `shared: true`.
    `analyzer`: the morphology that inflects plain words (`lemma`, the default; `morph`,
    `stem`: see morph.py; None: every word matches as written). `feed_tags`: the config's
    feeds by tag, for rules' `feeds: [tag:NAME]`."""
    sources = [RuleSource(path, file) for path, file in files]
    compiled = compile_sources(sources, analyzer=analyzer, feed_tags=feed_tags)
    return compiled.matcher if compiled.matcher is not None else compiled.problems


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
