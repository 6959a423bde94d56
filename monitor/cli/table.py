"""Aligned columns under a header row, for the commands that list things.

`table(["FEED", "ITEMS"], rows, right={1})` lines up columns under a header row, two spaces
apart, with the last column left unpadded (titles and errors may be long; nothing follows them).
Widths are display widths (`monitor.wording.width`), so names in any script line up. Rows may
carry continuation lines (`Row.notes`: an error, a redirect) printed under their row, indented,
outside the columns.

A small formatter of ours rather than a table library: the output must stay plain text that
`grep`, `cut` and `head` handle (no box drawing, no wrapping to the terminal's width) and rows
need notes under them; tabulate and rich do neither without as much code around them as this.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from monitor.wording import width

GAP = "  "
NOTE_INDENT = "    "


@dataclass(frozen=True, slots=True)
class Row:
    cells: Sequence[str]
    notes: Sequence[str] = field(default=())


def _pad(text: str, size: int, *, right: bool) -> str:
    room = " " * max(size - width(text), 0)
    return room + text if right else text + room


def table(
    header: Sequence[str], rows: Sequence[Row | Sequence[str]], *, right: Collection[int] = ()
) -> list[str]:
    """The lines of a table: the header, then each row and its notes. `right`: the indexes of
    columns aligned right (counts)."""
    shaped = [row if isinstance(row, Row) else Row(row) for row in rows]
    sizes = [width(name) for name in header]
    for row in shaped:
        for index, cell in enumerate(row.cells):
            sizes[index] = max(sizes[index], width(cell))
    last = len(header) - 1

    def line(cells: Sequence[str]) -> str:
        padded = [
            _pad(cell, sizes[index] if index != last or index in right else 0, right=index in right)
            for index, cell in enumerate(cells)
        ]
        return GAP.join(padded).rstrip()

    lines = [line(header)]
    for row in shaped:
        lines.append(line(row.cells))
        lines.extend(NOTE_INDENT + note for note in row.notes)
    return lines
