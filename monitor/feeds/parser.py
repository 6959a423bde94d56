"""Response bytes -> `ParsedFeed` of normalized `Item`s, or `ParseFailed` saying why not.

    body ──sniff──┬─ empty / binary / HTML page ─────────> ParseFailed (with the page's feed links)
                  ├─ JSON ──> JSON Feed 1.0/1.1 mapping ──> ParsedFeed
                  └─ XML ───> feedparser (with the response headers, so the charset is honored)
                              ──> entries -> Items ────────> ParsedFeed (bozo reasons as warnings)

Hostile input: feedparser is given a stream, never the bytes themselves (given bytes, it treats a
body such as `/etc/passwd` as a file name and opens it); it strips the DOCTYPE and keeps only
entities whose value is literal text, and expat never loads external entities, so neither XXE nor
billion laughs gets through (tests/feeds/test_hostile.py proves both against a real server).
Relative-URI resolution and sanitizing inside HTML are turned off: items keep only plain text.
Before feedparser runs, charset.second_opinion corrects a false UTF-8 claim and bounds.py caps
the entries (10,000) and the size of an ill-formed body (2 MiB), which bound time and memory.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.errors import PermanentFeedError
from monitor.feeds.bounds import (
    MAX_ENTRIES,
    MAX_MARKUP_CHARS,
    keep_first_entries,
    shrink_if_ill_formed,
)
from monitor.feeds.charset import second_opinion
from monitor.feeds.entries import split_entries
from monitor.feeds.jsonfeed import parse_json_feed
from monitor.feeds.normalize import absolute_http_url, html_to_text, plain_text, sane_datetime
from monitor.feeds.relative import resolve_after, sets_no_base
from monitor.feeds.sniff import Kind, feed_links, sniff
from monitor.models import Item

_HTML_TYPES = frozenset(("text/html", "application/xhtml+xml"))
_SKIP_SCAN = 256 * 1024  # channel elements come before (or among) the first items


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    link: str | None
    items: list[Item]
    ttl: timedelta | None = None  # RSS <ttl>: how long the publisher asks readers to wait
    warnings: tuple[str, ...] = ()  # what was wrong but survivable (feedparser's bozo reason)
    losses: tuple[str, ...] = ()  # what of the document was not read (entries past the cap)
    version: str = ""  # feedparser's name for the format: rss20, atom10, rss10, json11, ...
    self_link: str | None = None  # rel="self": the feed's own URL, for WebSub
    hub_links: tuple[str, ...] = ()  # rel="hub": WebSub hubs the publisher pushes to
    skip_hours: frozenset[int] = frozenset()  # RSS <skipHours>: hours (0-23, GMT) not to poll
    skip_days: frozenset[str] = frozenset()  # RSS <skipDays>: "Monday" ... "Sunday"
    # the digests of its entries, for the next poll to leave out those it repeats (b"": none
    # kept), and how many entries were left out of this parse as known (monitor.feeds.entries)
    entry_digests: bytes = b""
    known_entries: int = 0


@dataclass(frozen=True)
class ParseFailed:
    error: PermanentFeedError
    feed_links: tuple[str, ...] = field(default=())  # feeds an HTML page advertises instead


def parse_feed(
    body: bytes,
    *,
    url: str,
    headers: Mapping[str, str],
    feed_name: str = "",
    base_url: str | None = None,
    now: datetime | None = None,
    known: bytes = b"",
) -> ParsedFeed | ParseFailed:
    """Parse a fetched body; never raises for anything the body contains.

    `url` is the feed's URL as configured (it becomes Item.feed_url); relative links resolve
    against `base_url`, the URL the body really came from after redirects (default: `url`).
    `known`: the last document's `entry_digests`; its entries this one repeats are not
    parsed (monitor.feeds.entries), so its items are the others.
    """
    now = now or datetime.now(UTC)
    base = base_url or url
    headers = {name.lower(): value for name, value in headers.items()}
    content_type = headers.get("content-type", "")
    kind, what = sniff(body, content_type)
    if kind is Kind.JSON:
        return _parse_json(body, url=url, base=base, feed_name=feed_name, now=now)
    if kind is not Kind.XML:
        return _refuse(kind, what, body, base)
    try:
        return _parse_xml(
            body, url=url, base=base, headers=headers, feed_name=feed_name, now=now, known=known
        )
    except RecursionError:
        return _failed("not a feed: the document is nested too deeply")
    except Exception as error:  # a library bug on hostile bytes must stay one feed's problem
        return _failed(f"could not parse the feed ({type(error).__name__})")


def _refuse(kind: Kind, what: str, body: bytes, url: str) -> ParseFailed:
    if kind is Kind.EMPTY:
        return _failed("not a feed: the response body is empty")
    if kind is Kind.HTML:
        return _html_failure(body, url)
    return _failed(f"not a feed: the response is {what}, not text")


def _failed(message: str, links: tuple[str, ...] = ()) -> ParseFailed:
    return ParseFailed(PermanentFeedError(message), links)


def _html_failure(body: bytes, url: str) -> ParseFailed:
    links = feed_links(body, url)
    if links:
        hint = (
            f"; it links to the feed {links[0]}"
            if len(links) == 1
            else (f"; it links to feeds: {', '.join(links[:5])}")
        )
    else:
        hint = '; it does not link to a feed (<link rel="alternate">)'
    return _failed(f"not a feed: the server sent an HTML page{hint}", links)


def _parse_json(
    body: bytes, *, url: str, base: str, feed_name: str, now: datetime
) -> ParsedFeed | ParseFailed:
    try:
        document = parse_json_feed(body, url=url, base=base, feed_name=feed_name, now=now)
    except PermanentFeedError as error:
        return ParseFailed(error)
    return ParsedFeed(
        title=document.title,
        link=document.link,
        items=document.items,
        warnings=document.warnings,
        losses=document.losses,
        version=document.version,
        self_link=document.self_link,
        hub_links=document.hub_links,
    )


def _parse_xml(
    body: bytes,
    *,
    url: str,
    base: str,
    headers: dict[str, str],
    feed_name: str,
    now: datetime,
    known: bytes,
) -> ParsedFeed | ParseFailed:
    read = _run_feedparser(body, headers=headers, base=base, known=known)
    body, result, warnings = read.body, read.result, read.warnings
    feed: dict[str, Any] = result.get("feed") or {}
    entries: list[dict[str, Any]] = result.get("entries") or []
    version = str(result.get("version") or "")
    if not entries and not version:
        reason = f" ({warnings[-1]})" if result.get("bozo") else ""
        return _failed(f"not a feed: no RSS, Atom or RDF document found{reason}")
    title = _detail_text(feed, "title", multiline=False)
    feed_lang = _lang(feed.get("language")) or _lang(headers.get("content-language"))
    items = []
    for entry in entries:
        item = _item(
            entry, url=url, base=base, feed_name=feed_name or title, feed_lang=feed_lang, now=now
        )
        if item is not None:
            items.append(item)
    if len(items) < len(entries):
        warnings.append(f"skipped {len(entries) - len(items)} entries with no title, link or text")
    links: Sequence[dict[str, str]] = feed.get("links") or []
    skip_hours, skip_days = _skips(body) if version.startswith("rss") else ((), ())
    return ParsedFeed(
        title=title,
        link=absolute_http_url(feed.get("link"), base),
        items=items,
        ttl=_ttl(feed.get("ttl")),
        warnings=tuple(warnings),
        losses=tuple(read.losses),
        version=version,
        self_link=next(
            (absolute_http_url(x.get("href"), base) for x in links if x.get("rel") == "self"), None
        ),
        hub_links=tuple(
            href
            for x in links
            if x.get("rel") == "hub" and (href := absolute_http_url(x.get("href"), base))
        ),
        skip_hours=frozenset(skip_hours),
        skip_days=frozenset(skip_days),
        entry_digests=read.entry_digests,
        known_entries=read.known_entries,
    )


@dataclass
class _Read:
    """What feedparser read of a bounded body, and what was said about it on the way."""

    body: bytes
    result: dict[str, Any]
    warnings: list[str]
    losses: list[str]
    entry_digests: bytes = b""
    known_entries: int = 0  # left out of the parse


def _run_feedparser(
    body: bytes, *, headers: dict[str, str], base: str, known: bytes = b""
) -> _Read:
    """feedparser on a bounded body with the response headers, without the entries `known`
    holds the digests of: what it read, warned and lost."""
    warnings: list[str] = []
    losses: list[str] = []
    response_headers = {
        name: value for name, value in headers.items() if name != "content-encoding"
    }
    guess = second_opinion(body, headers.get("content-type", ""))
    if guess is not None:
        body = guess.body
        response_headers["content-type"] = guess.content_type
        warnings.append(guess.warning)
    located = absolute_http_url(headers.get("content-location"), base) or base
    body, entry_count = keep_first_entries(body)
    if entry_count:
        losses.append(f"read only the first {MAX_ENTRIES} of its {entry_count} entries")
    shrunk = shrink_if_ill_formed(body)
    if shrunk is not None:
        losses.append(
            f"ill-formed and {len(body) / 2**20:.1f} MiB: read only its first "
            f"{len(shrunk) / 2**20:.1f} MiB"
        )
        body = shrunk
    entries = split_entries(body) if not (entry_count or shrunk) else None
    parsed, left_out = entries.without(known) if entries and known else (body, 0)
    result = _located(parsed, response_headers, located)
    if left_out and result.get("bozo"):  # read whole, as it would have been without digests
        left_out = 0
        result = _located(body, response_headers, located)
    if bozo := _bozo_reason(result):
        warnings.append(bozo)
    digests = entries.packed() if entries and not result.get("bozo") else b""
    return _Read(body, result, warnings, losses, digests, left_out)


def _located(body: bytes, response_headers: dict[str, str], located: str) -> dict[str, Any]:
    """feedparser's result for `body`, fetched from `located`."""
    if sets_no_base(body):  # the same result without the URL, and faster (relative.py)
        # an empty location: no base, and headers still present (feedparser judges a missing
        # content type only where there are headers)
        result = _feedparser(body, {**response_headers, "content-location": ""})
        if resolve_after(result, located):
            return result
    return _feedparser(body, {**response_headers, "content-location": located})


