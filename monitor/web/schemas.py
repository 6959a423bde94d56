"""The API's bodies (pydantic): what `/api/v1/` answers and accepts, and from which the OpenAPI
document is generated (monitor.web.openapi). Feed URLs are shown masked (monitor.http.urls)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from monitor.http.urls import mask_urls, shown_url
from monitor.matching.whynot import Clause, Verdict
from monitor.models import TermHit
from monitor.pipeline.backtest import BacktestResult, Difference
from monitor.store.reads import AlertView, DeliveryView, Evidence, FeedView
from monitor.web.playground import Outcome
from monitor.web.stories import StoryView


class Body(BaseModel):
    model_config = ConfigDict(frozen=True)


class FeedRef(Body):
    id: int
    url: str = Field(
        description="The feed's URL, credentials and secret-looking parameters masked."
    )
    name: str | None


class RuleRef(Body):
    id: str
    title: str


class MatchedWord(Body):
    """One word of the item that matched a term of the rule; offsets into `field`'s text."""

    term: str
    field: str
    text: str
    start: int
    end: int
    score: float
    how: str | None = None


class DeliveryOut(Body):
    id: int
    alert_id: str | None
    webhook: str
    state: str = Field(description="pending | delivered | failed | held | digested | orphaned")
    attempts: int = Field(description="Attempts made.")
    last_error: str | None
    last_status: int | None = Field(description="HTTP status of the last attempt.")
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class AlertOut(Body):
    id: str = Field(description="The alert id; also the webhook-id receivers saw.")
    rule: RuleRef
    severity: str
    score: float
    created_at: datetime
    title: str
    summary: str
    link: str | None
    lang: str | None
    published_at: datetime | None
    feed: FeedRef
    matches: list[MatchedWord]
    story: str | None = Field(description="The webhook story group it is part of, if any.")
    deliveries: list[DeliveryOut] = Field(description="One per webhook it went to.")


class AlertsOut(Body):
    alerts: list[AlertOut]
    next: str | None = Field(description="`cursor` of the next page; null on the last one.")


class StoryOut(Body):
    id: str = Field(description="The story's id: its first alert's id.")
    rule: RuleRef
    severity: str = Field(description="The worst severity of its alerts.")
    first_seen: datetime
    last_seen: datetime
    sources: list[str] = Field(description="The outlets that told it, first first.")
    languages: list[str]
    count: int
    alerts: list[AlertOut] = Field(description="Newest first.")


class StoriesOut(Body):
    stories: list[StoryOut]
    next: str | None = Field(description="`cursor` of the next page of alerts; null at the end.")


class FeedOut(Body):
    id: int
    url: str = Field(description="Masked.")
    name: str | None
    title: str | None
    health: str = Field(description="ok | failing | silent | moved | gone | new")
    last_error: str | None = Field(description="URLs in it masked.")
    error_count: int
    last_status: int | None
    moved_to: str | None
    next_check_at: datetime
    last_checked_at: datetime | None
    last_success_at: datetime | None
    last_new_item_at: datetime | None
    items: int
    items_per_day: list[int] = Field(description="Items first seen each UTC day, today last.")


class FeedsOut(Body):
    feeds: list[FeedOut]


class RuleOut(Body):
    id: str
    title: str
    severity: str
    feeds: list[str] = Field(description="The feeds it reads (masked); empty: every feed.")
    alerts: int = Field(description="Alerts in the last 7 days.")
    last_alert_at: datetime | None


class RulesOut(Body):
    rules: list[RuleOut]


class DeliveriesOut(Body):
    deliveries: list[DeliveryOut]


class ReplayIn(Body):
    webhook: str | None = Field(default=None, description="Only the delivery to this webhook.")


class ReplayOut(Body):
    requeued: int = Field(description="Deliveries made due now with a fresh retry budget.")


class MatchIn(Body):
    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = ""
    summary: str = ""
    lang: str | None = None
    item: int | None = Field(default=None, description="A stored item's id instead of text.")
    rule: str | None = Field(default=None, description="A live rule's id; none: every rule.")
    draft: str | None = Field(default=None, description="A draft rule file (YAML) to try.")


class ClauseOut(Body):
    path: str
    clause: str
    holds: bool
    reason: str
    absent: list[str] = []
    near_misses: list[dict[str, object]] = []
    parts: list[ClauseOut] = []


class VerdictOut(Body):
    rule: RuleRef
    matched: bool
    score: float | None
    matches: list[MatchedWord]
    clauses: list[ClauseOut]


class MatchOut(Body):
    draft: bool
    verdicts: list[VerdictOut]


class BacktestIn(Body):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str | None = None
    draft: str | None = None


class ItemOut(Body):
    id: int
    title: str
    link: str | None
    first_seen_at: datetime
    feed: str = Field(description="The feed's name, or its URL masked.")


