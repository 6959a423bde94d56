"""Normalizing what feeds say: plain text, absolute links, sane dates.

Plain text: HTML stripped, entities decoded, whitespace collapsed, NFC.

Feeds put HTML in titles, descriptions and content, escape it once or twice, and glue block
elements together (`<p>one</p><p>two</p>`). Matching and alerts want readable text, so every
text field of an `Item` goes through `html_to_text` or `plain_text`.
"""

from __future__ import annotations

import html
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

MAX_FIELD_CHARS = 100_000  # a field longer than this is cut: no headline needs more

# Elements whose boundaries separate words: a newline is written at their start and end.
_BLOCK = frozenset(
    {
        *("address", "article", "aside", "blockquote", "body", "br", "caption", "dd", "details"),
        *("dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form"),
        *("h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p"),
        *("pre", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul"),
    }
)
# Elements whose text is never shown to a reader.
_HIDDEN = frozenset(
    {"script", "style", "template", "noscript", "iframe", "object", "embed", "svg", "math", "head"}
)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_LOOKS_LIKE_MARKUP = re.compile(r"<[a-zA-Z/!]|&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]\w*);")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden_depth += 1
        elif tag in _BLOCK:
            self.parts.append("\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt and not self._hidden_depth:
                self.parts.append(f" {alt} ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HIDDEN:  # <script/> opens nothing
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self.parts.append(data)


def html_to_text(markup: str, *, multiline: bool = True) -> str:
    """The text a reader sees in `markup`; block boundaries become newlines (or spaces)."""
    if not _LOOKS_LIKE_MARKUP.search(markup):
        return plain_text(markup, multiline=multiline)
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    # Unescaped once more: `&amp;amp;` is a publisher's double escaping far more often than prose.
    return plain_text("".join(extractor.parts), multiline=multiline)


def plain_text(text: str, *, multiline: bool = True, unescape: bool = True) -> str:
    """Entities decoded (once more: feeds often escape twice), whitespace collapsed, NFC."""
    if unescape and "&" in text:
        text = html.unescape(text)
    text = _CONTROL.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ").replace("\u2028", "\n").replace("\u2029", "\n")
    # runs of whitespace become one space, and lines that hold none but whitespace go: as
    # regular expressions would, but split and join do not build a match per space
    if multiline:
        lines = (" ".join(line.split()) for line in text.split("\n"))
        text = "\n".join(line for line in lines if line)
    else:
        text = " ".join(text.split())
    text = unicodedata.normalize("NFC", text)
    return text[:MAX_FIELD_CHARS]


def absolute_http_url(href: str | None, base: str) -> str | None:
    """`href` resolved against `base`; None unless the result is an http(s) URL."""
    if not href:
        return None
    href = href.strip()
    if not href:
        return None
    try:
        if _as_is(href) and _scheme(base) is not None:  # urljoin's result: http(s), a host
            return href
        resolved = urljoin(base, href) if base else href
        parts = urlsplit(resolved)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return resolved


def join_url(base: str, href: str) -> str:
    """`urljoin(base, href)`, ValueError included, without urllib's work for the usual `href`:
    one it would give back as it is (an absolute http(s) URL, an id in a scheme of its own such
    as `urn:` or `tag:`). Every link and id of every entry is joined, and urllib splits both
    URLs and puts one together again each time."""
    scheme = _scheme(base)
    if scheme is not None and (_as_is(href) or _another_scheme(href, scheme)):
        return href
    return urljoin(base, href)


# An absolute http(s) URL that urljoin returns unchanged whatever the base (urljoin gives back
# an href whose scheme differs from the base's as it is, and one with the same scheme and a host
# split and put together again): all ASCII (a host outside it is checked), no bracket (an IPv6
# host is checked), no whitespace (urlsplit removes tabs and newlines), a lowercase scheme
# (urlsplit lowers it), no `;` (an empty parameter would be dropped), no `?` with nothing after
# it before the fragment, and no `#` at the end (empty parts are dropped as well).
_AS_IS = re.compile(r"https?://[^/?#\[\];\x00-\x20\x7f]+(?:[/?#][^;\x00-\x20\x7f]*)?")
# A scheme, then no host (urlsplit would check one), in printable ASCII (nothing it strips)
_SCHEMED = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(?!//)[!-~]*")


def _as_is(href: str) -> bool:
    return (
        href.isascii()
        and _AS_IS.fullmatch(href) is not None
        and "?#" not in href
        and not href.endswith(("?", "#"))
    )


def _another_scheme(href: str, scheme: str) -> bool:
    """Whether `href` is in a scheme other than `scheme`, which urljoin gives back as it is."""
    match = _SCHEMED.fullmatch(href)
    return match is not None and match.group(1).lower() != scheme


@lru_cache(maxsize=256)  # an entry's links are joined with its document's URL: a few bases
def _scheme(base: str) -> str | None:
    """The scheme urljoin reads in `base`; None where it cannot split it (it raises)."""
    try:
        return urlsplit(base).scheme
    except ValueError:
        return None


EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)  # before any feed format existed
FUTURE_SLACK = timedelta(days=2)  # clocks drift, time zones get mislabeled; beyond this is absurd


def sane_datetime(value: datetime | None, now: datetime) -> datetime | None:
    """`value` in UTC, or None when it is missing, naive-and-unknowable or absurd."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # feeds without an offset mean UTC more often than not
    value = value.astimezone(UTC)
    if value < EARLIEST or value > now + FUTURE_SLACK:
        return None
    return value