def _feedparser(body: bytes, response_headers: dict[str, str]) -> dict[str, Any]:
    # imported on the first parse: ~40 ms of every start, and a cycle of 304s parses nothing
    import feedparser  # noqa: PLC0415

    result: dict[str, Any] = feedparser.parse(
        io.BytesIO(body),  # never the bytes: feedparser would try them as a file name
        response_headers=response_headers,
        resolve_relative_uris=False,
        sanitize_html=False,
    )
    return result


_SKIP_HOURS = re.compile(rb"<skipHours\b[^>]*>(.{0,2000}?)</skipHours>", re.S | re.I)
_SKIP_DAYS = re.compile(rb"<skipDays\b[^>]*>(.{0,2000}?)</skipDays>", re.S | re.I)
_HOUR = re.compile(rb"<hour>\s*(\d{1,2})\s*</hour>", re.I)
_DAY = re.compile(rb"<day>\s*([A-Za-z]+)\s*</day>", re.I)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _skips(body: bytes) -> tuple[list[int], list[str]]:
    """RSS 2.0 skipHours/skipDays, which feedparser does not read (ASCII markup, any charset)."""
    head = body[:_SKIP_SCAN]
    hours: list[int] = []
    days: list[str] = []
    if block := _SKIP_HOURS.search(head):
        hours = [int(hour) % 24 for hour in _HOUR.findall(block.group(1)) if int(hour) <= 24]
    if block := _SKIP_DAYS.search(head):
        names = {day.lower(): day for day in _DAYS}
        found = (names.get(day.decode("ascii").lower()) for day in _DAY.findall(block.group(1)))
        days = [day for day in found if day]
    return hours, days


