"""The current rules over items already stored, compared with the alerts they raised.

Matching meets the store here (as in monitor.pipeline.refresh), with no network and no state
changed: items first seen since a date are read back (monitor.store.stored_items; their text is
kept for `retention.item_text`), matched with the rules in force, and compared with the alerts
the store holds for them. Each difference is `new` (would alert now, did not) or `gone`
(alerted, would not now). Items whose text retention already pruned are counted and left out:
matching a title alone would report false differences. `monitor backtest` (monitor.cli.backtest)
prints the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine

from monitor.matching import Matcher
from monitor.models import TermHit
from monitor.store.stored_items import StoredItem, count_items, items_since

NEW, GONE = "new", "gone"


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
