"""How counts and names read in what monitor prints: a leaf every layer may use.

`plural(2, "alert")` is "2 alerts", `plural(1, "delivery", "deliveries")` "1 delivery": every
count a command or a summary prints goes through it, so none says "1 problems".
`width` and `clipped` measure and cut text in terminal cells (a CJK character takes two, a
combining accent none), so columns of names in any script line up.
"""

from __future__ import annotations

import unicodedata


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`count` and the noun in the number it calls for: 0 alerts, 1 alert, 2 alerts."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def width(text: str) -> int:
    """Terminal cells `text` takes: wide (CJK) characters two, combining marks none."""
    cells = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        cells += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return cells


def clipped(text: str, limit: int) -> str:
    """`text` cut to `limit` cells, ending in an ellipsis, when it is longer."""
    if width(text) <= limit:
        return text
    kept, used = [], 0
    for char in text:
        size = width(char)
        if used + size > limit - 1:
            break
        kept.append(char)
        used += size
    return "".join(kept) + "…"
