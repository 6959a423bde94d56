"""parse_feed on the fixture feeds in tests/data/feeds: every Item field, every format."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import pytest

from monitor.errors import PermanentFeedError
from monitor.feeds.bounds import MAX_ENTRIES, shrink_if_ill_formed
from monitor.feeds.parser import ParsedFeed, ParseFailed, parse_feed
from monitor.models import Item
from tests.feeds.conftest import feed_file

URL = "https://fetch.example.org/path/feed"
NOW = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
RSS = {"content-type": "application/rss+xml; charset=utf-8"}


def parsed(name: str, headers: dict[str, str] | None = None, feed_name: str = "") -> ParsedFeed:
    result = parse_feed(
        feed_file(name), url=URL, headers=headers or RSS, feed_name=feed_name, now=NOW
    )
    assert isinstance(result, ParsedFeed), result
    return result


def failed(body: bytes, headers: dict[str, str] | None = None) -> ParseFailed:
    result = parse_feed(body, url=URL, headers=headers or {}, now=NOW)
    assert isinstance(result, ParseFailed), result
    assert isinstance(result.error, PermanentFeedError)
    return result


def test_rss20_feed_and_items() -> None:
    feed = parsed("rss20.xml")
    assert feed.title == "Wire & Cable News"
    assert feed.link == "https://news.example.org/"
    assert feed.ttl == timedelta(minutes=30)
    assert feed.version == "rss20"
    assert feed.self_link == "https://news.example.org/rss.xml"
    assert feed.hub_links == ("https://hub.example.net/",)
    assert feed.warnings == ()
    first, second, third = feed.items
    assert first == Item(
        title="Russian delegation arrives in Havana",
        summary="Talks on energy supplies.\nSecond paragraph here.",
        content="Full text: oil shipments.\nMore \u201cquoted\u201d text.",  # <script> dropped
        link="https://fetch.example.org/world/2026/11/27/delegation",  # relative to the feed URL
        guid="urn:news:1001",  # stripped
        published=datetime(2026, 11, 27, 14, 30, tzinfo=UTC),
        tags=("Cuba", "Russia"),
        lang="en-us",
        feed_url=URL,
        feed_name="Wire & Cable News",
    )
    assert (second.guid, second.published, second.link) == (
        None,
        None,
        "https://news.example.org/us/sanctions",
    )
    assert third.published is None  # 1900 is not a news date
    assert third.link == "https://news.example.org/old"  # a permalink guid doubles as the link


def test_feed_name_argument_wins_over_the_title() -> None:
    feed = parsed("rss20.xml", feed_name="Wire (config name)")
    assert {item.feed_name for item in feed.items} == {"Wire (config name)"}


def test_atom10_html_titles_xhtml_content_and_languages() -> None:
    feed = parsed("atom10.xml", {"content-type": "application/atom+xml"})
    assert feed.title == "Noticias del Caribe"
    assert feed.version == "atom10"
    assert feed.hub_links == ("https://pubsubhubbub.example.com/",)
    spanish, english = feed.items
    assert spanish.title == "Cuba y Rusia firman acuerdo"
    assert spanish.summary == "La reunión\nfue breve."
    assert spanish.content == "Primer párrafo.\nSegundo párrafo."
    assert spanish.link == "https://fetch.example.org/path/entradas/acuerdo.html"
    assert spanish.published == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # from <updated>
    assert spanish.tags == ("diplomacia",)
    assert spanish.lang == "es"
    assert english.title == "English entry & more"
    assert english.published == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # <published> first
    assert english.lang == "en"


def test_rss10() -> None:
    feed = parsed("rss10.rdf", {"content-type": "application/rdf+xml"})
    assert feed.version == "rss10"
    (item,) = feed.items
    assert item.title == "Nachricht aus Havanna"
    assert item.published == datetime(2026, 11, 25, 6, 15, tzinfo=UTC)
    assert item.tags == ("Kuba",)
    assert item.lang == "de"


def test_json_feed_11() -> None:
    feed = parsed("jsonfeed11.json", {"content-type": "application/feed+json"})
    assert feed.version == "json11"
    assert feed.title == "JSON Wire"
    assert feed.link == "https://json.example.org/"
    assert feed.self_link == "https://json.example.org/feed.json"
    assert feed.hub_links == ("https://hub.example.net/",)
    assert feed.warnings == ("skipped 1 JSON Feed items that are not objects",)
    first, second = feed.items
    assert first == Item(
        title="Moscow & Havana sign deal",
        summary="Short summary",
        content="First.\nSecond one.",
        link="https://fetch.example.org/posts/2001",
        guid="2001",
        published=datetime(2026, 11, 27, 8, 0, tzinfo=UTC),
        tags=("Cuba", "Russia"),
        lang="es-cu",
        feed_url=URL,
        feed_name="JSON Wire",
    )
    assert second.link == "https://elsewhere.example.com/a"
    assert second.content == "Only text\nin here"
    assert second.published == datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
    assert second.lang == "en"  # the feed's language


def test_json_feed_10_with_a_numeric_id_sniffed_without_content_type() -> None:
    feed = parsed("jsonfeed10.json", {"content-type": "text/plain"})
    (item,) = feed.items
    assert item.guid == "42"
    assert item.published == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def test_json_that_is_not_a_json_feed() -> None:
    result = failed(feed_file("not_jsonfeed.json"), {"content-type": "application/json"})
    assert "not a JSON Feed" in str(result.error)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"version": "https://jsonfeed.org/version/1.1", "title": ', "not a feed: invalid JSON"),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', "not a feed: JSON Feed without"),
        (b"[1, 2]", "not a feed: a JSON document that is not a JSON Feed"),
    ],
)
def test_broken_json_feeds(body: bytes, message: str) -> None:
    assert str(failed(body).error).startswith(message)


def test_html_in_descriptions_becomes_readable_text() -> None:
    (item,) = parsed("html_description.xml").items
    assert item.title == "Glued paragraphs"
    assert item.summary == "One\nTwo\nthree\nfour\nfive\nsix a photo & double-escaped"


def test_spanish_accents_and_entities() -> None:
    first, second = parsed("es_utf8.xml").items
    assert first.title == "Cooperación económica: año de señales"
    assert first.summary == "La reunión del Consejo & la prensa \u201coficial\u201d cubana"
    assert second.title == "Niños y pingüinos"
    assert second.summary == "Crónica\nde La Habana"  # &nbsp; is a plain space
    assert first.lang == "es"


def test_text_is_nfc() -> None:
    (item,) = parsed("nfd.xml").items
    assert item.title == "Cooperaci\u00f3n"
    assert item.summary == "Informaci\u00f3n"


@pytest.mark.parametrize(
    ("fixture", "content_type"),
    [
        ("ru_windows1251.xml", "application/rss+xml"),
        ("ru_koi8r.xml", "text/xml; charset=koi8-r"),
    ],
)
def test_russian_declared_encodings(fixture: str, content_type: str) -> None:
    feed = parsed(fixture, {"content-type": content_type})
    assert feed.title == "Новости"
    assert [item.summary for item in feed.items] == [
        "Делегация прибыла в Гавану во вторник.",
        "Переговоры продлились три часа.",
    ]
    assert feed.items[0].published == datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
    assert feed.items[0].lang == "ru"


def test_guessed_charset_is_a_warning() -> None:
    feed = parsed("ru_koi8r_undeclared.xml", {"content-type": "application/rss+xml"})
    assert feed.warnings[0] == "the feed is not UTF-8 as declared; read it as koi8-r (a guess)"


def test_future_and_ancient_dates_are_dropped() -> None:
    body = (
        b'<rss version="2.0"><channel><title>t</title>'
        b"<item><title>soon</title><pubDate>Sun, 29 Nov 2026 12:00:00 GMT</pubDate></item>"
        b"<item><title>far</title><pubDate>Tue, 01 Dec 2026 12:00:00 GMT</pubDate></item>"
        b"<item><title>naive</title><pubDate>2026-11-27T10:00:00</pubDate></item>"
        b"</channel></rss>"
    )
    result = parse_feed(body, url=URL, headers=RSS, now=NOW)
    assert isinstance(result, ParsedFeed)
    soon, far, naive = result.items
    assert soon.published == datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # within 2 days' slack
    assert far.published is None
    assert naive.published == datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def test_empty_but_valid_feed_has_no_items() -> None:
    body = b'<rss version="2.0"><channel><title>quiet</title></channel></rss>'
    result = parse_feed(body, url=URL, headers=RSS, now=NOW)
    assert isinstance(result, ParsedFeed)
    assert (result.title, result.items) == ("quiet", [])


def test_entries_with_nothing_in_them_are_skipped_with_a_warning() -> None:
    body = (
        b'<rss version="2.0"><channel><title>t</title>'
        b"<item></item><item><title>x</title></item></channel></rss>"
    )
    result = parse_feed(body, url=URL, headers=RSS, now=NOW)
    assert isinstance(result, ParsedFeed)
    assert [item.title for item in result.items] == ["x"]
    assert result.warnings == ("skipped 1 entries with no title, link or text",)


def test_ill_formed_feed_with_entries_is_accepted_with_the_bozo_reason() -> None:
    body = (  # an HTML entity XML does not know, and no </rss>
        b'<rss version="2.0"><channel><title>t</title>'
        b"<item><title>caf&eacute; &amp; more</title></item></channel>"
    )
    result = parse_feed(body, url=URL, headers=RSS, now=NOW)
    assert isinstance(result, ParsedFeed)
    assert result.items[0].title == "café & more"
    assert result.warnings[0].startswith("SAXParseException")


def test_content_language_header_is_the_last_resort() -> None:
    body = (
        b'<rss version="2.0"><channel><title>t</title><item><title>x</title></item></channel></rss>'
    )
    headers = {**RSS, "Content-Language": "es-CU"}
    result = parse_feed(body, url=URL, headers=headers, now=NOW)
    assert isinstance(result, ParsedFeed)
    assert result.items[0].lang == "es-cu"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not a feed: the response body is empty"),
        (b"  \r\n\t ", "not a feed: the response body is empty"),
        (b"Hello, world. This is plain text.", "not a feed: no RSS, Atom or RDF document found"),
        (b"<config><a>1</a></config>", "not a feed: no RSS, Atom or RDF document found"),
        (
            b"<head><title>Document Moved</title></head><body>here</body>",
            "not a feed: the server sent an HTML page; it does not link to a feed",
        ),
    ],
)
def test_not_feeds(body: bytes, message: str) -> None:
    assert str(failed(body).error).startswith(message)


def test_links_that_are_not_http_are_dropped() -> None:
    body = (
        b'<rss version="2.0"><channel><title>t</title>'
        b"<item><title>x</title><link>javascript:alert(1)</link></item>"
        b"<item><title>y</title><link>mailto:a@b.c</link></item></channel></rss>"
    )
    result = parse_feed(body, url=URL, headers=RSS, now=NOW)
    assert isinstance(result, ParsedFeed)
    assert [item.link for item in result.items] == [None, None]


def test_links_resolve_against_the_final_url_while_items_keep_the_configured_one() -> None:
    result = parse_feed(
        feed_file("rss20.xml"),
        url="https://old.example.org/rss",
        base_url="https://moved.example.org/feeds/rss",
        headers=RSS,
        now=NOW,
    )
    assert isinstance(result, ParsedFeed)
    first = result.items[0]
    assert first.link == "https://moved.example.org/world/2026/11/27/delegation"
    assert first.feed_url == "https://old.example.org/rss"


def test_skip_hours_and_days() -> None:
    body = (
        b'<rss version="2.0"><channel><title>t</title>'
        b"<skipHours><hour>0</hour><hour> 1 </hour><hour>24</hour><hour>99</hour></skipHours>"
        b"<skipDays><day>Saturday</day><day>sunday</day><day>Caturday</day></skipDays>"
        b"<item><title>x</title></item></channel></rss>"
    )
    result = parse_feed(body, url=URL, headers=RSS, now=NOW)
    assert isinstance(result, ParsedFeed)
    assert result.skip_hours == frozenset({0, 1})
    assert result.skip_days == frozenset({"Saturday", "Sunday"})


def test_results_survive_pickling_for_a_process_pool() -> None:
    feed = parsed("rss20.xml")
    assert pickle.loads(pickle.dumps(feed)) == feed
    failure = failed(b"<html><body>no</body></html>")
    restored = pickle.loads(pickle.dumps(failure))
    assert str(restored.error) == str(failure.error)
    assert type(restored.error) is PermanentFeedError


@pytest.mark.parametrize("root", ["rss", "atom", "json"])
def test_only_the_first_entries_of_a_huge_feed_are_kept(root: str) -> None:
    count = MAX_ENTRIES + 5
    if root == "rss":
        items = b"".join(b"<item><title>n%d</title></item>\n" % i for i in range(count))
        body = b'<rss version="2.0"><channel><title>big</title>\n' + items + b"</channel>\n</rss>\n"
    elif root == "atom":
        entries = b"".join(b"<entry><title>n%d</title></entry>" % i for i in range(count))
        body = (
            b'<feed xmlns="http://www.w3.org/2005/Atom"><title>big</title>' + entries + b"</feed>"
        )
    else:
        items = ",".join(f'{{"id": "{i}", "title": "n{i}"}}' for i in range(count))
        body = f'{{"version": "https://jsonfeed.org/version/1.1", "items": [{items}]}}'.encode()
    result = parse_feed(body, url=URL, headers={}, now=NOW)
    assert isinstance(result, ParsedFeed)
    assert len(result.items) == MAX_ENTRIES
    assert result.items[-1].title == f"n{MAX_ENTRIES - 1}"
    assert result.losses == (f"read only the first {MAX_ENTRIES} of its {count} entries",)
    assert not any(w.startswith("SAXParseException") for w in result.warnings)  # closed again


def test_a_large_ill_formed_feed_is_read_only_in_part() -> None:
    item = (
        b"<item><title>t &bogus; %d</title><description>"
        + b"word " * 60
        + b"</description></item>\n"
    )
    items = b"".join(item % i for i in range(9_000))  # about 3 MiB, over MAX_LOOSE_BYTES
    body = b'<rss version="2.0"><channel><title>loose</title>\n' + items + b"</channel></rss>"
    result = parse_feed(body, url=URL, headers=RSS, now=NOW)
    assert isinstance(result, ParsedFeed)
    assert 5_000 < len(result.items) < 9_000
    assert result.items[0].title == "t &bogus; 0"
    assert any(w.startswith("ill-formed and 3.") for w in result.losses)


def test_a_large_well_formed_feed_is_read_whole() -> None:
    item = b"<item><title>t %d</title><description>" + b"word " * 60 + b"</description></item>\n"
    items = b"".join(item % i for i in range(9_000))  # about 3 MiB, well-formed
    body = b'<rss version="2.0"><channel><title>big</title>\n' + items + b"</channel></rss>"
    result = parse_feed(body, url=URL, headers=RSS, now=NOW)
    assert isinstance(result, ParsedFeed)
    assert len(result.items) == 9_000
    assert result.warnings == ()


def test_a_single_giant_ill_formed_entry_is_cut_to_a_prefix() -> None:
    body = b"<rss><channel><title>t &bogus;</title><item><title>only</title><description>"
    body += b"word <b>x</b> " * 10_000 + b"</description></item></channel></rss>"
    shrunk = shrink_if_ill_formed(body, limit=4096)
    assert shrunk == body[:4096]  # cutting before the only entry would leave nothing
    assert shrink_if_ill_formed(body, limit=len(body)) is None  # small enough: untouched
    well_formed = body.replace(b"&bogus;", b"&amp;")
    assert shrink_if_ill_formed(well_formed, limit=4096) is None
