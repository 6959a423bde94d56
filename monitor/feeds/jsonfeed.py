"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1), which feedparser does not read.

{"version": "https://jsonfeed.org/version/1.1", "title": ..., "home_page_url": ...,
 "feed_url": ..., "hubs": [{"type": "WebSub", "url": ...}], "language": "es",
 "items": [{"id", "url", "external_url", "title", "content_html", "content_text", "summary",
            "date_published", "date_modified", "tags", "language"}]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from monitor.errors import PermanentFeedError
from monitor.feeds.bounds import MAX_ENTRIES, MAX_MARKUP_CHARS
from monitor.feeds.normalize import absolute_http_url, html_to_text, plain_text, sane_datetime
from monitor.models import Item

VERSION_PREFIXES = ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")


@dataclass(frozen=True)
class JsonFeed:
    version: str
    title: str
    link: str | None
    self_link: str | None
    hub_links: tuple[str, ...]
    items: list[Item]
    warnings: tuple[str, ...]
    losses: tuple[str, ...]  # what of the document was not read


def parse_json_feed(body: bytes, *, url: str, base: str, feed_name: str, now: datetime) -> JsonFeed:
    """Map a JSON Feed document to Items; raise PermanentFeedError when it is not one."""
    document = _load(body)
    raw_items = document.get("items")
    warnings: list[str] = []
    version = _version(document, warnings)
    if not isinstance(raw_items, list):
        raise PermanentFeedError("not a feed: JSON Feed without an items list")
    title = plain_text(_string(document.get("title")), multiline=False)
    feed_lang = _lang(document.get("language"))
    items: list[Item] = []
    skipped = 0
    losses: list[str] = []
    if len(raw_items) > MAX_ENTRIES:
        losses.append(f"read only the first {MAX_ENTRIES} of its {len(raw_items)} entries")
    for raw in raw_items[:MAX_ENTRIES]:
        if not isinstance(raw, dict):
            skipped += 1
            continue
        items.append(
            _item(raw, url=url, base=base, feed_name=feed_name or title, lang=feed_lang, now=now)
        )
    if skipped:
        warnings.append(f"skipped {skipped} JSON Feed items that are not objects")
    hubs = document.get("hubs")
    hub_links = tuple(
        link
        for hub in (hubs if isinstance(hubs, list) else [])
        if isinstance(hub, dict)
        and (link := absolute_http_url(_string(hub.get("url")), base)) is not None
    )
    return JsonFeed(
        version="json" + version.rsplit("/", 1)[-1].replace(".", "")[:4],
        title=title,
        link=absolute_http_url(_string(document.get("home_page_url")), base),
        self_link=absolute_http_url(_string(document.get("feed_url")), base),
        hub_links=hub_links,
        items=items,
        warnings=tuple(warnings),
        losses=tuple(losses),
    )


def _load(body: bytes) -> dict[str, Any]:
    try:
        # json detects UTF-8/16/32 itself; strict=False lets raw tabs and newlines into strings
        document = json.loads(body, strict=False)
    except RecursionError:
        raise PermanentFeedError("not a feed: JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise PermanentFeedError(f"not a feed: invalid JSON ({error})") from None
    if not isinstance(document, dict):
        raise PermanentFeedError("not a feed: a JSON document that is not a JSON Feed")
    return document


def _version(document: dict[str, Any], warnings: list[str]) -> str:
    version = document.get("version")
    if isinstance(version, str) and version.startswith(VERSION_PREFIXES):
        return version
    if not isinstance(document.get("items"), list) or not _looks_like_json_feed(document):
        raise PermanentFeedError(
            "not a feed: a JSON document that is not a JSON Feed (no jsonfeed.org version)"
        )
    warnings.append(f"JSON Feed version {version!r} is not a jsonfeed.org URL")
    return str(version)


def _item(
    raw: dict[str, Any], *, url: str, base: str, feed_name: str, lang: str | None, now: datetime
) -> Item:
    content_text = _string(raw.get("content_text"))
    if content_text:
        content = plain_text(content_text)
    else:
        content = html_to_text(_string(raw.get("content_html"))[:MAX_MARKUP_CHARS])
    raw_id = raw.get("id")
    guid = (
        str(raw_id).strip()
        if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool)
        else ""
    )
    tags = raw.get("tags")
    published = _date(raw.get("date_published")) or _date(raw.get("date_modified"))
    return Item(
        title=html_to_text(_string(raw.get("title")), multiline=False),
        summary=html_to_text(_string(raw.get("summary"))),
        content=content,
        link=absolute_http_url(_string(raw.get("url")) or _string(raw.get("external_url")), base),
        guid=guid or None,
        published=sane_datetime(published, now),
        tags=tuple(
            dict.fromkeys(
                text
                for tag in (tags if isinstance(tags, list) else [])
                if isinstance(tag, str) and (text := plain_text(tag, multiline=False))
            )
        ),
        lang=_lang(raw.get("language")) or lang,
        feed_url=url,
        feed_name=feed_name,
    )


def _looks_like_json_feed(document: dict[str, Any]) -> bool:
    """A wrong `version` ("1.1") is forgiven when the rest reads like a JSON Feed."""
    return any(isinstance(document.get(key), str) for key in ("title", "home_page_url", "feed_url"))


def _string(value: object) -> str:
    return value if isinstance(value, str) else ""


def _lang(value: object) -> str | None:
    return value.strip().lower() or None if isinstance(value, str) else None


def _date(value: object) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text)  # some publishers write RFC 822 dates anyway
    except (TypeError, ValueError, IndexError):
        return None
