"""Noise control: story groups, digests, quiet hours and urgent alerts, per webhook.

Before the dispatcher claims deliveries of a webhook with `group:`, `digest:` or `quiet:`, it
routes that webhook's new alert deliveries here, in one transaction holding the webhook's lock
(monitor.store.routing), oldest alert first:

1. Group (`group: 12h`): the alert's title and summary are compared with the stories of the
   webhook's open groups, whichever of its rules opened them (monitor.delivery.grouping): each
   group's first source and the first of each other language (at most four texts a group:
   comparing is the cost of routing). The first alert of a story opens a group (its id is the
   alert's, it stays open `group` after that alert) and is sent as `alert.created` with
   `data.group = {id, count: 1, sources: [source]}`; each later alert of the story is sent as
   `alert.updated` with the group's count and every source so far, first first.
2. Hold (`digest: 1h`, `quiet:`): unless the alert's severity reaches `urgent`, the delivery is
   `held`, neither sent nor lost, until its window ends: the open window of the webhook (held
   deliveries not yet due), else one that opens now and lasts `digest`; a window that would end
   within quiet hours (or, without `digest`, an alert arriving within them) ends when they end.
3. Digest: held deliveries whose window has ended become one `alert.digest`, itself an outbox
   row (retried, signed, one `webhook-id` on every attempt); each story shown once (a group's
   alerts together, with the group's source count), at most `digest_max_items` stories a
   message (more: several messages, `data.part`). Held deliveries are `digested` into it and
   `delivered` when it is. An urgent alert joining a story whose `alert.created` is held sends
   that first alert at once, before it.

Everything lives in the store, so a restart neither repeats a group's `alert.created` nor loses
a held alert; replicas route one webhook at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy.engine import Connection, Engine

from monitor.delivery.grouping import StoryText, best_match
from monitor.delivery.settings import QuietHours, WebhookConfig, severity_rank
from monitor.durations import Budget
from monitor.events import (
    AlertCreated,
    AlertDigest,
    AlertUpdated,
    DigestData,
    Group,
    PartOf,
    Source,
    Story,
    UpdatedData,
    Window,
    dump,
    new_event_id,
    parse_event,
    stamp,
)
from monitor.store import routing
from monitor.store.routing import HeldDelivery, Routed, StoryGroup, Unrouted

CREATED: Final = "alert.created"
UPDATED: Final = "alert.updated"
DIGEST_EVENT: Final = "alert.digest"


@dataclass(frozen=True, slots=True)
class RouteSummary:
    routed: int = 0
    updates: int = 0  # deliveries that became alert.updated of an earlier story
    held: int = 0
    digests: tuple[str, ...] = ()
    released: int = 0  # held alert.created sent at once: an urgent update of its story came


def quiet_end(quiet: QuietHours, moment: datetime) -> datetime | None:
    """When the quiet hours `moment` falls in end (UTC), or None outside them."""
    zone = quiet.zone
    local = moment.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    start, end = quiet.start_time, quiet.end_time
    day = local.date()
    if start < end:
        inside = start <= clock < end
    else:  # overnight, e.g. 22:00-07:00
        inside = clock >= start or clock < end
        if clock >= start:
            day += timedelta(days=1)
    if not inside:
        return None
    return datetime.combine(day, end, tzinfo=zone).astimezone(UTC)


def release_time(
    hook: WebhookConfig, severity: str, now: datetime, window: datetime | None
) -> datetime | None:
    """Until when a new alert of `severity` is held, or None to send it at once."""
    if (hook.digest is None and hook.quiet is None) or hook.urgent_enough(severity):
        return None
    if hook.digest is None:  # quiet hours alone: held while they last, whatever else is held
        assert hook.quiet is not None
        return quiet_end(hook.quiet, now)
    if window is not None:
        return window
    release = now + hook.digest
    if hook.quiet is not None:
        end = quiet_end(hook.quiet, release)
        if end is not None:
            release = end
    return release


def route_webhook(
    engine: Engine,
    hook: WebhookConfig,
    now: datetime,
    budgets: Mapping[str, Budget] | None = None,
) -> RouteSummary:
    """Route the webhook's new deliveries and cut the digests that are due (one transaction);
    `budgets`: the rules' `max_alerts`, by rule id."""
    if not routing.has_work(engine, hook.name, now):
        return RouteSummary()
    with routing.locked(engine, hook.name, now) as db:
        pending = routing.unrouted(db, hook.name, now)
        groups: list[StoryGroup] = []
        if hook.group is not None and pending:
            earliest = min(row.created_at for row in pending)
            groups = routing.open_groups(db, hook.name, earliest)
        window = routing.open_window(db, hook.name, now)
        spent = Spending(db, hook.name, budgets or {}, now)
        decisions = []
        updates = held = 0
        for row in pending:
            event, payload, group_id = CREATED, None, None
            if hook.group is not None:
                event, payload, group_id = _group(hook.group, row, groups, now)
                updates += event == UPDATED
            until = release_time(hook, row.severity, now, window)
            if until is not None:
                window = window or until
            elif not hook.urgent_enough(row.severity):
                # over its rule's budget: held until the budget has room, which opens no
                # window for the webhook's other alerts
                until = spent.over(row.rule_id)
            if until is not None:
                held += 1
            decisions.append(Routed(row.id, event, payload, group_id, until))
        decisions, released = _release_firsts(decisions)
        held -= released
        routing.save_groups(db, hook.name, groups)
        routing.mark_routed(db, decisions, now)
        created_now = {d.group_id for d in decisions if d.event == CREATED}
        sent_updates = {d.group_id for d in decisions if d.event == UPDATED and not d.held_until}
        released += routing.release_firsts(db, hook.name, sent_updates - created_now)
        due = routing.due_held(db, hook.name, now)
        digests: tuple[str, ...] = ()
        if due:
            counts = routing.group_counts(db, hook.name, [h.group_id for h in due if h.group_id])
            parts = build_digests(due, counts, now, hook.digest_max_items)
            for digest in parts:
                routing.add_digest(db, hook.name, digest, now)
            digests = tuple(d.id for d in parts)
    return RouteSummary(len(decisions), updates, held, digests, released)


