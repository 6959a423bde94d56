"""The rule editor's commands: `monitor check`, `monitor match`, `monitor schema`."""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import os
import sys
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
)
from monitor.config.yamlpos import load_positioned
from monitor.events import events_schema
from monitor.feeds.normalize import html_to_text
from monitor.matching import Matcher
from monitor.matching import explain as explain_match
from monitor.matching.explain import explain_miss
from monitor.matching.matcher import CompiledRule
from monitor.matching.whynot import why_not
from monitor.models import Item, Match

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
log = logging.getLogger("monitor")


def check(directory: Path) -> int:
    config = load_or_report(directory, secrets=False)
    if config is None:
        return EXIT_INVALID
    documents: dict[Path, Any] = {}
    for note in config.matcher.notes:  # hints and warnings: advice, the config stays valid
        if note.path not in documents:
            documents[note.path] = load_positioned(note.path, os.environ)
        pos = documents[note.path].position_of(note.loc)
        print(f"{note.path}:{pos.line}:{pos.column}: {note.severity}: {note.message}")
    for unset in config.unset:  # `run` needs them; checking does not
        print(f"{unset.path}:{unset.line}:{unset.column}: warning: {unset.message}")
    print(
        f"{directory / CONFIG_FILE}: valid — {len(config.settings.feeds)} feeds, "
        f"{len(config.matcher.rules)} rules in {len(config.rule_files)} files, "
        f"{len(config.settings.webhooks)} webhooks"
    )
    return EXIT_OK


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
    fulltext: bool = False,
) -> int:
    config = load_or_report(directory, secrets=False)
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
