"""Feed health: a feed failing for too long, or silent far beyond its usual cadence, raises one
`feed.unhealthy` event; when it works (or brings news) again, one `feed.recovered`.

- failing: every poll since `failing_since` (the first failure after the last success) failed,
  for at least `health.failing_after` (default 6 h). Backoff keeps polling it all along.
- silent: no new item for `health.silent_after` times the feed's usual gap between polls that
  brought news (the median of the last ten), and at least `health.silent_min` (default 2 d);
  without three such gaps yet, `silent_min` alone.

The events go to the webhooks whose `events:` list them; the state is kept on the feed either way
(`monitor feeds` shows it) and logged. Checked every 10 minutes by the daemon (the thresholds are
hours and days, and each check reads the cadence of every candidate feed) and at the end of a
`run --once` cycle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.engine import Engine

from monitor.config.settings import HealthSettings, LoadedConfig
from monitor.durations import approximate_duration
from monitor.events import FeedHealth, FeedRef, iso
from monitor.http.urls import shown_url
from monitor.store import FeedState
from monitor.store.health import health_candidates, record_health_change, usual_gap

log = logging.getLogger(__name__)
FAILING: Final = "failing"
SILENT: Final = "silent"


@dataclass(frozen=True, slots=True)
class Diagnosis:
    reason: str  # failing | silent
    since: datetime


@dataclass(frozen=True, slots=True)
class HealthReport:
    unhealthy: int = 0  # feeds newly found unhealthy
    recovered: int = 0


def diagnose(
    feed: FeedState, settings: HealthSettings, gap: timedelta | None, now: datetime
) -> Diagnosis | None:
    """Why the feed is unhealthy now, or None when it is healthy."""
    failing_since = feed.failing_since
    failing_after = settings.failing_after
    if (
        failing_after is not None
        and failing_since is not None
        and now - failing_since >= failing_after
    ):
        return Diagnosis(FAILING, failing_since)
    last_news = feed.last_new_item_at or feed.first_polled_at
    if (
        settings.silent_after is not None
        and last_news is not None
        and now - last_news >= silent_limit(settings, gap)
    ):
        return Diagnosis(SILENT, last_news)
    return None


def silent_limit(settings: HealthSettings, gap: timedelta | None) -> timedelta:
    """How long without news counts as silent for a feed whose usual gap is `gap`."""
    if gap is None or settings.silent_after is None:
        return settings.silent_min
    return max(settings.silent_min, gap * settings.silent_after)


def check_health(engine: Engine, config: LoadedConfig, now: datetime) -> HealthReport:
    """Find feeds whose health changed, record it and queue their events (in a worker thread)."""
    settings = config.settings.health
    candidates = health_candidates(
        engine,
        now,
        settings.failing_after,
        settings.silent_min if settings.silent_after is not None else None,
    )
    unhealthy = recovered = 0
    for feed in candidates:
        gap = usual_gap(engine, feed.id) if settings.silent_after is not None else None
        found = diagnose(feed, settings, gap, now)
        if found is not None and feed.unhealthy_since is None:
            unhealthy += _raise_unhealthy(engine, config, feed, found, gap, now)
        elif found is None and feed.unhealthy_since is not None:
            recovered += _raise_recovered(engine, config, feed, gap, now)
    return HealthReport(unhealthy, recovered)


def _raise_unhealthy(  # noqa: PLR0917 - the parts of one event
    engine: Engine,
    config: LoadedConfig,
    feed: FeedState,
    found: Diagnosis,
    gap: timedelta | None,
    now: datetime,
) -> int:
    event = _event(feed, found.reason, found.since, gap)
    hooks = _subscribers(config, "feed.unhealthy")
    if not record_health_change(
        engine,
        feed.id,
        now,
        reason=found.reason,
        event=event,
        webhooks=hooks,
        checked_at=feed.last_checked_at,
        since=found.since,  # so that feed.recovered reports the `since` this event did
    ):
        return 0  # another replica got there first, or a poll since
    if found.reason == FAILING:
        what = f"every poll has failed for {approximate_duration(now - found.since)}"
        detail = f" (last error: {feed.last_error})" if feed.last_error else ""
    else:
        what = f"no new item for {approximate_duration(now - found.since)}"
        detail = f" (usually one every {approximate_duration(gap)})" if gap else ""
    log.warning(
        "%s: unhealthy: %s%s%s",
        feed.url,
        what,
        detail,
        f"; feed.unhealthy sent to {', '.join(hooks)}" if hooks else "",
        extra={"feed_url": feed.url},
    )
    return 1


def _raise_recovered(
    engine: Engine, config: LoadedConfig, feed: FeedState, gap: timedelta | None, now: datetime
) -> int:
    reason = feed.unhealthy_reason or FAILING
    event = _event(feed, reason, feed.unhealthy_since, gap)
    hooks = _subscribers(config, "feed.recovered")
    if not record_health_change(
        engine,
        feed.id,
        now,
        reason=None,
        event=event,
        webhooks=hooks,
        checked_at=feed.last_checked_at,
    ):
        return 0
    log.info("%s: healthy again (was %s)", feed.url, reason, extra={"feed_url": feed.url})
    return 1


def _subscribers(config: LoadedConfig, event_type: str) -> list[str]:
    return [hook.name for hook in config.settings.webhooks if hook.wants_event(event_type)]


def _event(
    feed: FeedState, reason: str, since: datetime | None, gap: timedelta | None
) -> dict[str, object]:
    """The `data` of `feed.unhealthy` and `feed.recovered` (monitor.events.FeedHealth)."""
    health = FeedHealth(
        feed=FeedRef(url=shown_url(feed.url), name=feed.name or feed.title or ""),
        reason=FAILING if reason == FAILING else SILENT,
        since=iso(since),
        last_success=iso(feed.last_success_at),
        last_error=feed.last_error,
        error_count=feed.error_count,
        usual_interval=int(gap.total_seconds()) if gap is not None else None,
    )
    return health.model_dump(mode="json")
