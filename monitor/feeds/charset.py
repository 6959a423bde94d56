"""A second opinion on the charset when a feed claims UTF-8 (or nothing) and is not UTF-8.

feedparser tries the declared charset, then UTF-8, then falls back to windows-1252. Two real
cases read badly that way, so they are caught before it runs:

- "mostly UTF-8": a UTF-8 feed with a few broken bytes; windows-1252 would garble every accent,
  so the broken bytes alone become U+FFFD.
- Russian in windows-1251 or KOI8-R with no (or a false UTF-8) declaration: most letters are
  bytes >= 0xC0, and Russian text is mostly lower case, which windows-1251 puts at 0xE0-0xFF and
  KOI8-R at 0xC0-0xDF.

A feed that declares some other charset is left to feedparser: declarations are usually right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_XML_DECL_ENCODING = re.compile(rb"\A\s*<\?xml[^>]*?encoding\s*=\s*[\"']([\w.:-]+)[\"']", re.I)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_UTF8_NAMES = frozenset(("utf-8", "utf8", "us-ascii", "ascii"))
_SAMPLE = 256 * 1024


@dataclass(frozen=True)
class Guess:
    body: bytes
    content_type: str
    warning: str


def second_opinion(body: bytes, content_type: str) -> Guess | None:
    """A re-encoded body or a corrected Content-Type, or None to leave the feed as it is."""
    if body[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in body[:4]:
        return None  # UTF-16/32: feedparser knows those
    declared = _declared(body, content_type)
    if declared is not None and declared not in _UTF8_NAMES:
        return None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return None
    return _mostly_utf8(body) or _russian(body)


def _declared(body: bytes, content_type: str) -> str | None:
    found = _CHARSET.search(content_type)
    if found:
        return found.group(1).lower()
    decl = _XML_DECL_ENCODING.match(body[:1024])
    return decl.group(1).decode("ascii").lower() if decl else None


def _mostly_utf8(body: bytes) -> Guess | None:
    text = body.decode("utf-8", "replace")
    broken = text.count("\ufffd")
    fine = sum(1 for char in text if ord(char) > 0x7F) - broken
    if fine < 2 * broken:  # real UTF-8 has far more good sequences than bad ones
        return None
    return Guess(
        body=text.encode("utf-8"),
        content_type="application/xml; charset=utf-8",
        warning=f"replaced {broken} invalid UTF-8 sequences with U+FFFD",
    )


def _russian(body: bytes) -> Guess | None:
    sample = body[:_SAMPLE]
    ascii_letters = sum(1 for byte in sample if 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A)
    upper_half = sum(1 for byte in sample if 0xC0 <= byte <= 0xDF)
    lower_half = sum(1 for byte in sample if byte >= 0xE0)
    high = upper_half + lower_half
    if high < 20 or high < 0.2 * (high + ascii_letters):
        return None  # a Latin-script feed: windows-1252 is the right fallback
    charset = "windows-1251" if lower_half >= upper_half else "koi8-r"
    return Guess(
        body=body,
        content_type=f"application/xml; charset={charset}",
        warning=f"the feed is not UTF-8 as declared; read it as {charset} (a guess)",
    )
