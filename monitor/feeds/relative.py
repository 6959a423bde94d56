"""Relative links, resolved after feedparser rather than by it, where the result is the same.

Given the URL a document came from, feedparser joins it with the document's base at every
element it opens (so that an `xml:base` attribute can change it) and with every link, guid and
href: on the shared feed farm's documents that is a quarter of its parsing time, though next to
no feed has a relative link. So a document that sets no base of its own is parsed without the
URL, and the few values that need it are joined afterwards, which gives what feedparser would
have given:

- with no `xml:base` (or `base`) attribute, the base feedparser joins with is the URL at every
  element, so each value it would have resolved is `urljoin(url, value as parsed without it)`;
- links (the items', the feed's own, its rel=self and rel=hub hrefs) are always resolved, so
  they are joined here;
- an id is resolved only when it came from a guid that is a permalink (or an Atom id), which
  the parsed entry does not say; where joining would change an id, the document is parsed again
  the usual way, so ids (and with them item identity) never change. Feeds whose guids are
  relative and not permalinks pay that second parse.

Documents in UTF-16 or UTF-32, whose attributes a byte search cannot see, are parsed the usual
way.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urljoin

_BASE_ATTRIBUTE = re.compile(rb"base\s*=")  # xml:base=, or base= (feedparser reads both)
_WIDE_BOMS = (b"\xfe\xff", b"\xff\xfe", b"\x00\x00\xfe\xff")


def sets_no_base(body: bytes) -> bool:
    """Whether the document surely has no base attribute, so it may be parsed without its URL."""
    if body.startswith(_WIDE_BOMS) or b"\x00" in body[:1024]:
        return False
    return _BASE_ATTRIBUTE.search(body) is None


def resolve_after(result: MutableMapping[str, Any], base: str) -> bool:
    """Join the links of a document parsed without its URL with `base`, as feedparser would
    have; False (and the result partly joined: parse again) where an id would change."""
    for entry in result.get("entries") or []:
        entry_id = entry.get("id")
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


def _join_key(container: MutableMapping[str, Any], key: str, base: str) -> None:
    value = container.get(key)
    if isinstance(value, str) and value:
        container[key] = _join(base, value)


def _join(base: str, value: str) -> str:
    """feedparser's join of a value it has already read (a URL that urllib cannot split is '')."""
    try:
        return urljoin(base, value)
    except ValueError:
        return ""
