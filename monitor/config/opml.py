"""OPML in and out: the feed list every feed reader exports, as `feeds:` entries and back.

    OPML bytes ──listparser──> outlines (xmlUrl, text/title, nested folders, `category`)
      ──> Imported: the feeds to add (FeedConfig-valid, in document order), the duplicates
          (the same URL after `normalized`, in the config or earlier in the file), the invalid
          ones with their reason
    feeds: ──xml.etree──> OPML 2.0: an outline per feed (text, title, xmlUrl, category),
          grouped in folders by its first tag, as Miniflux, FreshRSS and NetNewsWire read them

Categories become tags: every folder an outline sits in and every part of its `category`
attribute (`/News/World,Tech`), folded to the tag alphabet (`Mundo Ñ` -> `mundo-n`). listparser
reads the document as bytes, never as a URL: importing a file fetches nothing.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from anyascii import anyascii
from pydantic import ValidationError

from monitor.config.settings import FeedConfig
from monitor.http.urls import has_credentials, shown_url

MAX_OPML_BYTES = 16 * 1024 * 1024  # a reader's export of thousands of feeds is a few MiB
_NOT_TAG = re.compile(r"[^a-z0-9_.-]+")
_DECLARATION = re.compile(rb"""\s*(<\?xml[^>]*?encoding\s*=\s*["'])([A-Za-z0-9._-]+)""")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One feed outline, as read: what would be written to `feeds:`."""

    url: str
    name: str | None
    tags: tuple[str, ...]

    def entry(self) -> dict[str, object]:
        entry: dict[str, object] = {"url": self.url}
        if self.name:
            entry["name"] = self.name
        if self.tags:
            entry["tags"] = list(self.tags)
        return entry


@dataclass(frozen=True, slots=True)
class Skipped:
    url: str
    reason: str


@dataclass(slots=True)
class Imported:
    """What an import would do: add, skip as duplicates, refuse as invalid."""

    added: list[Candidate] = field(default_factory=list)
    duplicates: list[Skipped] = field(default_factory=list)
    invalid: list[Skipped] = field(default_factory=list)


class OpmlError(ValueError):
    """The file is not an OPML document monitor can read (the message says why)."""


def read_opml(document: bytes) -> list[Candidate | Skipped]:
    """The document's feed outlines in order; an outline that is no feed is `Skipped`."""
    if len(document) > MAX_OPML_BYTES:
        raise OpmlError(f"larger than {MAX_OPML_BYTES // (1024 * 1024)} MiB")
    # imported here, not at the top: with lxml it would weigh on every `monitor` command
    import listparser  # noqa: PLC0415

    parsed: Any = listparser.parse(_as_utf8(document))
    if not parsed.get("version", "").startswith("opml"):
        problem = parsed.get("bozo_exception")
        raise OpmlError(f"not an OPML document{f': {problem}' if problem else ''}")
    found: list[Candidate | Skipped] = []
    for feed in parsed["feeds"]:
        url = str(feed.get("url") or "").strip()
        title = str(feed.get("title") or "").strip()
        name = title if title and title != url else None  # a reader names an untitled feed by URL
        found.append(Candidate(url, name, tags_of(feed.get("categories") or [])))
    found.extend(
        Skipped(str(link["url"]), "a web page without an xmlUrl (no feed)")
        for link in parsed["opportunities"]
    )
    found.extend(
        Skipped(str(link["url"]), "a subscription list, not a feed") for link in parsed["lists"]
    )
    return found


def _as_utf8(document: bytes) -> bytes:
    """The document in UTF-8, declared so: listparser reads UTF-8 only without lxml."""
    try:
        document.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return document
    declared = _DECLARATION.match(document)
    if declared is None:
        raise OpmlError("not UTF-8, and no other encoding declared")
    try:
        text = document.decode(declared.group(2).decode("ascii"))
    except (LookupError, UnicodeDecodeError) as exc:
        raise OpmlError(f"cannot be read as its declared encoding: {exc}") from None
    start, end = declared.span(2)
    return (text[:start] + "utf-8" + text[end:]).encode("utf-8")


def tags_of(categories: Iterable[Sequence[str]]) -> tuple[str, ...]:
    """Every part of every category path as a tag, folded, in order, once each."""
    tags = (tag_of(part) for path in categories for part in path)
    return tuple(dict.fromkeys(tag for tag in tags if tag))


def tag_of(category: str) -> str:
    """`Mundo Ñ` -> `mundo-n`, `Новости` -> `novosti`: the tag alphabet of feeds[].tags."""
    folded = _NOT_TAG.sub("-", anyascii(category).lower()).strip("-._")
    return folded[:64].rstrip("-._")


def normalized(url: str) -> str:
    """The URL two spellings of one feed share: scheme ignored (an https upgrade is the same
    feed), host lower-cased, default port, trailing slash and fragment dropped."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip()
    host = (parts.hostname or "").lower()
    if port is not None and port not in (80, 443):
        host = f"{host}:{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}" if userinfo else host
    return urlunsplit(("", netloc, parts.path.rstrip("/"), parts.query, ""))


def plan_import(found: Sequence[Candidate | Skipped], existing: Iterable[str]) -> Imported:
    """Which outlines to add: valid as `feeds:` entries, and not already there."""
    plan = Imported()
    known = {normalized(url): url for url in existing}
    for outline in found:
        if isinstance(outline, Skipped):
            plan.invalid.append(outline)
            continue
        problem = _entry_problem(outline)
        if problem is not None:
            plan.invalid.append(Skipped(outline.url, problem))
            continue
        key = normalized(outline.url)
        if key in known:
            plan.duplicates.append(Skipped(outline.url, f"already there as {known[key]}"))
            continue
        known[key] = outline.url
        plan.added.append(outline)
    return plan


def _entry_problem(outline: Candidate) -> str | None:
    if not outline.url:
        return "no xmlUrl"
    if "${" in outline.url or "${" in (outline.name or ""):
        # monitor.yaml would read it as an environment variable: a stranger's OPML naming a
        # feed `${WEBHOOK_SECRET}` would put that secret in every alert of the feed
        return "contains `${`, which monitor.yaml reads as an environment variable"
    try:
        FeedConfig.model_validate(outline.entry())
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        return str(first["msg"]).removeprefix("Value error, ")
    return None


@dataclass(frozen=True, slots=True)
class Exported:
    document: bytes
    feeds: int
    masked: int  # URLs whose credentials were masked, not written


def write_opml(
    feeds: Sequence[FeedConfig], written: Mapping[int, str], *, title: str, now: datetime
) -> Exported:
    """OPML 2.0 of `feeds`: a folder per first tag, every tag in `category`. `written`: each
    feed's URL as the config file spells it (`${TOKEN}` kept a reference, not its value); a URL
    with credentials in it is written masked, never as it is."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(now, usegmt=True)
    body = ET.SubElement(root, "body")
    folders: dict[str, ET.Element] = {}
    masked = 0
    for index, feed in enumerate(feeds):
        url = written.get(index, feed.url)
        if has_credentials(url):
            url, masked = shown_url(url), masked + 1
        parent = body
        if feed.tags:
            first = feed.tags[0]
            if first not in folders:
                folders[first] = ET.SubElement(body, "outline", text=first, title=first)
            parent = folders[first]
        name = feed.name or url
        outline = ET.SubElement(parent, "outline", type="rss", text=name, title=name, xmlUrl=url)
        if feed.tags:
            outline.set("category", ",".join(f"/{tag}" for tag in feed.tags))
        if feed.lang:
            outline.set("language", feed.lang)
    ET.indent(root)
    document = ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
    return Exported(document, len(feeds), masked)
