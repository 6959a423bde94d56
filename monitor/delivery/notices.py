"""Events other than `alert.created`, told in a few lines for chat targets.

`alert.created` is rendered by each target as the alert itself (a card, an embed, …). Every other
event — `alert.updated` (one more outlet reports a grouped story), `alert.digest` (a window of
held alerts), `feed.unhealthy` and `feed.recovered` — becomes a `Notice`: one title line, a few
plain lines, and a list of entries (label and link), which slack, discord, teams and ntfy lay out
their own way within their limits. `alert.created` has a notice too (its one-line label and
summary), for the `json` target's `notice`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from monitor.delivery.base import AlertView, web_link
from monitor.delivery.settings import severity_rank
from monitor.delivery.text import clip, one_line
from monitor.events import (
    AlertCreated,
    AlertDigest,
    AlertUpdated,
    DigestData,
    Event,
    FeedRecovered,
    FeedUnhealthy,
    Group,
    Source,
)

MAX_ENTRIES = 10  # a digest or a source list longer than this says "… and N more"
# a digest's entries, as the longest target shows them (labels and notes escaped, links): under
# Slack's 3,000 characters a section, with room for the "… and N more" line
ENTRIES_BUDGET = 2_900
LABEL_SHOWN, NOTE_SHOWN, ROW_EXTRA = 200, 100, 10  # what targets clip labels and notes to
LINK_MAX = 500  # a longer link is left out (Slack and Discord drop them; Teams would overflow)


@dataclass(frozen=True, slots=True)
class Entry:
    label: str
    link: str | None = None
    note: str = ""  # e.g. "3 sources", "Reuters"


@dataclass(frozen=True, slots=True)
class Notice:
    title: str
    lines: list[str] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    more: int = 0  # entries left out
    link: str | None = None
    severity: str = "medium"
    footer: str = ""

    def text(self) -> str:
        """The whole notice as plain text lines (ntfy, fallbacks)."""
        out = list(self.lines)
        out += [
            " · ".join(p for p in (clip(one_line(e.label), 200), clip(e.note, 100)) if p)
            for e in self.entries
        ]
        if self.more:
            out.append(f"… and {self.more} more")
        return "\n".join(out)


def notice(message_id: str, event: Event) -> Notice:
    """Any event as a notice; `alert.created` too (its label and summary: json templates)."""
    match event:
        case AlertCreated():
            return _created(AlertView.of(message_id, event))
        case AlertUpdated():
            return _updated(AlertView.of(message_id, event), event.data.group)
        case AlertDigest():
            return _digest(message_id, event.data)
        case FeedUnhealthy() | FeedRecovered():
            return _feed(message_id, event)


def alert_label(view: AlertView) -> str:
    """`[HIGH] Rule title: item title`: an alert in one line."""
    return f"[{view.severity.upper()}] {view.rule_title}: {view.title}"


def source_entries(listed: Sequence[Source]) -> list[Entry]:
    return [
        Entry(
            label=s.title.strip() or "(untitled item)",
            link=_link(s.link),
            note=(s.feed.name or "").strip() or (s.feed.url or "").strip(),
        )
        for s in listed
    ]


def _created(view: AlertView) -> Notice:
    return Notice(
        title=alert_label(view),
        lines=[view.summary] if view.summary else [],
        link=view.link,
        severity=view.severity,
        footer=view.id,
    )


def _updated(view: AlertView, group: Group) -> Notice:
    listed = group.sources
    first = listed[0].title.strip() if listed else ""
    lines = [f"{view.rule_title} · {group.count} sources so far"]
    if first and first != view.title:
        lines.append(f"first reported as: {first}")
    return Notice(
        title=f"Also reported by {view.feed_name or 'another source'}: {view.title}",
        lines=lines,
        entries=[Entry(view.title, view.link, view.feed_name)],
        link=view.link,
        severity=view.severity,
        footer=f"{view.id} · group {group.id.strip()}".strip(" ·"),
    )


def _digest(message_id: str, data: DigestData) -> Notice:
    entries = []
    worst = "low"
    for story in data.stories:
        if severity_rank(story.severity) > severity_rank(worst):
            worst = story.severity
        n = story.sources
        note = f"{story.severity}, {n} sources" if n > 1 else story.severity
        title = story.item.title.strip() or "(untitled item)"
        entries.append(Entry(title, _link(story.item.link), note))
    total, stories = data.count, len(data.stories)
    span = " – ".join(p for p in (data.window.start.strip(), data.window.end.strip()) if p)
    plural = "s" if total != 1 else ""
    part = data.part
    split = f" (part {part.number} of {part.of})" if part is not None and part.of > 1 else ""
    shown = _within_budget(entries[:MAX_ENTRIES])
    return Notice(
        title=f"Digest{split}: {total} alert{plural} in {stories} "
        f"stor{'ies' if stories != 1 else 'y'}",
        lines=[span] if span else [],
        entries=shown,
        more=len(entries) - len(shown),
        severity=worst,
        footer=message_id,
    )


def _within_budget(entries: list[Entry]) -> list[Entry]:
    """The first entries whose rows, as the longest target renders them, fit ENTRIES_BUDGET."""
    kept: list[Entry] = []
    used = 0
    for entry in entries:
        cost = (
            _escaped_length(entry.label, LABEL_SHOWN)
            + len(entry.link or "")
            + _escaped_length(entry.note, NOTE_SHOWN)
            + ROW_EXTRA
        )
        if used + cost > ENTRIES_BUDGET:
            break
        kept.append(entry)
        used += cost
    return kept


def _escaped_length(text: str, shown: int) -> int:
    """How long `text` can be once a target escapes it (`&amp;` in Slack, a backslash before
    Markdown in Discord) and clips it to `shown`."""
    grow = 4 * text.count("&") + 3 * (text.count("<") + text.count(">"))
    grow += sum(text.count(c) for c in "*_~`|[]()\\#")
    return min(len(text) + grow, shown)


def _feed(message_id: str, event: FeedUnhealthy | FeedRecovered) -> Notice:
    data = event.data
    url = (data.feed.url or "").strip()
    name = (data.feed.name or "").strip() or url or "a feed"
    reason, since = data.reason, (data.since or "").strip()
    lines: list[str] = []
    if isinstance(event, FeedRecovered):
        title = f"Feed recovered: {name}"
        severity = "low"
        if since:
            lines.append(f"unhealthy ({reason}) since {since}; polls succeed again")
    else:
        title = f"Feed {reason}: {name}"
        severity = "medium"
        if reason == "silent":
            interval = data.usual_interval
            usual = f" (usually every {_seconds(interval)})" if interval is not None else ""
            lines.append(f"no new items since {since or '?'}{usual}")
        else:
            lines.append(f"failing since {since or '?'}: {data.error_count or '?'} errors in a row")
        last_error = (data.last_error or "").strip()
        if last_error:
            lines.append(f"last error: {last_error}")
    lines.append(f"last success: {(data.last_success or '').strip() or 'never'}")
    return Notice(title=title, lines=lines, link=_link(url), severity=severity, footer=message_id)


def _seconds(value: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{value // size}{unit}"
    return f"{value}s"


def _link(value: str | None) -> str | None:
    if value is None or len(value) > LINK_MAX:
        return None
    return web_link(value)
