"""The rule playground: a live rule or a draft, over pasted text or a stored item (match and
why-not), or over the items stored this week (a backtest), without touching the rules in force.

A draft is a rule file (YAML) as `rules:` files are written. It is compiled with the term sets
of the live rule files, so `$russia` means what it means in production, but with none of their
rules: a draft rule with a live rule's id is tried in its place, and its backtest compares it
with the alerts the live rule raised. Problems are reported as `monitor check` reports them,
with the draft's line and column.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.engine import Engine

from monitor.config.settings import LoadedConfig, feed_tags
from monitor.config.yamlpos import PositionedDocument, load_positioned
from monitor.matching import Matcher, RuleFile, compile_rules
from monitor.matching.matcher import CompiledRule
from monitor.matching.whynot import Verdict, why_not
from monitor.models import Item, Match
from monitor.pipeline.backtest import BacktestResult, backtest

MAX_DRAFT = 64 * 1024  # characters of a draft rule file
MAX_TEXT = 64 * 1024  # characters of pasted text
DRAFT_NAME = "draft.yaml"
BACKTEST_WINDOW = timedelta(days=7)
_ONE_BACKTEST = threading.Lock()


class PlaygroundError(ValueError):
    """What the playground was given cannot be used: an unknown rule, a draft with problems."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class RuleChoice:
    """The rules to try and the matcher that holds them."""

    matcher: Matcher
    rules: tuple[CompiledRule, ...]
    draft: bool

    @property
    def only(self) -> str | None:
        """The one rule tried, when there is one (a backtest compares that rule only)."""
        return self.rules[0].info.id if len(self.rules) == 1 else None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One rule over one item: the match with its evidence, or why not."""

    verdict: Verdict
    match: Match | None


def choose(config: LoadedConfig, *, rule: str | None, draft: str | None) -> RuleChoice:
    """The live rule `rule`, the rules of `draft`, or with neither every live rule."""
    if draft is not None and draft.strip():
        matcher = compile_draft(config, draft)
        return RuleChoice(matcher, matcher.compiled_rules, draft=True)
    live = config.matcher
    chosen = tuple(r for r in live.compiled_rules if rule is None or r.info.id == rule)
    if not chosen:
        raise PlaygroundError([f"no rule {rule!r} in the rules in force"])
    return RuleChoice(live, chosen, draft=False)


def compile_draft(config: LoadedConfig, draft: str) -> Matcher:
    """The draft's rules, compiled with the live files' term sets; PlaygroundError otherwise."""
    if len(draft) > MAX_DRAFT:
        raise PlaygroundError([f"{DRAFT_NAME}: longer than {MAX_DRAFT} characters"])
    with tempfile.TemporaryDirectory(prefix="monitor-draft-") as folder:
        path = Path(folder) / DRAFT_NAME
        path.write_text(draft, encoding="utf-8")
        document = load_positioned(path, {})
    parsed = _rule_file(document, DRAFT_NAME)
    if not parsed.rules:
        raise PlaygroundError([f"{DRAFT_NAME}: no rules (write them under `rules:`)"])
    files: list[tuple[Path, RuleFile]] = []
    for live_path in config.rule_files:
        live = _rule_file(load_positioned(live_path, {}), live_path.name)
        kept = {name: terms for name, terms in live.terms.items() if name not in parsed.terms}
        files.append((live_path, live.model_copy(update={"terms": kept, "rules": []})))
    files.append((path, parsed))
    compiled = compile_rules(files, feed_tags=feed_tags(config.settings))
    if isinstance(compiled, Matcher):
        return compiled
    problems = []
    for problem in compiled:
        if problem.path == path:
            where = document.position_of(problem.loc)
            problems.append(f"{DRAFT_NAME}:{where.line}:{where.column}: {problem.message}")
        else:
            problems.append(f"{problem.path.name}: {problem.message}")
    raise PlaygroundError(problems)


def _rule_file(document: PositionedDocument, name: str) -> RuleFile:
    if document.problems:
        raise PlaygroundError(
            [f"{name}:{pos.line}:{pos.column}: {message}" for pos, message in document.problems]
        )
    try:
        return RuleFile.model_validate(document.data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            where = document.position_of(loc)
            dotted = ".".join(str(part) for part in loc) or "(top)"
            problems.append(f"{name}:{where.line}:{where.column}: {dotted}: {error['msg']}")
        raise PlaygroundError(problems) from None


def pasted_item(title: str, summary: str = "", *, lang: str | None = None) -> Item:
    """An item from pasted text; PlaygroundError when there is none or too much."""
    if not title.strip() and not summary.strip():
        raise PlaygroundError(["paste a title or a text"])
    if len(title) + len(summary) > MAX_TEXT:
        raise PlaygroundError([f"text: longer than {MAX_TEXT} characters"])
    return Item(title=title.strip(), summary=summary.strip(), lang=lang or None)


def try_rules(choice: RuleChoice, item: Item) -> list[Outcome]:
    """Each chosen rule over `item`: matched with its evidence, or the clauses that failed."""
    matches = {found.rule_id: found for found in choice.matcher.match(item)}
    return [
        Outcome(why_not(choice.matcher, item, rule), matches.get(rule.info.id))
        for rule in choice.rules
    ]


def backtest_week(engine: Engine, choice: RuleChoice, now: datetime) -> BacktestResult:
    """The chosen rules over the items stored in the last BACKTEST_WINDOW, compared with the
    alerts the store holds (monitor.pipeline.backtest). Slow on a big store: run it in a
    worker thread. One runs at a time: matching is CPU-bound Python, so a second would only
    take the interpreter from polling, not finish sooner."""
    with _ONE_BACKTEST:
        result = backtest(engine, choice.matcher, now - BACKTEST_WINDOW, rule=choice.only)
    tried = {rule.info.id for rule in choice.rules}
    # the other rules' alerts are not `gone`: those rules were not tried
    result.differences = [d for d in result.differences if d.rule_id in tried]
    return result
