"""Events other than `alert.created`, told in a few lines for chat targets.

`alert.created` is rendered by each target as the alert itself (a card, an embed, …). Every other
event — `alert.updated` (one more outlet reports a grouped story), `alert.digest` (a window of
held alerts), `feed.unhealthy` and `feed.recovered` — becomes a `Notice`: one title line, a few
plain lines, and a list of entries (label and link), which slack, discord, teams and ntfy lay out
their own way within their limits. Unknown types get their type as title and nothing invented.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.delivery.base import Alert
from monitor.delivery.settings import severity_rank
from monitor.delivery.text import clip, one_line

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


def notice(alert: Alert) -> Notice:
    data = alert.data
    if alert.type == "alert.updated":
        return _updated(alert, data)
    if alert.type == "alert.digest":
        return _digest(alert, data)
    if alert.type in ("feed.unhealthy", "feed.recovered"):
        return _feed(alert, data)
    return Notice(title=alert.type or "event", footer=alert.id)


def sources(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The story group's sources (`data.group.sources`), first first."""
    group = _mapping(data.get("group"))
    return [s for s in group.get("sources") or [] if isinstance(s, Mapping)]


def source_entries(listed: Sequence[Mapping[str, Any]]) -> list[Entry]:
    return [
        Entry(
            label=_text(s.get("title")) or "(untitled item)",
            link=_link(s.get("link")),
            note=_text(_mapping(s.get("feed")).get("name"))
            or _text(_mapping(s.get("feed")).get("url")),
        )
        for s in listed
    ]


def _updated(alert: Alert, data: Mapping[str, Any]) -> Notice:
    group = _mapping(data.get("group"))
    count = group.get("count")
    listed = sources(data)
    n = count if isinstance(count, int) else len(listed) or 1
    first = _text(listed[0].get("title")) if listed else ""
    lines = [f"{alert.rule_title or alert.rule_id} · {n} sources so far"]
    if first and first != alert.title:
        lines.append(f"first reported as: {first}")
    return Notice(
        title=f"Also reported by {alert.feed_name or 'another source'}: {alert.title}",
        lines=lines,
        entries=[Entry(alert.title, alert.link, alert.feed_name)],
        link=alert.link,
        severity=alert.severity,
        footer=f"{alert.id} · group {_text(group.get('id'))}".strip(" ·"),
    )


def _digest(alert: Alert, data: Mapping[str, Any]) -> Notice:
    window = _mapping(data.get("window"))
    stories = [s for s in data.get("stories") or [] if isinstance(s, Mapping)]
    count = data.get("count")
    total = count if isinstance(count, int) else len(stories)
    entries = []
    worst = "low"
    for story in stories:
        item = _mapping(story.get("item"))
        rule = _mapping(story.get("rule"))
        severity = _text(story.get("severity")) or _text(rule.get("severity")) or "medium"
        if severity_rank(severity) > severity_rank(worst):
            worst = severity
        n = story.get("sources")
        note = f"{severity}, {n} sources" if isinstance(n, int) and n > 1 else severity
        entries.append(
            Entry(_text(item.get("title")) or "(untitled item)", _link(item.get("link")), note)
        )
    span = " – ".join(p for p in (_text(window.get("start")), _text(window.get("end"))) if p)
    plural = "s" if total != 1 else ""
    part = _mapping(data.get("part"))
    number, of = part.get("number"), part.get("of")
    split = f" (part {number} of {of})" if isinstance(of, int) and of > 1 else ""
    shown = _within_budget(entries[:MAX_ENTRIES])
    return Notice(
        title=f"Digest{split}: {total} alert{plural} in {len(stories)} "
        f"stor{'ies' if len(stories) != 1 else 'y'}",
        lines=[span] if span else [],
        entries=shown,
        more=len(entries) - len(shown),
        severity=worst,
        footer=alert.id,
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


def _feed(alert: Alert, data: Mapping[str, Any]) -> Notice:
    feed = _mapping(data.get("feed"))
    url = _text(feed.get("url"))
    name = _text(feed.get("name")) or url or "a feed"
    reason = _text(data.get("reason"))
    since = _text(data.get("since"))
    lines: list[str] = []
    if alert.type == "feed.recovered":
        title = f"Feed recovered: {name}"
        severity = "low"
        if since:
            lines.append(f"unhealthy ({reason or 'unknown'}) since {since}; polls succeed again")
    else:
        title = f"Feed {reason or 'unhealthy'}: {name}"
        severity = "medium"
        errors = data.get("error_count")
        if reason == "silent":
            interval = data.get("usual_interval")
            usual = f" (usually every {_seconds(interval)})" if isinstance(interval, int) else ""
            lines.append(f"no new items since {since or '?'}{usual}")
        else:
            lines.append(f"failing since {since or '?'}: {errors or '?'} errors in a row")
        last_error = _text(data.get("last_error"))
        if last_error:
            lines.append(f"last error: {last_error}")
    last_success = _text(data.get("last_success"))
    lines.append(f"last success: {last_success or 'never'}")
    return Notice(
        title=title,
        lines=lines,
        link=_link(url),
        severity=severity,
        footer=alert.id,
    )


def _seconds(value: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{value // size}{unit}"
    return f"{value}s"


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _link(value: object) -> str | None:
    if not isinstance(value, str) or len(value) > LINK_MAX:
        return None
    return value if value.startswith(("http://", "https://")) else None
