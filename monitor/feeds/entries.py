"""Entries a changed document shares with the last one parsed are not parsed again.

A feed that gains an item usually serves its other items byte for byte as before, yet a changed
document is a 200 with a new body, and feedparser's time goes by entry. So each entry of a
document is cut out as bytes (`<item>…</item>`, `<entry>…</entry>`) and digested; the feed keeps
the digests of its last document parsed, and the next one is parsed with the entries whose bytes
were in it left out. Those entries were read, identified and recorded then: the store knows
them, and identity (monitor.feeds.identity) would only have found them again.

What the rest of a document says (its channel, namespaces, title) is always parsed. Left out is
only what is sure to change nothing; the document is parsed whole when a byte search cannot be
sure of its entries:

- an encoding a byte search cannot read (UTF-16, UTF-32), an entity declaration, an entry whose
  element has a prefix or another case, one inside another, an empty `<item/>`, or markup that
  looks like an entry inside a CDATA section or a comment;
- an entry without a guid or id (unless no entry has one and each has a link; RSS 1.0's
  `rdf:about` is an id), a guid, id or link that another entry repeats, or one of these in a
  form the search does not read (a prefix, markup inside): identity counts how often each guid
  and link appears in the whole document, so it must come out the same on the entries parsed.
  A guid written two ways (`&amp;` and `&#38;`) counts as two here, as one in feedparser; a
  publisher's generator writes one way.

A document whose parse is not clean (feedparser's bozo flag) keeps no digests, and one that was
parsed without its known entries and is not clean is parsed again whole: the loose parser that
takes over an ill-formed document may read entries otherwise.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass

from monitor.feeds.bounds import ENTRY_START

DIGEST_BYTES = 8  # per entry; a collision within one feed's two documents is out of reach

# The entries' own tags, and the starts of what can hide markup (CDATA sections, comments),
# whose ends are found with bytes.find: a lazy `.*?` in the pattern walks them a byte at a time
_TOKEN = re.compile(rb"<(?:(!\[CDATA\[)|(!--)|(item|entry)(?=[\s/>])|/(item|entry)\s*>)")
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.I)
_WIDE = (b"\xfe\xff", b"\xff\xfe")
# An entry's identities: <guid>, <id> and <link> with text (plain or CDATA) or a link's href,
# and on its own tag, rdf:about (RSS 1.0: feedparser's id) and href (CDF: its link)
_ANY_IDENTITY = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:guid|id|link)(?=[\s/>])", re.I)
_IDENTITY = re.compile(
    rb"<(guid|id|link)(?=[\s/>])([^<>]*)>(?:(?:<!\[CDATA\[([^\]]*)\]\]>|([^<]*))</\1\s*>)?"
)
_HREF = re.compile(rb"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_ABOUT = re.compile(rb"""\brdf:about\s*=\s*(?:"([^"]*)"|'([^']*)')""")


@dataclass(frozen=True, slots=True)
class Entries:
    """A document cut at its entries: where each is, and the digest of its bytes."""

    body: bytes
    spans: tuple[tuple[int, int], ...]
    digests: tuple[bytes, ...]

    def packed(self) -> bytes:
        """The digests as the store keeps them (DIGEST_BYTES each, in document order)."""
        return b"".join(self.digests)

    def without(self, known: bytes) -> tuple[bytes, int]:
        """The document with the entries whose digest is in `known` (packed) left out, and how
        many were; the document itself when none is."""
        seen = unpack(known)
        pairs = zip(self.spans, self.digests, strict=True)
        left_out = [span for span, digest in pairs if digest in seen]
        if not left_out:
            return self.body, 0
        parts, at = [], 0
        for start, end in left_out:
            parts.append(self.body[at:start])
            at = end
        parts.append(self.body[at:])
        return b"".join(parts), len(left_out)


def unpack(packed: bytes) -> frozenset[bytes]:
    return frozenset(packed[i : i + DIGEST_BYTES] for i in range(0, len(packed), DIGEST_BYTES))