class DifferenceOut(Body):
    change: str = Field(description="new: would alert now, did not; gone: alerted, would not now")
    rule_id: str
    score: float | None
    alert_id: str | None
    item: ItemOut
    matches: list[MatchedWord]


class BacktestOut(Body):
    since: datetime
    items: int
    without_text: int = Field(description="Items past retention.item_text, left out.")
    still_alerting: int
    differences: list[DifferenceOut]


class ProblemOut(Body):
    error: str
    problems: list[str] = []


ClauseOut.model_rebuild()


# from the store's views ---------------------------------------------------------------------


def _word(hit: Evidence | TermHit) -> MatchedWord:
    return MatchedWord(
        term=hit.term, field=hit.field, text=hit.text, start=hit.start, end=hit.end,
        score=round(hit.score, 1), how=hit.how,
    )  # fmt: skip


def delivery_out(view: DeliveryView) -> DeliveryOut:
    return DeliveryOut(
        id=view.id,
        alert_id=view.alert_id,
        webhook=view.webhook,
        state=view.state,
        attempts=view.attempts,
        last_error=None if view.last_error is None else mask_urls(view.last_error),
        last_status=view.last_status,
        next_attempt_at=view.next_attempt_at,
        delivered_at=view.delivered_at,
    )


def alert_out(view: AlertView, deliveries: list[DeliveryView]) -> AlertOut:
    return AlertOut(
        id=view.id,
        rule=RuleRef(id=view.rule_id, title=view.rule_title),
        severity=view.severity,
        score=view.score,
        created_at=view.created_at,
        title=view.title,
        summary=view.summary,
        link=view.link,
        lang=view.lang,
        published_at=view.published_at,
        feed=FeedRef(id=view.feed_id, url=shown_url(view.feed_url), name=view.feed_name),
        matches=[_word(hit) for hit in view.evidence],
        story=view.group_id,
        deliveries=[delivery_out(d) for d in deliveries],
    )


def story_out(story: StoryView, deliveries: dict[str, list[DeliveryView]]) -> StoryOut:
    return StoryOut(
        id=story.id,
        rule=RuleRef(id=story.rule_id, title=story.rule_title),
        severity=story.severity,
        first_seen=story.first_seen,
        last_seen=story.last_seen,
        sources=story.sources,
        languages=story.languages,
        count=len(story.alerts),
        alerts=[alert_out(a, deliveries.get(a.id, [])) for a in story.alerts],
    )


def feed_out(view: FeedView) -> FeedOut:
    return FeedOut(
        id=view.id,
        url=shown_url(view.url),
        name=view.name,
        title=view.title,
        health=view.health,
        last_error=None if view.last_error is None else mask_urls(view.last_error),
        error_count=view.error_count,
        last_status=view.last_status,
        moved_to=None if view.moved_to is None else shown_url(view.moved_to),
        next_check_at=view.next_check_at,
        last_checked_at=view.last_checked_at,
        last_success_at=view.last_success_at,
        last_new_item_at=view.last_new_item_at,
        items=view.items,
        items_per_day=list(view.per_day),
    )


def _clause(clause: Clause) -> ClauseOut:
    return ClauseOut(
        path=clause.path,
        clause=clause.clause,
        holds=clause.holds,
        reason=clause.reason,
        absent=list(clause.absent),
        near_misses=[miss.as_json() for miss in clause.near_misses],
        parts=[_clause(part) for part in clause.parts],
    )


def verdict_out(outcome: Outcome) -> VerdictOut:
    verdict: Verdict = outcome.verdict
    found = outcome.match
    return VerdictOut(
        rule=RuleRef(id=verdict.rule_id, title=verdict.rule_title),
        matched=found is not None,
        score=None if found is None else round(found.score, 1),
        matches=[] if found is None else [_word(hit) for hit in found.hits],
        clauses=[_clause(clause) for clause in verdict.clauses],
    )


def _difference(difference: Difference) -> DifferenceOut:
    stored = difference.stored
    item = stored.item
    return DifferenceOut(
        change=difference.change,
        rule_id=difference.rule_id,
        score=None if difference.score is None else round(difference.score, 1),
        alert_id=difference.alert_id,
        item=ItemOut(
            id=stored.id,
            title=item.title,
            link=item.link,
            first_seen_at=stored.first_seen_at,
            feed=item.feed_name or shown_url(item.feed_url),
        ),
        matches=[_word(hit) for hit in difference.hits],
    )


def backtest_out(result: BacktestResult) -> BacktestOut:
    return BacktestOut(
        since=result.since,
        items=result.items,
        without_text=result.without_text,
        still_alerting=result.still_alerting,
        differences=[_difference(d) for d in result.differences],
    )
