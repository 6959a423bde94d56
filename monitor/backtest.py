"""`monitor backtest`: the current rules over items already stored, compared with what alerted.

No network, no state changed: items first seen within `--since` are read back from the store
(their text is kept for `retention.item_text`), matched with the rules on disk, and compared with
the alerts the store holds for them. Two lists come out:

- new: would alert now, did not (a rule added or loosened, or an item that arrived during its
  feed's first-poll backfill window and so was recorded without alerting);
- gone: alerted, would not now (a rule tightened or removed).

Items whose text retention already pruned are left out of the comparison (matching a title alone
would report false differences) and counted.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TextIO

from sqlalchemy.engine import Engine

from monitor.matching import Matcher
from monitor.matching.explain import hit_line
from monitor.models import TermHit
from monitor.store.recent import StoredItem, count_items, items_since

NEW, GONE = "new", "gone"
PROGRESS_EVERY = 2.0  # seconds between progress lines when stderr is not a terminal


@dataclass(frozen=True, slots=True)
class Difference:
    change: str  # new | gone
    rule_id: str
    stored: StoredItem
    score: float | None  # the score now (new), None when it no longer matches (gone)
    alert_id: str | None  # the alert it had (gone)
    hits: tuple[TermHit, ...] = ()  # the evidence now (new): how each word matched

    def as_json(self) -> dict[str, object]:
        item = self.stored.item
        return {
            "change": self.change,
            "rule_id": self.rule_id,
            "score": None if self.score is None else round(self.score, 1),
            "alert_id": self.alert_id,
            "matches": [hit.as_json() for hit in self.hits],
            "item": {
                "title": item.title,
                "link": item.link,
                "published": item.published.isoformat() if item.published else None,
                "first_seen": self.stored.first_seen_at.isoformat(),
                "feed": {"url": item.feed_url, "name": item.feed_name},
            },
        }


@dataclass
class BacktestResult:
    since: datetime
    items: int = 0
    without_text: int = 0
    still_alerting: int = 0
    differences: list[Difference] = field(default_factory=list)

    def of(self, change: str) -> list[Difference]:
        return [d for d in self.differences if d.change == change]


Progress = Callable[[int, int], None]


def backtest(
    engine: Engine,
    matcher: Matcher,
    since: datetime,
    *,
    rule: str | None = None,
    progress: Progress | None = None,
) -> BacktestResult:
    """Match every stored item first seen since `since`; compare with the alerts it has."""
    result = BacktestResult(since)
    total = count_items(engine, since)
    for stored in items_since(engine, since):
        result.items += 1
        if progress is not None:
            progress(result.items, total)
        if not stored.has_text:
            result.without_text += 1
            continue
        now = {m.rule_id: m for m in matcher.match(stored.item) if rule in (None, m.rule_id)}
        had = {r: a for r, a in stored.alerted.items() if rule in (None, r)}
        result.still_alerting += len(now.keys() & had.keys())
        result.differences.extend(
            Difference(NEW, rule_id, stored, found.score, None, found.hits)
            for rule_id, found in now.items()
            if rule_id not in had
        )
        result.differences.extend(
            Difference(GONE, rule_id, stored, None, alert_id)
            for rule_id, alert_id in had.items()
            if rule_id not in now
        )
    return result


def report(result: BacktestResult, window: str, rules: int, out: TextIO, *, show: int) -> None:
    """The readable report: per change, per rule, up to `show` items each."""
    new, gone = result.of(NEW), result.of(GONE)
    print(
        f"backtest: {result.items} items first seen since "
        f"{result.since:%Y-%m-%d %H:%M} UTC ({window}), {rules} rules",
        file=out,
    )
    _section(out, f"would alert now, did not: {len(new)}", new, show)
    _section(out, f"alerted, would not now: {len(gone)}", gone, show)
    print(f"unchanged: {result.still_alerting} alerts would still be raised", file=out)
    if result.without_text:
        print(
            f"skipped: {result.without_text} items whose text is past retention.item_text "
            "(only their titles are kept)",
            file=out,
        )


def _section(out: TextIO, heading: str, differences: list[Difference], show: int) -> None:
    print(heading, file=out)
    by_rule: dict[str, list[Difference]] = defaultdict(list)
    for difference in differences:
        by_rule[difference.rule_id].append(difference)
    for rule_id in sorted(by_rule):
        found = by_rule[rule_id]
        print(f"  {rule_id} ({len(found)})", file=out)
        for difference in found[:show]:
            print(f"    {_line(difference)}", file=out)
            for hit in difference.hits:
                print(f"      {hit.field}: {hit_line(hit)}", file=out)
        if len(found) > show:
            print(f"    … and {len(found) - show} more (--show to see more)", file=out)


def _line(difference: Difference) -> str:
    stored = difference.stored
    item = stored.item
    when = (item.published or stored.first_seen_at).strftime("%Y-%m-%d %H:%M")
    source = item.feed_name or item.feed_url
    tail = (
        f"score {difference.score:.1f}"
        if difference.score is not None
        else f"was {difference.alert_id}"
    )
    link = f" <{item.link}>" if item.link else ""
    return f"{when}  {source}: {item.title!r}{link}  ({tail})"


def progress_printer(stream: TextIO = sys.stderr) -> Progress:
    """A progress callback: a live line on a terminal, a line every few seconds otherwise."""
    live = stream.isatty()
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done != total and now - last[0] < (0.2 if live else PROGRESS_EVERY):
            return
        last[0] = now
        percent = f" ({100 * done // total}%)" if total else ""
        line = f"backtest: {done}/{total} items matched{percent}"
        if live:
            stream.write(f"\r{line}" + ("\n" if done == total else ""))
        else:
            stream.write(line + "\n")
        stream.flush()

    return show


def since_from(window: timedelta) -> datetime:
    return datetime.now(UTC) - window
