"""Relative links, resolved after feedparser rather than by it, where the result is the same.

Given the URL a document came from, feedparser joins it with the document's base at every
element it opens (so that an `xml:base` attribute can change it) and with every link, guid and
href: on the shared feed farm's documents that is a quarter of its parsing time, though next to
no feed has a relative link. So a document that sets no base of its own is parsed without the
URL, and the few values that need it are joined afterwards, which gives what feedparser would
have given:

- with no `xml:base` (or `base`) attribute, in any case, the base feedparser joins with is the
  URL at every element, so each value it would have resolved is `urljoin(url, the value as
  parsed without it)` (feedparser tidies a link's entities after the join, here before it: the
  two differ only for a URL that itself holds `&amp;`, which a fetched URL does not);
- links (the items', the feed's own, its rel=self and rel=hub hrefs) are always resolved, so
  they are joined here;
- an id is resolved only when it came from a guid that is a permalink (or an Atom id), which
  the parsed entry does not say; where joining would change an id, the document is parsed again
  the usual way, so ids (and with them item identity) never change. Feeds whose guids are
  relative and not permalinks pay that second parse.

Documents in an encoding whose attributes a byte search cannot see (UTF-16, UTF-32, EBCDIC)
are parsed the usual way.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

from monitor.feeds.normalize import join_url

# `base` inside a start tag: xml:base= or base=, in any case (feedparser lowercases attribute
# names), and a bare `base` (the loose parser gives it the value "base"). A false match (text
# in a CDATA section) only costs the usual parse. A tag ends at the next `<` as well as at `>`,
# which keeps the search linear: with `[^>]*`, a hostile body of `<` and no `>` made every `<`
# scan to the end (80 KB took 13 s).
_BASE_ATTRIBUTE = re.compile(rb"<[^<>]*\bbase\b", re.IGNORECASE)
_WIDE_BOMS = (b"\xfe\xff", b"\xff\xfe", b"\x00\x00\xfe\xff")
_PROBE = "<a base="


def sets_no_base(body: bytes) -> bool:
    """Whether the document surely has no base attribute, so it may be parsed without its URL."""
    if body.startswith(_WIDE_BOMS) or b"\x00" in body[:1024]:
        return False
    return _BASE_ATTRIBUTE.search(body) is None


def resolve_after(result: dict[str, Any], base: str) -> bool:
    """Join the links of a document parsed without its URL with `base`, as feedparser would
    have; False (nothing joined: parse again) where an id would change, or where the document
    was in an encoding in which the byte search of `sets_no_base` could not see a base
    (EBCDIC, UTF-7, ...)."""
    if not _reads_as_ascii(str(result.get("encoding") or "")):
        return False
    for entry in result.get("entries") or []:
        entry_id = _own(entry, "id")
        if entry_id and _join(base, entry_id) != entry_id:
            return False
    for entry in result.get("entries") or []:
        _join_key(entry, "link", base)
    feed = result.get("feed")
    if feed is not None:
        _join_key(feed, "link", base)
        for link in feed.get("links") or []:
            _join_key(link, "href", base)
    return True


def _reads_as_ascii(encoding: str) -> bool:
    """Whether markup in `encoding` has the bytes of ASCII (UTF-8 and the ISO and Windows
    code pages do; UTF-16 and EBCDIC do not)."""
    try:
        if codecs.lookup(encoding).name == "utf-7":  # ASCII letters, or base64 runs of them
            return False
        return _PROBE.encode(encoding) == _PROBE.encode("ascii")
    except (LookupError, ValueError):
        return False


# A value by the name feedparser stores it under: FeedParserDict.get would look through its
# aliases first, a good part of this module's time (monitor.feeds.parser does the same).
_own = dict.get


def _join_key(container: dict[str, Any], key: str, base: str) -> None:
    value = _own(container, key)
    if isinstance(value, str) and value:
        container[key] = _join(base, value)


def _join(base: str, value: str) -> str:
    """feedparser's join of a value it has already read (a URL that urllib cannot split is '')."""
    try:
        return join_url(base, value)
    except ValueError:
        return ""
