"""An event as lines of styled spans, laid out as HTML or plain text (telegram, matrix, email).

Targets that take a little HTML and a plain-text twin (Telegram's `parse_mode: HTML`, Matrix's
`formatted_body` and `body`, an email's two alternatives) say the same thing: a title line, the
summary, the facts, what matched, a link, the id. `alert_lines` and `notice_lines` say it once,
as `Span`s (text, a style, a link, the length the text is cut to); `html` and `text` lay a line
out, escaping feed text (`&`, `<`, `>`, and `"` in attributes) and cutting it between whole
characters, never inside an entity. Each line is whole HTML on its own (every tag it opens it
closes), so `fit` can drop the lines that go over a target's limit and the rest stays valid.
"""

from __future__ import annotations

import html as html_module
from dataclasses import dataclass
from typing import Literal

from monitor.delivery.base import AlertView
from monitor.delivery.notices import Notice
from monitor.delivery.text import MARK, Measure, chars, clip, one_line

Style = Literal["", "b", "i", "code"]
ICONS = {"low": "⚪", "medium": "🔵", "high": "🟠", "critical": "🔴"}
TITLE_MAX = 300
SUMMARY_MAX = 1500  # a notification, not the article
FACT_MAX = 200
LINK_MAX = 2000  # a longer link is left out rather than cut (a cut link leads nowhere)


@dataclass(frozen=True, slots=True)
class Span:
    text: str
    style: Style = ""
    link: str | None = None
    limit: int = FACT_MAX  # characters of `text` shown, before escaping


Line = tuple[Span, ...]


def html_escape(ch: str) -> str:
    return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}.get(ch, ch)


def _head(span: Span) -> str:
    """The part of a span's text that can be shown: escaping never shortens a character, so
    past `limit + 1` characters nothing changes what `clip` keeps (a long text still gets its
    mark), and a feed's 100,000-character summary costs no more than a short one."""
    return span.text[: span.limit + 1]


def html(line: Line) -> str:
    """The line as HTML: feed text escaped, styles as tags, links as `<a href>`."""
    out = []
    for span in line:
        shown = clip(_head(span), span.limit, escape=html_escape)
        if span.style:
            shown = f"<{span.style}>{shown}</{span.style}>"
        if span.link is not None:
            shown = f'<a href="{html_module.escape(span.link, quote=True)}">{shown}</a>'
        out.append(shown)
    return "".join(out)


def text(line: Line) -> str:
    """The line as plain text: a link follows its label in angle brackets."""
    out = []
    for span in line:
        shown = clip(_head(span), span.limit)
        out.append(f"{shown} <{span.link}>" if span.link is not None else shown)
    return "".join(out)


def fit(rendered: list[str], limit: int, measure: Measure = chars, sep: str = "\n") -> str:
    """The lines joined by `sep`, as many as fit `limit` (measured by `measure`); when some are
    left out, the last kept ends with the mark `…`. The first line is cut to fit if it must."""
    kept: list[str] = []
    for index, line in enumerate(rendered):
        candidate = sep.join([*kept, line])
        rest = index + 1 < len(rendered)
        if measure(candidate) + (measure(MARK) if rest else 0) <= limit:
            kept.append(line)
            continue
        if not kept:  # not even the first line: cut it (plain text) to what fits
            return clip(line, limit, measure=measure)
        return sep.join(kept) + MARK
    return sep.join(kept)


def _link(value: str | None) -> str | None:
    return value if value is not None and len(value) <= LINK_MAX else None


def alert_lines(view: AlertView) -> list[Line]:
    """`alert.created`: the item's title (linked), its summary, rule and feed, what matched."""
    icon = ICONS.get(view.severity, "🔔")
    lines: list[Line] = [
        (Span(f"{icon} "), Span(one_line(view.title), "b", _link(view.link), TITLE_MAX))
    ]
    if view.summary:
        lines.append((Span(view.summary, limit=SUMMARY_MAX),))
    facts = f"{view.severity} · score {view.score:g}"
    lines.append((Span(view.rules_label, "i"), Span(f" · {facts}")))
    if view.feed_name:
        lines.append((Span("Feed: "), Span(view.feed_name)))
    terms = ", ".join(view.terms())
    if terms:
        lines.append((Span("Matched: "), Span(terms, limit=FACT_MAX * 2)))
    if view.link and _link(view.link):
        lines.append((Span("Open item", link=view.link),))
    lines.append((Span(view.id, "code"),))
    return lines


def notice_lines(note: Notice) -> list[Line]:
    """Any other event: its title, its lines, its entries (linked), how many more, its id."""
    icon = ICONS.get(note.severity, "🔔")
    lines: list[Line] = [(Span(f"{icon} "), Span(one_line(note.title), "b", limit=TITLE_MAX))]
    lines += [(Span(line, limit=FACT_MAX * 2),) for line in note.lines]
    for entry in note.entries:
        row: list[Span] = [Span("• "), Span(one_line(entry.label), link=_link(entry.link))]
        if entry.note:
            row.append(Span(f" · {entry.note}", limit=100))
        lines.append(tuple(row))
    if note.more:
        lines.append((Span(f"… and {note.more} more"),))
    if note.footer:
        lines.append((Span(note.footer, "code"),))
    return lines