def _bozo_reason(result: Mapping[str, Any]) -> str:
    if not result.get("bozo"):
        return ""
    error = result.get("bozo_exception")
    if error is None:
        return "the document is not well-formed"
    return f"{type(error).__name__}: {error}"


# An entry's own value for a key, without FeedParserDict's aliases (`description` for
# `summary`, a missing `updated` read as `published`...): each key read here is the name
# feedparser stores the value under, so the plain lookup gives the same value, and it skips
# the alias tables and the KeyError that FeedParserDict.get raises inside for a missing key,
# a good part of our share of every parse.
_own = dict.get


def _item(
    entry: dict[str, Any],
    *,
    url: str,
    base: str,
    feed_name: str,
    feed_lang: str | None,
    now: datetime,
) -> Item | None:
    title = _detail_text(entry, "title", multiline=False)
    summary = _detail_text(entry, "summary")
    details = _own(entry, "content") or []
    contents = [text for detail in details if (text := _text_of(detail, multiline=True))]
    link = absolute_http_url(_own(entry, "link"), base)
    if not (title or summary or contents or link):
        return None
    guid = str(_own(entry, "id") or "").strip()
    return Item(
        title=title,
        summary=summary,
        content="\n".join(dict.fromkeys(contents)),
        link=link,
        guid=guid or None,
        published=sane_datetime(_struct_time(entry), now),
        tags=_tags(_own(entry, "tags") or []),
        lang=_entry_lang(entry) or feed_lang,
        feed_url=url,
        feed_name=feed_name,
    )


