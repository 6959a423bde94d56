"""The rule editor's commands: `monitor check`, `match`, `terms` and `schema`."""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import os
import sys
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from monitor.cli.feedinput import FeedInputError, PageRead, feed_items, read_pages
from monitor.cli.reporting import load_or_report
from monitor.config.settings import (
    CONFIG_FILE,
    combined_schema,
    config_schema,
    rules_schema,
    shown_path,
)
from monitor.config.yamlpos import Loc, Position, PositionedDocument, load_positioned
from monitor.events import events_schema
from monitor.feeds.normalize import html_to_text
from monitor.matching import Matcher
from monitor.matching import explain as explain_match
from monitor.matching.catalog import TermSetInfo
from monitor.matching.examples import ExampleFailure, run_examples
from monitor.matching.explain import explain_miss
from monitor.matching.matcher import CompiledRule
from monitor.matching.whynot import why_not
from monitor.models import Item, Match
from monitor.wording import plural

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
DRAFTS = "drafts"  # the folder below the rules that the daemon does not read
log = logging.getLogger("monitor")


def check(directory: Path, drafts: Path | None = None) -> int:
    """Validate the config, then run every rule's examples: each problem, each failing example
    with its explanation, and the advice, at once."""
    config = load_or_report(directory, secrets=False, rules=drafts)
    if config is None:
        return EXIT_INVALID
    positions = _Positions(directory)
    for note in config.matcher.notes:  # hints and warnings: advice, the config stays valid
        print(f"{positions.at(note.path, note.loc)}: {note.severity}: {note.message}")
    for unset in config.unset:  # `run` needs them; checking does not
        print(f"{unset.path}:{unset.line}:{unset.column}: warning: {unset.message}")
    failures = run_examples(config.matcher)
    for failure in failures:
        example = failure.example
        print(f"{positions.at(example.path, example.loc)}: {failure.summary}", file=sys.stderr)
        print(textwrap.indent(failure.explanation, "    "), file=sys.stderr)
        for warning in _shared_set_warnings(failure, config.matcher, positions):
            print(warning, file=sys.stderr)
    examples = len(config.matcher.examples)
    files = len(config.rule_files)
    summary = (
        f"{plural(len(config.settings.feeds), 'feed')}, "
        f"{plural(len(config.matcher.rules), 'rule')} in "
        f"{plural(files, 'file')}, {plural(examples, 'example')}, "
        f"{plural(len(config.settings.webhooks), 'webhook')}"
    )
    where = directory / CONFIG_FILE
    if failures:
        count = len(failures)
        print(f"{plural(count, 'problem')} found: {plural(count, 'failing example')} ({summary})",
              file=sys.stderr)  # fmt: skip
        return EXIT_INVALID
    print(f"{where}: valid — {summary}" + (f" (rules from {drafts})" if drafts else ""))
    if drafts is None:
        _mention_drafts(directory, config.settings.rules)
    return EXIT_OK


def _mention_drafts(directory: Path, rules: str) -> None:
    """Draft files are not in force, and easily forgotten: say so, with the command that
    checks them."""
    folder = directory / rules / DRAFTS
    found = sorted(folder.glob("*.y*ml")) if folder.is_dir() else []
    if found:
        shown = shown_path(folder, directory)
        print(f"note: {plural(len(found), 'draft')} in {shown}/, not in force "
              f"(check them with `monitor check --rules {folder}`)")  # fmt: skip


def _shared_set_warnings(
    failure: ExampleFailure, matcher: Matcher, positions: _Positions
) -> list[str]:
    """A warning at each shared set, defined in another file, among a failing example's causes:
    the edit that broke the example may be there, not in the rule's file."""
    example = failure.example
    warnings = []
    for name in failure.sets:
        info = _visible_set(matcher, example.path, name)
        if info is None or not info.shared or info.path == example.path:
            continue
        warnings.append(
            f"{positions.at(info.path, info.loc, key=True)}: warning: shared term set "
            f"`${name}` decides the failing example of rule {example.rule_id} at "
            f"{positions.at(example.path, example.loc)}: an edit of this set changes that rule "
            "too"
        )
    return warnings


