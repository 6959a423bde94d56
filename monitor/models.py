"""The values that travel through the pipeline: frozen, typed, free of I/O.

feed document --parse--> Item --match--> Match --outbox--> Alert --deliver--> DeliveryAttempt
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

FIELDS = ("title", "summary", "content", "tags")


@dataclass(frozen=True, slots=True)
class Item:
    """One news item, normalized: plain text (HTML stripped, entities decoded), Unicode NFC."""

    title: str
    summary: str = ""
    content: str = ""
    link: str | None = None
    guid: str | None = None
    published: datetime | None = None  # timezone-aware UTC when known
    tags: tuple[str, ...] = ()
    lang: str | None = None
    feed_url: str = ""
    feed_name: str = ""

    def dedupe_key(self) -> str:
        """The feed's guid, else the link, else a hash of the content."""
        if self.guid:
            return f"guid:{self.guid}"
        if self.link:
            return f"link:{self.link}"
        return f"hash:{self.content_hash()}"

    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for part in (self.title, self.summary, self.content):
            digest.update(part.encode("utf-8"))
            digest.update(b"\x00")
        return digest.hexdigest()[:32]

    def field_text(self, name: str) -> str:
        """The text of a searchable field; `tags` are joined with ' · '."""
        if name == "tags":
            return " · ".join(self.tags)
        if name in ("title", "summary", "content"):
            text: str = getattr(self, name)
            return text
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class TermHit:
    """One term of a rule that fired: where, on what text, how well."""

    term: str  # the term as the rule writes it
    field: str  # title | summary | content | tags
    text: str  # the text of the item it matched, as the item has it
    start: int  # offsets of `text` in the field's text
    end: int
    score: float  # 0..100
    # how the text matched the term: exact | prefix | inflected (another form of the same
    # dictionary word) | transliterated (the other script's spelling) | fuzzy (a typo)
    how: str = "exact"
    lang: str | None = None  # en | es | ru: the language of an inflected form
    # where the text was when not in the feed: "page", the article page read for full text
    # (its main text is the field `content`: monitor.pipeline.fulltext)
    source: str | None = None

    def as_json(self) -> dict[str, object]:
        shown: dict[str, object] = {
            "term": self.term,
            "field": self.field,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 1),
            "how": self.how,
        }
        if self.lang is not None:  # absent where no language is involved, as in the events
            shown["lang"] = self.lang
        if self.source is not None:  # absent for the feed's own text, as in the events
            shown["source"] = self.source
        return shown


@dataclass(frozen=True, slots=True)
class Match:
    """A rule that matched an item, with the evidence."""

    rule_id: str
    rule_title: str
    severity: str
    score: float
    hits: tuple[TermHit, ...] = field(default_factory=tuple)

    def matches_json(self) -> list[dict[str, object]]:
        return [hit.as_json() for hit in self.hits]
