"""The events monitor sends, typed: `alert.created`, `alert.updated`, `alert.digest`,
`feed.unhealthy` and `feed.recovered`, with their ids and their JSON Schema.

Every event is `{"type", "timestamp", "data"}`. An event is built once, as one of the models
below, when it is written to the outbox; its body is stored as JSON text (keys sorted) and every
attempt sends those same bytes, so receivers that deduplicate on `webhook-id` also see an
identical payload. Targets read a stored body back once, with `parse_event` (a union
discriminated on `type`), and render from the model.

Receivers get the schema of every body from `events_schema()` (`monitor schema events`,
config/schema/events.schema.json). New fields may be added to any object; receivers ignore the
ones they do not know, and so does `parse_event`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from monitor.models import Item, Match

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
Severity = Literal["low", "medium", "high", "critical"]
EventType = Literal[
    "alert.created", "alert.updated", "alert.digest", "feed.unhealthy", "feed.recovered"
]
Timestamp = Annotated[
    str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", examples=["2026-03-01T12:00:02Z"])
]


def new_event_id(prefix: str = "evt", now: datetime | None = None) -> str:
    """`evt_` + a ULID-like id (48 bits of milliseconds, 80 random bits): sortable by time."""
    millis = int((now.timestamp() if now else time.time()) * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, index = divmod(value, 32)
        chars.append(_CROCKFORD[index])
    return f"{prefix}_" + "".join(reversed(chars))


def new_alert_id(now: datetime | None = None) -> str:
    """`alrt_` + a ULID-like id (new_event_id): sortable by time."""
    return new_event_id("alrt", now)


def stamp(moment: datetime) -> str:
    """`2026-03-01T12:00:02Z`: how every event writes a time (UTC, to the second)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else stamp(moment)


def envelope(event_type: str, data: Mapping[str, object], now: datetime) -> dict[str, object]:
    """`{"type", "timestamp", "data"}`: the shape of every event monitor sends."""
    return {"type": event_type, "timestamp": stamp(now), "data": dict(data)}


class EventModel(BaseModel):
    """A value inside an event: frozen; unknown keys of a stored body are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


def _absent_when_none(value: object) -> bool:
    return value is None


# alerts -------------------------------------------------------------------------------------


class RuleRef(EventModel):
    id: str = Field(description="The rule's stable id.")
    title: str
    severity: Severity


class MatchedTerm(EventModel):
    """One term of the rule that fired (as `monitor match` prints it)."""

    # the fields of TermHit.as_json; one added later needs a default, so that the bodies
    # stored before it still parse (docstrings here are the schema's descriptions)

    term: str = Field(description="The term as the rule writes it.")
    field: str = Field(description="title | summary | content | tags")
    text: str = Field(description="The text of the item it matched, as the item has it.")
    start: int = Field(description="Offset of `text` in the field's text.")
    end: int
    score: float = Field(description="0..100")
    how: Literal["exact", "prefix", "inflected", "transliterated", "fuzzy"] | None = Field(
        default=None,
        exclude_if=_absent_when_none,
        description="How the text matched the term: the written form, a prefix, another form "
        "of the word (inflected), the other script's spelling, or a typo (fuzzy). Absent in "
        "bodies stored before monitor said so.",
    )
    lang: Literal["en", "es", "ru"] | None = Field(
        default=None,
        exclude_if=_absent_when_none,
        description="The language of an inflected or transliterated form; absent otherwise.",
    )
    source: Literal["page"] | None = Field(
        default=None,
        exclude_if=_absent_when_none,
        description="`page`: the text is on the item's article page, fetched for full text "
        "(its main text is the field `content`); absent: the feed's own text.",
    )


class FeedRef(EventModel):
    url: str | None
    name: str | None


class ItemRef(EventModel):
    guid: str | None = Field(description="The feed's own id for the item.")
    title: str
    link: str | None
    summary: str
    published: Timestamp | None
    feed: FeedRef


class Source(EventModel):
    """One alert of a story group: an outlet that told the story."""

    alert_id: str
    title: str
    link: str | None
    published: Timestamp | None
    feed: FeedRef


class Group(EventModel):
    """A story group: the alerts of a webhook's rules that tell the same story, first first."""

    id: str = Field(description="The group's id: its first alert's id.")
    count: int = Field(ge=1, description="How many alerts the group has (all of them).")
    sources: list[Source] = Field(description="Its sources, first first (at most 50).")


class AlsoMatched(EventModel):
    """Another rule the same item matched, whose own alert a webhook getting this one is not
    sent (one item, one alert per webhook)."""

    id: str
    title: str
    severity: Severity
    score: float


def _absent_when_empty(value: object) -> bool:
    return value == []


class AlertData(EventModel):
    id: str = Field(description="The alert id; also the `webhook-id`.")
    rule: RuleRef
    score: float
    matches: list[MatchedTerm]
    item: ItemRef
    also: list[AlsoMatched] = Field(
        default_factory=list,
        exclude_if=_absent_when_empty,
        description="The other rules the same item matched, best first; absent when it matched "
        "one. A webhook that wants several of them gets one alert: the one of its best rule.",
    )
    group: Group | None = Field(
        default=None,
        exclude_if=_absent_when_none,
        description="Present on webhooks with `group:`: the story this alert opens.",
    )


