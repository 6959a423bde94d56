"""Bounds on what a feed may cost to parse, beyond its size in bytes.

feedparser spends about 0.15 ms and 2.5 KB per entry, so 16 MiB of tiny `<item/>`s would take
half a minute and half a gigabyte. Feeds are cut to their first `MAX_ENTRIES` entries (they list
the newest first) and the document is closed again, so the rest of it still parses strictly.
"""

from __future__ import annotations

import re

MAX_ENTRIES = 10_000
MAX_MARKUP_CHARS = 1_000_000  # of one field's markup read to make its text (text is capped lower)

_ENTRY = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s>/]", re.I)
_CLOSERS = re.compile(rb"(?:\s*</[A-Za-z_][\w.:-]*\s*>)+\s*\Z")
_CLOSER = re.compile(rb"</([A-Za-z_][\w.:-]*)\s*>")


def keep_first_entries(body: bytes, limit: int = MAX_ENTRIES) -> tuple[bytes, int]:
    """`body` cut before its (limit + 1)-th entry and closed again, and how many entries it had.

    The count is 0 when the body is within the limit (it is then returned as it is). Only
    ASCII-compatible encodings are counted; a UTF-16 feed is left whole.
    """
    count = 0
    cut = -1
    for count, found in enumerate(_ENTRY.finditer(body), start=1):
        if count == limit + 1:
            cut = found.start()
    if cut < 0:
        return body, 0
    closers = _CLOSERS.search(body[-4096:])
    ending = b""
    if closers:
        names = _CLOSER.findall(closers.group(0))
        local = [name.rsplit(b":", 1)[-1].lower() for name in names]
        ends_of_entries = [i for i, name in enumerate(local) if name in (b"item", b"entry")]
        if ends_of_entries:  # what closes the last entry and its children is not needed
            names = names[ends_of_entries[-1] + 1 :]
        ending = b"".join(b"</%s>" % name for name in names)
    return body[:cut] + ending, count
