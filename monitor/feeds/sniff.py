"""What a response body is, judged by its bytes: a feed, a JSON document, an HTML page or junk.

Servers label feeds `text/html`, `text/plain` or `application/octet-stream` often enough that the
Content-Type is only a tie-breaker. An HTML page where a feed should be is the most common
misconfiguration users meet, so `feed_links` finds the feeds the page advertises for the hint.
"""

from __future__ import annotations

import codecs
import enum
import re
from html.parser import HTMLParser

from monitor.feeds.normalize import absolute_http_url

_HEAD = 4096  # bytes looked at to decide
_SCAN_HTML = 512 * 1024  # bytes of an HTML page searched for <link rel="alternate">

_FEED_TYPES = frozenset(
    (
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/feed+json",
        "application/json",
        "application/xml",
        "text/xml",
    )
)
_FEED_ROOTS = frozenset(("rss", "feed", "rdf", "channel", "scriptingnews"))
_HTML_ROOTS = frozenset(("html", "head", "body", "div", "p", "meta", "title", "script", "table"))

_MAGIC = (
    (b"\x1f\x8b", "gzip data"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"BZh", "bzip2 data"),
    (b"\xfd7zXZ", "xz data"),
    (b"(\xb5/\xfd", "zstd data"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "an executable"),
)
# UTF-16/32 without a BOM, recognized by how `<?` or `<` is spelled (XML 1.0 appendix F).
_WIDE = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
    (b"\x00<", "utf-16-be"),
    (b"<\x00", "utf-16-le"),
)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_FIRST_ELEMENT = re.compile(r"<([A-Za-z_][\w.:-]*)")
_PROLOG = re.compile(
    r"\A(?:\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)*", re.S | re.I
)
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


class Kind(enum.Enum):
    EMPTY = "empty"
    XML = "xml"  # or something feedparser may still make sense of
    JSON = "json"
    HTML = "html"
    BINARY = "binary"


def sniff(body: bytes, content_type: str = "") -> tuple[Kind, str]:
    """The kind of `body` and, for BINARY, what it looks like ("gzip data")."""
    if not body.strip():
        return Kind.EMPTY, ""
    for magic, name in _MAGIC:
        if body.startswith(magic):
            return Kind.BINARY, name
    head = _decode_head(body[:_HEAD])
    if head is None:
        return Kind.BINARY, "binary data"
    return _classify_text(head.lstrip("\ufeff \t\r\n"), content_type), ""


def _classify_text(text: str, content_type: str) -> Kind:
    media = content_type.split(";", 1)[0].strip().lower()
    if text[:1] in ("{", "[") or ("json" in media and not text.startswith("<")):
        return Kind.JSON
    root = _root_name(text)
    if root in _FEED_ROOTS:
        return Kind.XML
    if _is_html_doctype(text) or root in ("html", "head", "body"):
        return Kind.HTML
    if root in _HTML_ROOTS and "html" in media:
        return Kind.HTML
    return Kind.XML


def _decode_head(head: bytes) -> str | None:
    """The first bytes as text (enough to see markup), or None when they look binary."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return head[len(bom) :].decode(encoding, "replace")
    for prefix, encoding in _WIDE:
        if head.startswith(prefix):
            return head.decode(encoding, "replace")
    if b"\x00" in head or len(_CONTROL_BYTES.findall(head)) > len(head) // 20:
        return None
    # Latin-1 maps every byte, so markup is visible whatever the real (ASCII-compatible) charset.
    return head.decode("latin-1")


def _root_name(text: str) -> str:
    prolog = _PROLOG.match(text)
    rest = text[prolog.end() :] if prolog else text
    found = _FIRST_ELEMENT.search(rest[:_HEAD])
    if not found:
        return ""
    return found.group(1).rsplit(":", 1)[-1].lower()


def _is_html_doctype(text: str) -> bool:
    return bool(re.match(r"(?:\s|<\?.*?\?>|<!--.*?-->)*<!DOCTYPE\s+html", text, re.S | re.I))


class _FeedLinkFinder(HTMLParser):
    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("link", "a"):
            return
        values = {name: (value or "") for name, value in attrs}
        rels = values.get("rel", "").lower().split()
        media = values.get("type", "").split(";", 1)[0].strip().lower()
        if "alternate" in rels and media in _FEED_TYPES:
            link = absolute_http_url(values.get("href"), self.base)
            if link and link not in self.links:
                self.links.append(link)


def feed_links(body: bytes, base: str) -> tuple[str, ...]:
    """Feed URLs an HTML page advertises with `<link rel="alternate" type="...rss+xml">`."""
    finder = _FeedLinkFinder(base)
    finder.feed(body[:_SCAN_HTML].decode("utf-8", "replace"))
    finder.close()
    return tuple(finder.links)
