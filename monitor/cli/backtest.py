"""`monitor backtest`: the current rules over items already stored, and the report of it.

The comparison itself is monitor.pipeline.backtest; this module opens the store, runs it and
prints. The report has two lists:

- new: would alert now, did not (a rule added or loosened, or an item that arrived during its
  feed's first-poll backfill window and so was recorded without alerting);
- gone: alerted, would not now (a rule tightened or removed).

and a count of the items whose text retention already pruned (left out of the comparison).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from monitor.cli.names import unknown_name
from monitor.cli.reporting import load_or_report
from monitor.errors import StoreError
from monitor.matching.explain import hit_line
from monitor.pipeline.backtest import GONE, NEW, BacktestResult, Difference, Progress, backtest
from monitor.store import Store
from monitor.wording import plural

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
log = logging.getLogger("monitor")

PROGRESS_EVERY = 2.0  # seconds between progress lines when stderr is not a terminal


def report(result: BacktestResult, window: str, rules: int, out: TextIO, *, show: int) -> None:
    """The readable report: per change, per rule, up to `show` items each."""
    new, gone = result.of(NEW), result.of(GONE)
    print(
        f"backtest: {plural(result.items, 'item')} first seen since "
        f"{result.since:%Y-%m-%d %H:%M} UTC ({window}), {plural(rules, 'rule')}",
        file=out,
    )
    _section(out, f"would alert now, did not: {len(new)}", new, show)
    _section(out, f"alerted, would not now: {len(gone)}", gone, show)
    print(f"unchanged: {plural(result.still_alerting, 'alert')} would still be raised", file=out)
    if result.without_text:
        print(
            f"skipped: {plural(result.without_text, 'item')} whose text is past "
            "retention.item_text (only their titles are kept)",
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
        line = f"backtest: {done}/{plural(total, 'item')} checked{percent}"
        if live:
            stream.write(f"\r{line}" + ("\n" if done == total else ""))
        else:
            stream.write(line + "\n")
        stream.flush()

    return show


def since_from(window: timedelta) -> datetime:
    return datetime.now(UTC) - window


def backtest_command(
    directory: Path,
    window: timedelta,
    rule: str | None,
    *,
    as_json: bool,
    show: int,
    drafts: Path | None = None,
) -> int:
    """The current rules (or `drafts` in place of the files of the same name) over stored
    items: what would alert now that did not, and the reverse."""
    config = load_or_report(directory, secrets=False, rules=drafts)
    if config is None:
        return EXIT_INVALID
    known = {r.id for r in config.matcher.rules}
    if rule is not None and rule not in known:
        print(f"monitor backtest: {unknown_name('rule id', rule, known)}", file=sys.stderr)
        return EXIT_INVALID
    try:
        store = Store.open(config.storage_url)
    except StoreError as exc:
        log.error("storage: %s", exc)  # noqa: TRY400 - users need the message, not a traceback
        return EXIT_FAILED
    try:
        result = backtest(
            store.engine,
            config.matcher,
            since_from(window),
            rule=rule,
            progress=progress_printer(sys.stderr),
        )
    except (StoreError, SQLAlchemyError) as exc:
        log.error("storage: %s", exc)  # noqa: TRY400 - users need the message, not a traceback
        return EXIT_FAILED
    finally:
        store.close()
    if as_json:
        for difference in result.differences:
            print(json.dumps(difference.as_json(), ensure_ascii=False))
    else:
        rules = 1 if rule else len(known)
        report(result, _window_text(window), rules, sys.stdout, show=show)
    return EXIT_OK


def _window_text(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