def _visible_set(matcher: Matcher, path: Path, name: str) -> TermSetInfo | None:
    """The set `$name` means in the file at `path`: its own, else a shared one."""
    own = [info for info in matcher.term_sets if info.name == name and info.path == path]
    shared = [info for info in matcher.term_sets if info.name == name and info.shared]
    return next(iter(own or shared), None)


class _Positions:
    """`PATH:LINE:COL` of places in the rule files, each file read once, paths as problems
    show them (relative to the config folder)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._documents: dict[Path, PositionedDocument] = {}

    def at(self, path: Path, loc: Loc, *, key: bool = False) -> str:
        pos = self.position(path, loc, key=key)
        return f"{shown_path(path, self._directory)}:{pos.line}:{pos.column}"

    def line(self, path: Path, loc: Loc) -> int:
        return self.position(path, loc).line

    def position(self, path: Path, loc: Loc, *, key: bool = False) -> Position:
        if path not in self._documents:
            self._documents[path] = load_positioned(path, os.environ)
        return self._documents[path].position_of(loc, prefer_key=key)


def terms(directory: Path, drafts: Path | None = None, *, as_json: bool = False) -> int:
    """Every term set: where it is defined, shared or its file's own, and what uses it."""
    config = load_or_report(directory, secrets=False, rules=drafts)
    if config is None:
        return EXIT_INVALID
    positions = _Positions(directory)
    infos = sorted(
        config.matcher.term_sets,
        key=lambda info: (
            shown_path(info.path, directory),
            positions.position(info.path, info.loc).line,
        ),
    )
    rows = []
    for info in infos:
        where = positions.at(info.path, info.loc, key=True)
        if as_json:
            print(json.dumps({
                "set": info.name, "defined_at": where, "shared": info.shared,
                "terms": info.terms, "rules": list(info.rules), "in_sets": list(info.sets),
            }, ensure_ascii=False))  # fmt: skip
            continue
        used = ", ".join(info.rules) or "no rule"
        if info.sets:
            used += f" (through {', '.join(info.sets)})" if not info.rules else ""
        rows.append((f"${info.name}", where, "shared" if info.shared else "own",
                     str(info.terms), used))  # fmt: skip
    if not as_json:
        _table(("SET", "DEFINED AT", "SCOPE", "TERMS", "USED BY RULES"), rows)
    return EXIT_OK


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [
            cell.rjust(width) if i == 3 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())


def schema(kind: str | None, out: IO[str]) -> int:
    if kind == "config":
        document = config_schema()
    elif kind == "rules":
        document = rules_schema()
    elif kind == "events":
        document = events_schema()
    else:
        document = combined_schema()
    json.dump(document, out, indent=2, ensure_ascii=False)
    out.write("\n")
    return EXIT_OK


def match(
    directory: Path,
    file: Path | None,
    *,
    explain: bool,
    rule: str | None = None,
    as_json: bool = False,
    feed: str | None = None,
    drafts: Path | None = None,
    fulltext: bool = False,
) -> int:
    config = load_or_report(directory, secrets=False, rules=drafts)
    if config is None:
        return EXIT_INVALID
    if rule is not None and not _known_rule(rule, config.matcher, "match"):
        return EXIT_INVALID
    answer = _Answer(config.matcher, rule, explain=explain, as_json=as_json)
    if feed is not None:
        try:
            items = feed_items(feed, config.settings.fetch.limits())
        except FeedInputError as exc:
            print(f"monitor match: {exc}", file=sys.stderr)
            return EXIT_FAILED if exc.fetching else EXIT_INVALID
        pages = read_pages(config, items, feed) if fulltext else {}
        for feed_item, feed_item_id in items:
            answer(feed_item, feed_item_id, pages.get(feed_item))
        return EXIT_OK
    errors = 0
    stream = sys.stdin if file is None else _open(file)
    if stream is None:
        return EXIT_INVALID
    with stream:
        for number, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            item, item_id, error = item_from_json(raw)
            if item is None:
                errors += 1
                print(f"{file or '<stdin>'}:{number}: {error}", file=sys.stderr)
                continue
            answer(item, item_id)
    return EXIT_INVALID if errors else EXIT_OK


