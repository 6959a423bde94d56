"""Relative links and ids come out the same whether feedparser resolves them or
monitor.feeds.relative does after it (and ids, which are item identity, never change)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import feedparser
import pytest

from monitor.feeds.bounds import MAX_LOOSE_BYTES
from monitor.feeds.parser import ParsedFeed, parse_feed
from monitor.feeds.relative import resolve_after, sets_no_base

URL = "https://news.example.org/feeds/world.xml"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
RSS = {"content-type": "application/rss+xml"}


def rss(items: str, channel: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
        'xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>World</title>'
        f"<link>/world/</link>{channel}{items}</channel></rss>"
    ).encode()


def parse(body: bytes, headers: dict[str, str] = RSS) -> ParsedFeed:
    result = parse_feed(body, url=URL, headers=headers, now=NOW)
    assert isinstance(result, ParsedFeed), result
    return result


def test_relative_links_are_joined_with_the_feeds_url() -> None:
    body = rss(
        "<item><title>One</title><link>2026/12/one</link><guid>urn:x:1</guid></item>"
        "<item><title>Two</title><link>/abs/two?x=1</link><guid>tag:x.org,2026:2</guid></item>",
        channel='<atom:link rel="self" href="world.xml"/><atom:link rel="hub" href="/hub"/>',
    )
    assert sets_no_base(body)
    feed = parse(body)
    assert [(item.link, item.guid) for item in feed.items] == [
        ("https://news.example.org/feeds/2026/12/one", "urn:x:1"),
        ("https://news.example.org/abs/two?x=1", "tag:x.org,2026:2"),
    ]
    assert feed.link == "https://news.example.org/world/"
    assert feed.self_link == "https://news.example.org/feeds/world.xml"
    assert feed.hub_links == ("https://news.example.org/hub",)


def test_a_content_location_is_the_base() -> None:
    body = rss("<item><title>One</title><link>one.html</link><guid>urn:x:1</guid></item>")
    feed = parse(body, {**RSS, "content-location": "https://news.example.org/moved/feed.xml"})
    assert feed.items[0].link == "https://news.example.org/moved/one.html"


def test_a_relative_guid_that_is_not_a_permalink_stays_as_written() -> None:
    body = rss('<item><title>One</title><guid isPermaLink="false">4956764</guid></item>')
    result = feedparser.parse(io.BytesIO(body), response_headers={"content-location": ""})
    assert not resolve_after(result, URL)  # whether feedparser resolves it: parse as usual
    assert parse(body).items[0].guid == "4956764"


def test_a_relative_permalink_guid_is_resolved_and_is_the_link() -> None:
    item = parse(rss("<item><title>One</title><guid>p/9</guid></item>")).items[0]
    assert (item.guid, item.link) == (
        "https://news.example.org/feeds/p/9",
        "https://news.example.org/feeds/p/9",
    )


def test_an_xml_base_is_honoured() -> None:
    body = (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" xml:base="/blog/">'
        b"<title>Blog</title><id>tag:b,2026:feed</id><updated>2026-11-30T00:00:00Z</updated>"
        b'<entry><title>Post</title><id>tag:b,2026:1</id><link href="post-1"/>'
        b"<updated>2026-11-30T00:00:00Z</updated></entry></feed>"
    )
    assert not sets_no_base(body)
    feed = parse(body, {"content-type": "application/atom+xml"})
    assert feed.items[0].link == "https://news.example.org/blog/post-1"


@pytest.mark.parametrize(
    "body",
    [
        b'<rss version="2.0"><channel xml:base="https://elsewhere.example/">',
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry base = "/x/">',
        b'<feed xmlns="http://www.w3.org/2005/Atom" xml:Base="/blog/">',  # names are lowercased
        b'<rss version="2.0"><channel><item BASE="/x/">',
        b"<rss><channel><item base><title>ill-formed</title>",  # a bare attribute: "base"
        "<rss/>".encode("utf-16"),  # a byte search cannot read UTF-16
        b"\x00<\x00r\x00s\x00s",
    ],
)
def test_documents_that_may_set_a_base_are_parsed_with_the_url(body: bytes) -> None:
    assert not sets_no_base(body)


def test_text_about_a_naval_base_is_no_base_attribute() -> None:
    assert sets_no_base(rss("<item><title>A naval base</title><link>x</link></item>"))


@pytest.mark.parametrize("encoding", ["cp500", "utf-7", "utf-16", ""])
def test_documents_feedparser_read_in_another_alphabet_are_parsed_again(encoding: str) -> None:
    result = {"encoding": encoding, "entries": [{"link": "one"}], "feed": {}}
    assert not resolve_after(result, URL)
    assert result["entries"] == [{"link": "one"}]  # nothing joined


def test_a_mixed_case_xml_base_is_honoured() -> None:
    body = (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" xml:Base="/blog/">'
        b"<title>Blog</title><id>tag:b,2026:feed</id><updated>2026-11-30T00:00:00Z</updated>"
        b'<entry><title>Post</title><id>tag:b,2026:1</id><link href="post-1"/>'
        b"<updated>2026-11-30T00:00:00Z</updated></entry></feed>"
    )
    feed = parse(body, {"content-type": "application/atom+xml"})
    assert feed.items[0].link == "https://news.example.org/blog/post-1"


def test_the_search_for_a_base_stays_linear_on_hostile_markup() -> None:
    """A body at the size cap of `<` with no `>`: each `<` once, not each to the end (before,
    80 KB took 13 s; at 2 MiB it would not have finished within the test's timeout)."""
    body = b"<rss>" + b"<a" * (MAX_LOOSE_BYTES // 2)
    assert sets_no_base(body)
    assert not sets_no_base(body + b"<item base>")