class UpdatedData(AlertData):
    group: Group = Field(description="The story's group, with this alert among its sources.")


class AlertCreated(EventModel):
    """A rule matched an item."""

    type: Literal["alert.created"]
    timestamp: Timestamp
    data: AlertData


class AlertUpdated(EventModel):
    """One more outlet told a story that was sent before (webhooks with `group:`)."""

    type: Literal["alert.updated"]
    timestamp: Timestamp
    data: UpdatedData


# digests ------------------------------------------------------------------------------------


class Window(EventModel):
    start: Timestamp
    end: Timestamp


class PartOf(EventModel):
    number: int = Field(ge=1)
    of: int = Field(ge=1)


class Story(EventModel):
    """One story of a digest: its first item, the worst severity and best score of its alerts."""

    group: str | None = Field(description="The story group's id; null: an alert on its own.")
    rule: RuleRef
    severity: Severity
    score: float | None
    item: ItemRef
    sources: int = Field(ge=1, description="How many alerts told the story.")


class DigestData(EventModel):
    id: str = Field(description="The digest's id (`dgst_…`); also the `webhook-id`.")
    window: Window
    count: int = Field(description="Alerts in this message.")
    part: PartOf | None = Field(
        default=None,
        exclude_if=_absent_when_none,
        description="This message's number among the window's messages.",
    )
    stories: list[Story]


class AlertDigest(EventModel):
    """Alerts held by `digest:` or `quiet:`, sent together when their window ends."""

    type: Literal["alert.digest"]
    timestamp: Timestamp
    data: DigestData


# feed health --------------------------------------------------------------------------------


class FeedHealth(EventModel):
    feed: FeedRef
    reason: Literal["failing", "silent"]
    since: Timestamp | None = Field(description="When it began failing, or its last news.")
    last_success: Timestamp | None
    last_error: str | None
    error_count: int
    usual_interval: int | None = Field(description="Seconds between the feed's news, usually.")


class FeedUnhealthy(EventModel):
    """A feed failing for too long, or silent far beyond its usual cadence."""

    type: Literal["feed.unhealthy"]
    timestamp: Timestamp
    data: FeedHealth


class FeedRecovered(EventModel):
    """A feed that was unhealthy works (or brings news) again; `data` as when it was not."""

    type: Literal["feed.recovered"]
    timestamp: Timestamp
    data: FeedHealth


Event = Annotated[
    AlertCreated | AlertUpdated | AlertDigest | FeedUnhealthy | FeedRecovered,
    Field(discriminator="type"),
]
EVENT: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(text: str | bytes) -> Event:
    """A stored (or received) body as its event; pydantic.ValidationError when it is none."""
    return EVENT.validate_json(text)


def dump(event: Event) -> str:
    """The stored form of an event: JSON, keys sorted, as the outbox keeps every body."""
    return json.dumps(document(event), ensure_ascii=False, sort_keys=True)


def document(event: Event) -> dict[str, Any]:
    """The event as a JSON object (absent optional parts left out)."""
    return event.model_dump(mode="json")


def events_schema() -> dict[str, Any]:
    """JSON Schema of every body monitor sends (format `standard`; `data` of `cloudevents`)."""
    schema = EVENT.json_schema()
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "monitor event",
        "description": "A body monitor sends: `type` says which event, `data` what it carries. "
        "Objects may gain fields; ignore the ones you do not know.",
        **schema,
    }


# builders -----------------------------------------------------------------------------------


def alert_data(alert_id: str, item: Item, match: Match, also: Sequence[Match] = ()) -> AlertData:
    return AlertData(
        id=alert_id,
        rule=RuleRef.model_validate(
            {"id": match.rule_id, "title": match.rule_title, "severity": match.severity}
        ),
        score=round(match.score, 1),
        matches=[MatchedTerm.model_validate(hit) for hit in match.matches_json()],
        item=ItemRef(
            guid=item.guid,
            title=item.title,
            link=item.link,
            summary=item.summary,
            published=iso(item.published),
            feed=FeedRef(url=item.feed_url, name=item.feed_name),
        ),
        also=[
            AlsoMatched.model_validate(
                {
                    "id": other.rule_id,
                    "title": other.rule_title,
                    "severity": other.severity,
                    "score": round(other.score, 1),
                }
            )
            for other in also
        ],
    )


def alert_created(
    alert_id: str, item: Item, match: Match, now: datetime, also: Sequence[Match] = ()
) -> dict[str, object]:
    """The `alert.created` event of the contract, as the store keeps it; `also`: the other
    rules the item matched."""
    created = AlertCreated(
        type="alert.created",
        timestamp=stamp(now),
        data=alert_data(alert_id, item, match, also),
    )
    return document(created)
