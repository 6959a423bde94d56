"""Bounds on what a feed may cost to parse, beyond its size in bytes.

feedparser spends about 0.15 ms and 2.5 KB per entry, so 16 MiB of tiny `<item/>`s would take
half a minute and half a gigabyte; an ill-formed document goes to its loose parser, which is
slower still and holds more (16 MiB: 30 s and 400 MB). So, before feedparser sees a body:

- it is cut to its first `MAX_ENTRIES` entries (feeds list the newest first);
- when larger than `MAX_LOOSE_BYTES` and not well-formed (one pass of expat, no handlers, no
  external entities), it is cut to the entries that start within `MAX_LOOSE_BYTES`.

Each cut ends at the start of an entry and the document is closed again with the end tags it
ended with, so what remains parses as the original would have.
"""

from __future__ import annotations

import re
from xml.parsers import expat

MAX_ENTRIES = 10_000
MAX_LOOSE_BYTES = 2 * 1024 * 1024
MAX_MARKUP_CHARS = 1_000_000  # of one field's markup read to make its text (text is capped lower)

# the start of an entry as feedparser sees one (any prefix, any case); entries.py counts them too
ENTRY_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s>/]", re.I)
_CLOSERS = re.compile(rb"(?:\s*</[A-Za-z_][\w.:-]*\s*>)+\s*\Z")
_CLOSER = re.compile(rb"</([A-Za-z_][\w.:-]*)\s*>")


def keep_first_entries(body: bytes, limit: int = MAX_ENTRIES) -> tuple[bytes, int]:
    """`body` cut before its (limit + 1)-th entry and closed again, and how many entries it had.

    The count is 0 when the body is within the limit (it is then returned as it is). Only
    ASCII-compatible encodings are counted; a UTF-16 feed is left whole.
    """
    count = 0
    cut = -1
    for count, found in enumerate(ENTRY_START.finditer(body), start=1):
        if count == limit + 1:
            cut = found.start()
    if cut < 0:
        return body, 0
    return _close(body, cut), count


def shrink_if_ill_formed(body: bytes, limit: int = MAX_LOOSE_BYTES) -> bytes | None:
    """The entries of a large, ill-formed `body` that start within `limit` bytes, closed again.

    None when the body is small, well-formed, or has no entry start to cut at.
    """
    if len(body) <= limit or _well_formed(body):
        return None
    starts = [found.start() for found in ENTRY_START.finditer(body, 0, limit)]
    if len(starts) < 2:  # cutting before the first entry would leave none: keep a prefix
        return body[:limit]
    return _close(body, starts[-1])


def _well_formed(body: bytes) -> bool:
    parser = expat.ParserCreate()  # no handlers: external entities are never loaded
    try:
        parser.Parse(body, True)
    except (expat.ExpatError, ValueError, LookupError):
        return False
    return True


def _close(body: bytes, cut: int) -> bytes:
    """`body[:cut]` followed by the end tags that close the document after its last entry."""
    closers = _CLOSERS.search(body[-4096:])
    ending = b""
    if closers:
        names = _CLOSER.findall(closers.group(0))
        local = [name.rsplit(b":", 1)[-1].lower() for name in names]
        ends_of_entries = [i for i, name in enumerate(local) if name in (b"item", b"entry")]
        if ends_of_entries:  # what closes the last entry and its children is not needed
            names = names[ends_of_entries[-1] + 1 :]
        ending = b"".join(b"</%s>" % name for name in names)
    return body[:cut] + ending