def _known_rule(rule: str, matcher: Matcher, command: str) -> bool:
    known = sorted(r.id for r in matcher.rules)
    if rule in known:
        return True
    hint = difflib.get_close_matches(rule, known, n=1)
    more = f"; did you mean {hint[0]!r}?" if hint else ""
    print(f"monitor {command}: unknown rule id {rule!r}{more}", file=sys.stderr)
    return False


def _match_line(item_id: str, found: Match) -> dict[str, object]:
    return {
        "item_id": item_id,
        "rule_id": found.rule_id,
        "score": round(found.score, 1),
        "matches": found.matches_json(),
    }


class _Answer:
    """What `monitor match` writes for one item: its JSON match lines, or with `explain` every
    rule's (or `rule`'s) verdict, readable or as JSON."""

    def __init__(self, matcher: Matcher, rule: str | None, *, explain: bool, as_json: bool) -> None:
        self._matcher = matcher
        self._rule = rule
        self._explain = explain
        self._json = as_json

    def __call__(self, item: Item, item_id: str, page: PageRead | None = None) -> None:
        """`page`: the text of the item's article page and the matches it adds (--fulltext)."""
        found_on_page = page[1] if page is not None else []
        if not self._explain:
            for hit in [*self._matcher.match(item), *found_on_page]:
                if self._rule is None or hit.rule_id == self._rule:
                    print(json.dumps(_match_line(item_id, hit), ensure_ascii=False))
            return
        matches = {hit.rule_id: hit for hit in self._matcher.match(item)}
        matches.update((hit.rule_id, hit) for hit in found_on_page)
        # a match from the page is shown on the page's text (its hits' offsets are into it);
        # every other verdict on the feed's own
        on_page = dataclasses.replace(item, content=page[0]) if page is not None else item
        if not self._json:
            print(f"item {item_id}: {item.title}")
        for compiled in self._matcher.compiled_rules:
            if self._rule is not None and compiled.info.id != self._rule:
                continue
            found = matches.get(compiled.info.id)
            if self._json:
                print(json.dumps(self._verdict_line(item, item_id, compiled, found),
                                 ensure_ascii=False))  # fmt: skip
            elif found is not None:
                print(explain_match(on_page if found in found_on_page else item, found))
                print()
            else:
                print(explain_miss(why_not(self._matcher, item, compiled)))
                print()

    def _verdict_line(
        self, item: Item, item_id: str, compiled: CompiledRule, found: Match | None
    ) -> dict[str, object]:
        line: dict[str, object] = {"item_id": item_id, "rule_id": compiled.info.id}
        if found is not None:
            return line | {"matched": True, "score": round(found.score, 1),
                           "matches": found.matches_json()}  # fmt: skip
        verdict = why_not(self._matcher, item, compiled)
        return line | {"matched": False, "clauses": [c.as_json() for c in verdict.clauses]}


def _open(file: Path) -> IO[str] | None:
    try:
        return file.open(encoding="utf-8")
    except OSError as exc:
        print(f"{file}: cannot read: {exc.strerror}", file=sys.stderr)
        return None


def item_from_json(raw: str) -> tuple[Item | None, str, str]:
    """One `monitor match` input line as an Item and its item_id, or an error message."""
    try:
        data: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, "", f"not JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(data, dict):
        return None, "", "expected a JSON object"
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        return None, "", "`title` (a non-empty string) is required"
    fields = {
        key: data.get(key)
        for key in ("summary", "description", "content", "id", "link", "lang", "published")
    }
    for key, value in fields.items():
        if value is not None and not isinstance(value, str):
            return None, "", f"`{key}` must be a string"
    published, error = _published(fields["published"])
    if error:
        return None, "", error
    summary = fields["summary"] or fields["description"]
    item = Item(
        title=html_to_text(title, multiline=False),
        summary=html_to_text(summary or fields["content"] or ""),
        content=html_to_text(fields["content"] or "") if summary else "",
        link=fields["link"],
        guid=fields["id"],
        published=published,
        lang=fields["lang"],
    )
    item_id = fields["id"] or fields["link"] or item.content_hash()
    return item, item_id, ""


def _published(value: str | None) -> tuple[datetime | None, str]:
    if not value:
        return None, ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None, f"`published` {value!r} is not ISO 8601"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC), ""
