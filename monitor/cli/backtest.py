"""`monitor backtest`'s output: the report of the current rules over items already stored.

The comparison itself is monitor.pipeline.backtest (re-exported here as `backtest` for the
command in monitor.cli.commands). The report has two lists:

- new: would alert now, did not (a rule added or loosened, or an item that arrived during its
  feed's first-poll backfill window and so was recorded without alerting);
- gone: alerted, would not now (a rule tightened or removed).

and a count of the items whose text retention already pruned (left out of the comparison).
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import TextIO

from monitor.matching.explain import hit_line
from monitor.pipeline.backtest import GONE, NEW, BacktestResult, Difference, Progress, backtest

__all__ = ["backtest", "progress_printer", "report", "since_from"]  # backtest: for cli.commands

PROGRESS_EVERY = 2.0  # seconds between progress lines when stderr is not a terminal


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