class Spending:
    """What each budgeted rule (`max_alerts: 20/1h`) has sent the webhook one by one in the
    window before `now`, read once a rule per routing pass and counted on as it routes."""

    def __init__(
        self, db: Connection, webhook: str, budgets: Mapping[str, Budget], now: datetime
    ) -> None:
        self.db, self.webhook, self.budgets, self.now = db, webhook, budgets, now
        self.sent: dict[str, tuple[int, datetime | None]] = {}

    def over(self, rule_id: str) -> datetime | None:
        """None: the alert may go now (and is counted); else when the window has room again,
        until which it is held (and then sent in a digest)."""
        budget = self.budgets.get(rule_id)
        if budget is None:
            return None
        if rule_id not in self.sent:
            since = self.now - budget.window
            self.sent[rule_id] = routing.sent_since(self.db, self.webhook, rule_id, since)
        count, first = self.sent[rule_id]
        if count >= budget.count:
            return max((first or self.now) + budget.window, self.now)
        self.sent[rule_id] = (count + 1, first or self.now)
        return None


def _release_firsts(decisions: list[Routed]) -> tuple[list[Routed], int]:
    """An update sent at once (urgent) of a story whose `alert.created` is held: the receiver
    would see an update of a story it never saw, so that first alert is sent at once too (it
    is claimed first: it is older). Done here for firsts routed in this same pass."""
    sent = {d.group_id for d in decisions if d.event == UPDATED and d.held_until is None}
    out = [
        dataclasses.replace(d, held_until=None)
        if d.event == CREATED and d.held_until is not None and d.group_id in sent
        else d
        for d in decisions
    ]
    return out, sum(a is not b for a, b in zip(out, decisions, strict=True))