def split_entries(body: bytes) -> Entries | None:
    """The entries of `body`, or None when a byte search cannot be sure of them (the module's
    docstring says when)."""
    if body.startswith(_WIDE) or b"\x00" in body[:4] or _ENTITY_DECLARATION.search(body):
        return None
    spans = _entry_spans(body)
    if not spans or len(spans) != sum(1 for _ in ENTRY_START.finditer(body)):
        return None
    if not _identities_apart(body, spans):
        return None
    digests = tuple(
        hashlib.blake2b(body[start:end], digest_size=DIGEST_BYTES).digest() for start, end in spans
    )
    return Entries(body, tuple(spans), digests)


def _entry_spans(body: bytes) -> list[tuple[int, int]] | None:
    """Where each entry starts and ends, if they follow one another, all of one element; else
    None. Markup inside CDATA sections and comments is passed over."""
    spans: list[tuple[int, int]] = []
    element: bytes | None = None
    start = -1
    at = 0
    while token := _TOKEN.search(body, at):
        cdata, comment, opened, closed = token.groups()
        if cdata or comment:
            end = body.find(b"]]>" if cdata else b"-->", token.end())
            if end < 0:
                return None  # open to the end: an ill-formed document
            at = end + 3
            continue
        at = token.end()
        name = opened or closed
        if element is None:
            element = name
        if name != element:
            return None
        if opened is not None:
            tag_end = body.find(b">", at)
            if start >= 0 or tag_end < 0 or body[tag_end - 1 : tag_end] == b"/":
                return None  # an entry inside an entry, an unended or an empty tag
            start = token.start()
        else:
            if start < 0:
                return None
            spans.append((start, at))
            start = -1
    return spans if start < 0 else None


def _identities_apart(body: bytes, spans: list[tuple[int, int]]) -> bool:
    """Every entry has a guid or an id, or none has and every one has a link; and no guid, id
    or link is in two entries."""
    first, last = spans[0][0], spans[-1][1]
    found = list(_IDENTITY.finditer(body, first, last))
    if len(found) != sum(1 for _ in _ANY_IDENTITY.finditer(body, first, last)):
        return False  # one the search cannot read (a prefix, another case)
    ids: list[list[bytes]] = []
    links: list[list[bytes]] = []
    for start, _end in spans:  # what the entry's own tag says, if it has attributes
        tag = body[start : body.find(b">", start)]
        bare = len(tag) <= len(b"<entry ")
        ids.append([] if bare else [double or single for double, single in _ABOUT.findall(tag)])
        links.append([] if bare else _hrefs(tag))
    starts = [start for start, _end in spans]
    for identity in found:
        number = bisect.bisect_right(starts, identity.start()) - 1
        if identity.end() > spans[number][1]:
            return False  # between entries: not theirs
        name, attributes, cdata, text = identity.groups()
        values = _hrefs(attributes) if attributes else []
        if cdata is not None or text is not None:
            values.append(cdata if cdata is not None else text)
        elif not values and not attributes.endswith(b"/"):
            return False  # its text is not plain (markup)
        (links if name == b"link" else ids)[number].extend(values)
    return _apart(ids, links)


def _apart(ids: list[list[bytes]], links: list[list[bytes]]) -> bool:
    owner: dict[bytes, int] = {}
    with_id = with_link = 0
    for number, (entry_ids, entry_links) in enumerate(zip(ids, links, strict=True)):
        values = [value.strip() for value in (*entry_ids, *entry_links)]
        if any(owner.setdefault(value, number) != number for value in values if value):
            return False
        with_id += any(value.strip() for value in entry_ids)
        with_link += any(value.strip() for value in entry_links)
    return with_id == len(ids) or (with_id == 0 and with_link == len(ids))


def _hrefs(attributes: bytes) -> list[bytes]:
    """The href values among a tag's attributes."""
    return [double or single for double, single in _HREF.findall(attributes)]
