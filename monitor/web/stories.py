"""Alerts told as stories: the alerts of one rule that report the same news, as the console
and the API show them.

A webhook with `group:` already put its alerts in story groups when it routed them (their
deliveries carry the group's id); those are kept as they are. Other alerts are grouped here by
the same comparison (monitor.delivery.grouping.best_match), among the alerts of one rule
first seen within STORY_SPAN of a story's first alert. A story's id is its first alert's id, so
a link to it stays valid as outlets join the story.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from monitor.delivery.grouping import StoryText, best_match
from monitor.http.urls import shown_url
from monitor.store import reads
from monitor.store.reads import AlertView

STORY_SPAN = timedelta(hours=24)
SEVERITY_ORDER = ("low", "medium", "high", "critical")


@dataclass
class StoryView:
    """A story: its alerts newest first, where and in which languages it was told."""

    id: str
    rule_id: str
    rule_title: str
    first_seen: datetime
    alerts: list[AlertView] = field(default_factory=list)  # oldest first while building
    group_id: str | None = None

    @property
    def lead(self) -> AlertView:
        """The alert that opened the story."""
        return min(self.alerts, key=lambda alert: (alert.created_at, alert.id))

    @property
    def last_seen(self) -> datetime:
        return max(alert.created_at for alert in self.alerts)

    @property
    def severity(self) -> str:
        """The worst severity among its alerts."""
        return max(
            (alert.severity for alert in self.alerts),
            key=lambda s: SEVERITY_ORDER.index(s) if s in SEVERITY_ORDER else -1,
        )

    @property
    def sources(self) -> list[str]:
        """The outlets that told it, first first (names, or their feed URLs masked)."""
        names: list[str] = []
        for alert in sorted(self.alerts, key=lambda a: (a.created_at, a.id)):
            name = alert.feed_name or shown_url(alert.feed_url)
            if name not in names:
                names.append(name)
        return names

    @property
    def languages(self) -> list[str]:
        return sorted({alert.lang for alert in self.alerts if alert.lang})


def _text(alert: AlertView) -> StoryText:
    return StoryText(alert.title, alert.summary, alert.lang)


def stories_of(alerts: Sequence[AlertView], span: timedelta = STORY_SPAN) -> list[StoryView]:
    """`alerts` as stories, the most recently told first; each story's alerts newest first."""
    stories: list[StoryView] = []
    by_group: dict[str, StoryView] = {}
    for alert in sorted(alerts, key=lambda a: (a.created_at, a.id)):
        story = by_group.get(alert.group_id) if alert.group_id else None
        if story is None:
            story = _similar(stories, alert, span)
        if story is None:
            story = StoryView(alert.id, alert.rule_id, alert.rule_title, alert.created_at)
            stories.append(story)
        story.alerts.append(alert)
        if alert.group_id and story.group_id is None:
            story.group_id = alert.group_id
            by_group[alert.group_id] = story
    for story in stories:
        story.alerts.sort(key=lambda a: (a.created_at, a.id), reverse=True)
    stories.sort(key=lambda s: (s.last_seen, s.id), reverse=True)
    return stories


def _similar(stories: list[StoryView], alert: AlertView, span: timedelta) -> StoryView | None:
    """The open story of the alert's rule that tells the same news, if one does. A story
    grouped by a webhook is taken only by its group's alerts."""
    candidates = [
        (index, _text(member))
        for index, story in enumerate(stories)
        if story.rule_id == alert.rule_id
        and story.group_id is None
        and alert.group_id is None
        and alert.created_at - story.first_seen <= span
        for member in story.alerts
    ]
    found = best_match(_text(alert), candidates) if candidates else None
    return None if found is None else stories[found]


def story(engine: Engine, story_id: str, span: timedelta = STORY_SPAN) -> StoryView | None:
    """The story whose first alert is `story_id` (or that holds it), with every alert of its
    rule that joins it within `span`; None when there is no such alert."""
    found = reads.alerts_by_id(engine, [story_id])
    if not found:
        return None
    anchor = found[0]
    nearby = reads.alerts_near(
        engine, anchor.rule_id, anchor.created_at - span, anchor.created_at + span
    )
    grouped = reads.group_members(engine, anchor.group_id) if anchor.group_id else []
    missing = [alert_id for alert_id in grouped if alert_id not in {a.id for a in nearby}]
    candidates = [*nearby, *reads.alerts_by_id(engine, missing)]
    if anchor.id not in {alert.id for alert in candidates}:
        candidates.append(anchor)
    return next(s for s in stories_of(candidates, span) if any(a.id == anchor.id for a in s.alerts))