def _detail_text(container: dict[str, Any], key: str, *, multiline: bool = True) -> str:
    detail = _own(container, f"{key}_detail")
    if isinstance(detail, dict):
        return _text_of(detail, multiline=multiline)
    value = _own(container, key)
    return plain_text(value, multiline=multiline) if isinstance(value, str) else ""


def _text_of(detail: dict[str, Any], *, multiline: bool) -> str:
    value = _own(detail, "value")
    if not isinstance(value, str) or not value:
        return ""
    value = value[:MAX_MARKUP_CHARS]
    if str(_own(detail, "type", "")).lower() in _HTML_TYPES:
        return html_to_text(value, multiline=multiline)
    return plain_text(value, multiline=multiline)


def _struct_time(entry: dict[str, Any]) -> datetime | None:
    # not entry.get: FeedParserDict maps a missing `updated_parsed` to `published_parsed`
    # with a DeprecationWarning; we ask for each one by its own name
    for key in ("published_parsed", "updated_parsed"):
        value = _own(entry, key)
        if isinstance(value, time.struct_time):
            try:
                return datetime(*value[:6], tzinfo=UTC)
            except (ValueError, OverflowError):
                return None
    return None


def _tags(tags: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for tag in tags:
        raw = _own(tag, "term") or _own(tag, "label")
        if isinstance(raw, str) and (text := plain_text(raw, multiline=False)):
            found[text] = None
    return tuple(found)


def _entry_lang(entry: dict[str, Any]) -> str | None:
    for key in ("title_detail", "summary_detail"):
        detail = _own(entry, key)
        if isinstance(detail, dict) and (lang := _lang(_own(detail, "language"))):
            return lang
    return _lang(_own(entry, "language"))


def _lang(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip().lower() or None


def _ttl(value: object) -> timedelta | None:
    try:
        minutes = int(str(value).strip())
    except ValueError:
        return None
    if minutes <= 0 or minutes > 60 * 24 * 365:
        return None
    return timedelta(minutes=minutes)
