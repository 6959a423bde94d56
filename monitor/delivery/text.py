"""Fitting text into a target's limits without breaking it.

`clip` cuts a text so that, once escaped for the target and measured the target's way
(characters, UTF-16 code units or UTF-8 bytes), it fits `limit` including the mark `…`. The cut
falls between whole characters, never inside an escape (`&amp;`, `\\*`), preferably at a space
close to the limit; a text that fits is returned escaped and unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

MARK = "…"
Measure = Callable[[str], int]


def chars(text: str) -> int:
    return len(text)


def utf16(text: str) -> int:
    """Length as JavaScript counts it (Discord, Teams): code units of UTF-16."""
    return len(text.encode("utf-16-le")) // 2


def utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def plain(ch: str) -> str:
    return ch


def clip(
    text: str,
    limit: int,
    *,
    escape: Callable[[str], str] = plain,
    measure: Measure = chars,
    mark: str = MARK,
) -> str:
    """`text` escaped per character by `escape`, cut to fit `limit` (measured by `measure`)."""
    pieces = [escape(ch) for ch in text]
    whole = "".join(pieces)
    if measure(whole) <= limit:
        return whole
    budget = limit - measure(mark)
    if budget <= 0:
        return mark if measure(mark) <= limit else ""
    kept: list[str] = []
    used = 0
    for piece in pieces:
        size = measure(piece)
        if used + size > budget:
            break
        kept.append(piece)
        used += size
    cut = _at_word(kept)
    return "".join(cut).rstrip() + mark


def _at_word(kept: list[str], window: int = 24) -> list[str]:
    """Back up to the last space within `window` pieces of the end, when there is one."""
    for back in range(1, min(window, len(kept)) + 1):
        if kept[-back] in (" ", "\n", "\t"):
            return kept[:-back]
    return kept


def slack_escape(ch: str) -> str:
    """Slack mrkdwn: &, < and > are control characters, sent as HTML entities."""
    return {"&": "&amp;", "<": "&lt;", ">": "&gt;"}.get(ch, ch)


_MARKDOWN = set("\\*_~`|>#[]()")


def markdown_escape(ch: str) -> str:
    """Discord markdown: a backslash before each character that would format."""
    return "\\" + ch if ch in _MARKDOWN else ch


def one_line(text: str) -> str:
    return " ".join(text.split())