def _group(
    span: timedelta, row: Unrouted, groups: list[StoryGroup], now: datetime
) -> tuple[str, str, str]:
    """The event this alert is within its story (alert.created or alert.updated), its body and
    the story's group id; `groups` (the webhook's open groups, whatever rule opened them: a
    story several rules match is one story) is updated in place."""
    created = _created(row.payload)
    data, item = created.data, created.data.item
    story = StoryText(item.title, item.summary, row.lang)
    source = Source(
        alert_id=row.alert_id,
        title=item.title,
        link=item.link,
        published=item.published,
        feed=item.feed,
    ).model_dump(mode="json")
    open_now = [g for g in groups if g.closes_at > row.created_at]
    candidates = [
        (g.id, StoryText(text[0] or "", text[1] or "", text[2]))
        for g in open_now
        for text in g.texts
    ]
    match = best_match(story, candidates) if candidates else None
    group = next((g for g in open_now if g.id == match), None)
    if group is None:
        group = StoryGroup(
            id=row.alert_id,
            rule_id=row.rule_id,
            opened_at=row.created_at,
            closes_at=row.created_at + span,
            count=1,
            sources=[source],
            texts=[[item.title, item.summary, row.lang]],
            stored=False,
        )
        groups.append(group)
        grouped = data.model_copy(update={"group": _typed(group)})
        first = created.model_copy(update={"data": grouped})
        return CREATED, dump(first), group.id
    group.count += 1
    if len(group.sources) < MAX_SOURCES:  # `count` keeps the whole number
        group.sources.append(source)
    if len(group.texts) < routing.MAX_TEXTS and row.lang not in {t[2] for t in group.texts}:
        group.texts.append([item.title, item.summary, row.lang])  # one more language to compare
    group.changed = True
    updated = AlertUpdated(
        type=UPDATED,
        timestamp=stamp(now),
        data=UpdatedData(**{**dict(data), "group": _typed(group)}),
    )
    return UPDATED, dump(updated), group.id


MAX_SOURCES = 50  # sources listed in a group (and in each alert.updated body); `count` is all


def _typed(group: StoryGroup) -> Group:
    sources = [Source.model_validate(s) for s in group.sources]
    return Group(id=group.id, count=group.count, sources=sources)


def _created(payload: str) -> AlertCreated:
    """An alert's stored body: always an `alert.created` (monitor.events.alert_created)."""
    event = parse_event(payload)
    if not isinstance(event, AlertCreated):
        raise TypeError(f"an alert's stored body is an {event.type}, not an alert.created")
    return event


def build_digests(
    held: Sequence[HeldDelivery], counts: dict[str, int], now: datetime, max_items: int = 50
) -> list[routing.Digest]:
    """The `alert.digest` messages for these held deliveries: each story once (the worst
    severity and best score of its alerts, its first item, how many sources told it), at most
    `max_items` stories a message, in order; a story's alerts are never split between two.

    Beyond `max_items` the window is split into several messages rather than one listing the
    first N and a count of the rest: each held alert is marked delivered with the digest that
    carries it, so every one must be in a body a receiver got (machine receivers read them all;
    chat targets show the first few entries of each anyway)."""
    members: dict[str, list[HeldDelivery]] = {}
    for entry in held:
        key = entry.group_id or f"alert:{entry.alert_id}"
        members.setdefault(key, []).append(entry)
    keys = list(members)
    chunks = [keys[i : i + max_items] for i in range(0, len(keys), max_items)]
    start = min((h.routed_at or h.created_at) for h in held)
    end = max(h.held_until for h in held)
    window = Window(start=stamp(min(start, end)), end=stamp(end))
    return [
        _digest(
            [e for key in chunk for e in members[key]],
            counts,
            now,
            window,
            PartOf(number=number, of=len(chunks)),
        )
        for number, chunk in enumerate(chunks, 1)
    ]


def _digest(
    held: Sequence[HeldDelivery],
    counts: dict[str, int],
    now: datetime,
    window: Window,
    part: PartOf,
) -> routing.Digest:
    """One `alert.digest` message: each story of `held` once."""
    digest_id = new_event_id("dgst", now)
    stories: dict[str, Story] = {}
    for entry in held:
        data = _created(entry.payload).data
        key = entry.group_id or f"alert:{entry.alert_id}"
        story = stories.get(key)
        if story is None:
            stories[key] = Story.model_validate(
                {
                    "group": entry.group_id,
                    "rule": data.rule,
                    "severity": entry.severity,
                    "score": data.score,
                    "item": data.item,
                    "sources": counts.get(entry.group_id, 1) if entry.group_id else 1,
                }
            )
            continue
        if severity_rank(entry.severity) > severity_rank(story.severity):
            story = story.model_copy(update={"severity": entry.severity})
        if story.score is None or data.score > story.score:
            story = story.model_copy(update={"score": data.score})
        stories[key] = story
    digest = AlertDigest(
        type=DIGEST_EVENT,
        timestamp=stamp(now),
        data=DigestData(
            id=digest_id, window=window, count=len(held), part=part, stories=list(stories.values())
        ),
    )
    return routing.Digest(digest_id, dump(digest), [h.id for h in held])
