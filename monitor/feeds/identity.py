"""Which items of a feed document are new: identity beyond the guid.

Feeds are careless with identity. Some repeat one guid for every item, some drop the guid
between polls, some change titles, some let items fall off and come back. An item's identity
here is, in order: its guid when that guid is unique in the document; else its link when that
link is unique in the document; else a hash of its text. An item counts as already seen when

- it has such a guid and that guid was stored, or it is the same link with the same text as a
  stored item (a feed that changed its guid scheme does not re-alert everything);
- it has no usable guid and its link, or else its text, was stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.models import Item


@dataclass(frozen=True, slots=True)
class Identified:
    item: Item
    key: str  # stored as the item's dedupe key: unique per feed
    guid: str | None  # the guid, when usable as identity
    link: str | None  # the link, when unique in the document
    content_hash: str


@dataclass(frozen=True, slots=True)
class StoredIdentities:
    """What the store already holds for one feed, among the candidates' identities."""

    guids: frozenset[str]
    links: frozenset[str]
    hashes: frozenset[str]
    link_hashes: frozenset[tuple[str, str]]


def identify(items: Sequence[Item]) -> list[Identified]:
    """Each item once (the first of repeated identities wins), with its usable identities."""
    guids = Counter(item.guid for item in items if item.guid)
    links = Counter(item.link for item in items if item.link)
    result: dict[str, Identified] = {}
    for item in items:
        guid = item.guid if item.guid and guids[item.guid] == 1 else None
        link = item.link if item.link and links[item.link] == 1 else None
        content_hash = item.content_hash()
        if guid:
            key = f"guid:{guid}"
        elif link:
            key = f"link:{link}"
        else:
            key = f"hash:{content_hash}"
        result.setdefault(key, Identified(item, key[:512], guid, link, content_hash))
    return list(result.values())


def is_seen(candidate: Identified, stored: StoredIdentities) -> bool:
    if candidate.guid:
        return candidate.guid in stored.guids or (
            candidate.link is not None
            and (candidate.link, candidate.content_hash) in stored.link_hashes
        )
    if candidate.link and candidate.link in stored.links:
        return True
    return candidate.content_hash in stored.hashes


def unseen(candidates: Iterable[Identified], stored: StoredIdentities) -> list[Identified]:
    return [candidate for candidate in candidates if not is_seen(candidate, stored)]
