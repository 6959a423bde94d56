"""Table tests for the text, link and date normalization every Item goes through."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urljoin, urlsplit

import pytest

from monitor.feeds.normalize import (
    MAX_FIELD_CHARS,
    absolute_http_url,
    html_to_text,
    join_url,
    plain_text,
    sane_datetime,
)
from monitor.feeds.sniff import Kind, sniff

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("markup", "multiline", "text"),
    [
        ("<p>one</p><p>two</p>", True, "one\ntwo"),
        ("<p>one</p><p>two</p>", False, "one two"),
        ("a<br>b<br/>c", True, "a\nb\nc"),
        ("<td>cell</td><td>next</td>", False, "cell next"),
        ("<b>bold</b>face", False, "boldface"),  # inline elements do not separate words
        ("x<script>var s = '<p>';</script>y<style>p {}</style>z", False, "xyz"),
        ("AT&amp;T &#8220;q&#8221; &eacute; &nbsp;end", False, "AT&T \u201cq\u201d é end"),
        ("double &amp;amp; escaped", False, "double & escaped"),
        ("  lots   of\t\tspace \n\n\n here ", True, "lots of space\nhere"),
        ("5 < 6 and 7 > 3", False, "5 < 6 and 7 > 3"),
        ("<img src=x alt='a chart'>after", False, "a chart after"),
        ("unclosed <div>text", False, "unclosed text"),
        ("ctrl\x00\x08chars\ufeff", False, "ctrlchars\ufeff"),
        ("e\u0301", False, "\u00e9"),
    ],
)
def test_html_to_text(markup: str, multiline: bool, text: str) -> None:
    assert html_to_text(markup, multiline=multiline) == text


def test_plain_text_keeps_angle_brackets_and_decodes_entities() -> None:
    assert plain_text("<not a tag> &amp; \u00a0 x", multiline=False) == "<not a tag> & x"


@pytest.mark.parametrize(
    ("text", "multiline", "expected"),
    [
        ("a \t\x85\u3000 b", True, "a b"),  # every Unicode space, one run: one space
        ("a\n \t\n\u2028\n  b", True, "a\nb"),  # lines of spaces only go
        (" \n lead and trail \n ", True, "lead and trail"),
        ("one\r\ntwo\rthree\u2029four", True, "one\ntwo\nthree\nfour"),
        ("one\n\ntwo \n three", False, "one two three"),
        ("a\x0bb\x1cc", False, "abc"),  # controls go, they are not spaces
        ("zero\u200bwidth", False, "zero\u200bwidth"),  # not whitespace to Python either
        (" \t\n ", True, ""),
    ],
)
def test_plain_text_collapses_whitespace(text: str, multiline: bool, expected: str) -> None:
    assert plain_text(text, multiline=multiline) == expected


def test_fields_are_capped() -> None:
    assert len(plain_text("x" * (MAX_FIELD_CHARS + 10))) == MAX_FIELD_CHARS


@pytest.mark.parametrize(
    ("href", "base", "expected"),
    [
        ("/a", "https://h.example/feed", "https://h.example/a"),
        ("b", "https://h.example/dir/feed", "https://h.example/dir/b"),
        ("//cdn.example/x", "https://h.example/", "https://cdn.example/x"),
        ("  https://h.example/x  ", "", "https://h.example/x"),
        ("javascript:alert(1)", "https://h.example/", None),
        ("data:text/html,hi", "https://h.example/", None),
        ("file:///etc/passwd", "https://h.example/", None),
        ("", "https://h.example/", None),
        (None, "https://h.example/", None),
        ("http://[bad", "https://h.example/", None),
    ],
)
def test_absolute_http_url(href: str | None, base: str, expected: str | None) -> None:
    assert absolute_http_url(href, base) == expected


def _urllib_join(base: str, href: str) -> str | type[ValueError]:
    try:
        return urljoin(base, href)
    except ValueError:
        return ValueError


def _join_or_error(base: str, href: str) -> str | type[ValueError]:
    try:
        return join_url(base, href)
    except ValueError:
        return ValueError


def _urllib_absolute(href: str | None, base: str) -> str | None:
    """absolute_http_url as it was written with urllib alone: the oracle of the shortcut."""
    if not href or not (href := href.strip()):
        return None
    try:
        resolved = urljoin(base, href) if base else href
        parts = urlsplit(resolved)
    except ValueError:
        return None
    return resolved if parts.scheme in ("http", "https") and parts.netloc else None


# Each a form urljoin does not give back as it is, next to one it does: the shortcut must
# leave the first to urllib.
EDGES = [
    "https://h.example/a/b?q=1#f",
    "HTTPS://h.example/a",  # the scheme is lowered
    "https://h.example/a?",  # an empty query is dropped
    "https://h.example/a?#f",
    "https://h.example/a#",  # an empty fragment is dropped
    "https://h.example/a#f#",
    "https://h.example/a;",  # an empty parameter is dropped
    "https://h.example/a;p=1",
    "https://h.example/a\tb",  # urlsplit removes tabs and newlines
    "https://h.example/a\nb",
    "https://h.example/a b",
    "https://[::1]/a",  # an IPv6 host is checked
    "https://[bad/a",
    "https://h\u2100x.example/a",  # NFKC gives a `/` in the host: refused
    "https://h\u00e9.example/a",
    "https://h.example/\u00e9",
    "http://h.example",
    "http://h.example?q",
    "http://user:pw@h.example:8080/a",
    "http://h.example:port/a",
    "https:/h.example/a",
    "https:h.example",
    "https://",
    "https:///a",
    "https://h.example/./a/../b",  # urljoin removes dot segments only from relative paths
    "ftp://h.example/a",
    "urn:feedfarm:1:f00000:000039",  # another scheme: given back as it is
    "tag:news.example.org,2026:1",
    "Urn:X",
    "urn://[bad",  # a host in it is checked
    "mailto:a@b.example",
    "http:relative",  # the base's scheme without a host: joined
    "https:relative",
    "HTTP:relative",  # the same scheme in another case
    "/relative/a",
    "relative",
    "",
]
BASES = [
    "https://news.example.org/feed.xml",
    "http://news.example.org/dir/",
    "",
    "https://[bad/feed",  # urljoin cannot split it
    "ftp://files.example/",
]


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("href", EDGES)
def test_join_url_is_urljoin(href: str, base: str) -> None:
    assert _join_or_error(base, href) == _urllib_join(base, href)
    assert absolute_http_url(href, base) == _urllib_absolute(href, base)


def test_join_url_is_urljoin_on_random_urls() -> None:
    """Strings of the characters URLs are cut at, after an http(s) start as well as not: the
    shortcut and urllib give the same for every one."""
    rng = random.Random(20261204)
    alphabet = "ab/?#;:@[]%.&= \t\n\r\x00\x7f\u00e9\u2100H"
    starts = ["http://", "https://", "HTTP://", "http:/", "https://h.example", "", "//"]
    starts += ["http:", "https:", "HTTP:", "Https:", "urn:", "Tag:", "x+y.z-1:", "1a:", ":"]
    for _ in range(20_000):
        href = rng.choice(starts) + "".join(rng.choices(alphabet, k=rng.randrange(12)))
        base = rng.choice(BASES)
        assert _join_or_error(base, href) == _urllib_join(base, href), (base, href)
        assert absolute_http_url(href, base) == _urllib_absolute(href, base), (base, href)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (datetime(2026, 11, 27, 9, 0), datetime(2026, 11, 27, 9, 0, tzinfo=UTC)),
        (
            datetime(2026, 11, 27, 9, 0, tzinfo=timezone(timedelta(hours=-5))),
            datetime(2026, 11, 27, 14, 0, tzinfo=UTC),
        ),
        (datetime(1970, 1, 1, tzinfo=UTC), None),
        (datetime(2026, 11, 29, 11, 0, tzinfo=UTC), datetime(2026, 11, 29, 11, 0, tzinfo=UTC)),
        (datetime(2026, 12, 30, tzinfo=UTC), None),
    ],
)
def test_sane_datetime(value: datetime | None, expected: datetime | None) -> None:
    assert sane_datetime(value, NOW) == expected


@pytest.mark.parametrize(
    ("body", "content_type", "kind"),
    [
        (b"", "", Kind.EMPTY),
        (b'<?xml version="1.0"?>\n<rss version="2.0"/>', "text/html", Kind.XML),
        (b"\xef\xbb\xbf<feed xmlns='http://www.w3.org/2005/Atom'/>", "", Kind.XML),
        ('<?xml version="1.0" encoding="utf-16"?><rss/>'.encode("utf-16"), "", Kind.XML),
        ('<rss version="2.0"/>'.encode("utf-16-le"), "", Kind.XML),  # no BOM
        (b"<!-- c --><!DOCTYPE rss [<!ENTITY a 'b'>]><rss/>", "", Kind.XML),
        (b"<rdf:RDF xmlns:rdf='x'/>", "", Kind.XML),
        (b"<!doctype html><html><body>x</body></html>", "", Kind.HTML),
        (b"\n\n<HTML><HEAD></HEAD></HTML>", "application/rss+xml", Kind.HTML),
        (b"<div>fragment</div>", "text/html; charset=utf-8", Kind.HTML),
        (b"<div>fragment</div>", "application/xml", Kind.XML),
        (b'{"version": "x"}', "", Kind.JSON),
        (b'  ["a"]', "text/plain", Kind.JSON),
        (b"\x89PNG\r\n\x1a\n", "image/png", Kind.BINARY),
        (bytes(range(32)) * 10, "", Kind.BINARY),
    ],
)
def test_sniff(body: bytes, content_type: str, kind: Kind) -> None:
    assert sniff(body, content_type)[0] is kind
