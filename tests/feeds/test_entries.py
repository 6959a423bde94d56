"""Known entries left out of a changed document's parse (monitor.feeds.entries).

The promise is an equivalence: parsed without the entries the last document had, a document
gives exactly the items it gives whole that the last document did not have, and the same
feed-level values. Each case below is a document a byte search could misread, and the check is
that it is either read right or parsed whole.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from monitor.feeds.entries import DIGEST_BYTES, split_entries
from monitor.feeds.parser import ParsedFeed, parse_feed

HEADERS = {"content-type": "application/rss+xml; charset=utf-8"}
URL = "http://127.0.0.1:1/feed.xml"
REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("MONITOR_CORPUS", REPO.parent / "shared" / "corpus"))


def rss_item(n: int, *, guid: str | None = None, link: str | None = None, extra: str = "") -> str:
    guid = f"urn:test:{n}" if guid is None else guid
    link = f"https://news.example/{n}" if link is None else link
    return (
        f"<item><title>Story {n}</title>"
        + (f"<link>{link}</link>" if link else "")
        + (f'<guid isPermaLink="false">{guid}</guid>' if guid else "")
        + f"<description>Text of story {n}.</description>{extra}</item>\n"
    )


def rss(*items: str, head: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>Wire</title><link>https://news.example/</link>{head}\n"
        + "".join(items)
        + "</channel></rss>\n"
    ).encode()


def atom(*entries: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Wire</title><id>urn:test:feed</id>\n" + "".join(entries) + "</feed>\n"
    ).encode()


def atom_entry(n: int) -> str:
    return (
        f"<entry><title>Story {n}</title><id>urn:test:{n}</id>"
        f'<link rel="alternate" href="https://news.example/{n}"/>'
        f"<updated>2026-12-0{1 + n % 3}T10:00:00Z</updated><summary>Text {n}</summary></entry>\n"
    )


def rdf(*items: str) -> bytes:
    return (
        '<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        ' xmlns="http://purl.org/rss/1.0/"><channel rdf:about="https://news.example/">'
        "<title>Wire</title><link>https://news.example/</link></channel>\n"
        + "".join(items)
        + "</rdf:RDF>\n"
    ).encode()


def rdf_item(n: int) -> str:
    return (
        f'<item rdf:about="https://news.example/{n}"><title>Story {n}</title>'
        f"<link>https://news.example/{n}</link></item>\n"
    )


def parsed(body: bytes, known: bytes = b"") -> ParsedFeed:
    result = parse_feed(body, url=URL, headers=HEADERS, known=known)
    assert isinstance(result, ParsedFeed)
    return result


def assert_equivalent(last: bytes, now: bytes) -> ParsedFeed:
    """`now` parsed with `last`'s digests gives what it gives whole, less `last`'s items."""
    before, whole = parsed(last), parsed(now)
    assert before.entry_digests, "the last document keeps its digests"
    pruned = parsed(now, before.entry_digests)
    assert pruned.items == [item for item in whole.items if item not in set(before.items)]
    for name in ("title", "link", "version", "ttl", "self_link", "hub_links", "entry_digests"):
        assert getattr(pruned, name) == getattr(whole, name), name
    return pruned


def test_a_changed_document_is_parsed_without_the_entries_the_last_one_had() -> None:
    last = rss(*(rss_item(n) for n in range(40, 0, -1)))
    now = rss(*(rss_item(n) for n in range(43, 3, -1)))  # three new, three fallen off
    pruned = assert_equivalent(last, now)
    assert [item.guid for item in pruned.items] == ["urn:test:43", "urn:test:42", "urn:test:41"]
    assert pruned.known_entries == 37
    assert len(pruned.entry_digests) == 40 * DIGEST_BYTES


@pytest.mark.parametrize(
    ("last", "now"),
    [
        (atom(*(atom_entry(n) for n in (3, 2, 1))), atom(*(atom_entry(n) for n in (4, 3, 2, 1)))),
        (rdf(*(rdf_item(n) for n in (3, 2, 1))), rdf(*(rdf_item(n) for n in (4, 3, 2, 1)))),
        # no guids at all: identity is the link, unique in the document
        (
            rss(*(rss_item(n, guid="") for n in (2, 1))),
            rss(*(rss_item(n, guid="") for n in (3, 2, 1))),
        ),
        # a link in CDATA, and `</item>` inside a CDATA description
        (
            rss(*(rss_item(n, link=f"<![CDATA[https://news.example/{n}]]>") for n in (2, 1))),
            rss(
                rss_item(3, extra="<content><![CDATA[ends with </item> ]]></content>"),
                *(rss_item(n, link=f"<![CDATA[https://news.example/{n}]]>") for n in (2, 1)),
            ),
        ),
        # the channel changed around the same entries: it is read from the new document
        (
            rss(rss_item(2), rss_item(1), head="<ttl>30</ttl>"),
            rss(rss_item(3), rss_item(2), rss_item(1), head="<ttl>60</ttl>"),
        ),
    ],
    ids=["atom", "rss-1.0", "links-only", "cdata", "channel-changed"],
)
def test_other_forms_are_read_the_same_way(last: bytes, now: bytes) -> None:
    pruned = assert_equivalent(last, now)
    assert pruned.known_entries >= 2
    assert len(pruned.items) == 1


def test_an_entry_that_changed_in_any_byte_is_parsed_again() -> None:
    last = rss(rss_item(2), rss_item(1))
    now = rss(rss_item(2, extra="<category>Updated</category>"), rss_item(1))
    pruned = parsed(now, parsed(last).entry_digests)
    assert (pruned.known_entries, [item.guid for item in pruned.items]) == (1, ["urn:test:2"])


@pytest.mark.parametrize(
    "document",
    [
        rss(rss_item(2), rss_item(1)).decode().encode("utf-16"),
        rss(rss_item(2), rss_item(1)).replace(b"<rss", b'<!DOCTYPE rss [<!ENTITY x "y">]><rss'),
        rss(rss_item(2), rss_item(1).replace("<item>", "<ITEM>").replace("</item>", "</ITEM>")),
        atom(atom_entry(2), atom_entry(1)).replace(b"<entry>", b"<a:entry>"),
        rss(rss_item(2), rss_item(1).replace("<item>", "<item><item>")),
        rss(rss_item(2), rss_item(1), "<item/>"),
        rss(rss_item(2), "<!-- <item> -->", rss_item(1)),
        rss(rss_item(2), rss_item(1, extra="<![CDATA[ <item> ]]>")),
        rss(rss_item(2), rss_item(1), "<![CDATA[ never closed"),
        rss(rss_item(2), rss_item(1, guid="")),  # one entry without a guid
        rss(rss_item(2, guid="same"), rss_item(1, guid="same")),
        rss(
            rss_item(2, link="https://news.example/same"),
            rss_item(1, guid="https://news.example/same"),
        ),
        rss(rss_item(2), rss_item(1, extra="<atom:link href='https://news.example/9'/>")),
        rss(rss_item(2), rss_item(1, link="<b>https://news.example/1</b>")),
        rss(rss_item(2), "<entry><id>urn:test:9</id></entry>", rss_item(1)),
        rss(rss_item(2), "<guid>urn:test:between</guid>", rss_item(1)),
    ],
    ids=[
        "utf-16",
        "entity-declaration",
        "other-case",
        "prefixed",
        "nested",
        "empty-item",
        "in-comment",
        "in-cdata",
        "unclosed-cdata",
        "no-guid-in-one",
        "repeated-guid",
        "guid-is-another-link",
        "prefixed-link",
        "link-with-markup",
        "mixed-elements",
        "identity-between",
    ],
)
def test_a_document_a_byte_search_cannot_be_sure_of_is_parsed_whole(document: bytes) -> None:
    assert split_entries(document) is None
    result = parse_feed(document, url=URL, headers=HEADERS)
    if isinstance(result, ParsedFeed):
        assert result.entry_digests == b""


def test_repeated_guids_stay_counted_in_the_whole_document() -> None:
    """A feed giving every item one guid: identity falls back to links because the guid repeats
    in the document; parsed alone, a new item's guid would look unique and, once stored, hide
    every later item. Such a document is always parsed whole."""
    last = rss(*(rss_item(n, guid="urn:site") for n in (2, 1)))
    now = rss(*(rss_item(n, guid="urn:site") for n in (3, 2, 1)))
    assert parsed(last).entry_digests == b""
    assert parsed(now, parsed(last).entry_digests).known_entries == 0


def test_an_ill_formed_new_entry_is_read_with_the_whole_document() -> None:
    """Not clean without its known entries: parsed whole, as the loose parser reads it, and no
    digests kept."""
    last = rss(rss_item(2), rss_item(1))
    now = rss(rss_item(3, extra="<b>unclosed"), rss_item(2), rss_item(1))
    whole = parsed(now)
    again = parsed(now, parsed(last).entry_digests)
    assert (again.known_entries, again.items, again.entry_digests) == (0, whole.items, b"")


def test_digests_of_another_document_leave_nothing_out() -> None:
    body = rss(rss_item(2), rss_item(1))
    other = parsed(rss(rss_item(9), rss_item(8))).entry_digests
    result = parsed(body, other)
    assert (result.known_entries, len(result.items)) == (0, 2)


def _corpus_documents() -> list[Path]:
    if not (CORPUS / "MANIFEST.tsv").exists():
        return []
    return sorted(path for path in (CORPUS / "real-world").rglob("*") if path.is_file())


@pytest.mark.skipif(not _corpus_documents(), reason=f"the shared corpus is not at {CORPUS}")
def test_real_documents_without_their_first_entry_give_it_back_alone() -> None:
    """Each real-world document of ../shared/corpus that splits, read as if its last version
    lacked its first entry: the pruned parse gives that entry's items alone, and the same
    feed-level values."""
    pruned = 0
    for path in _corpus_documents():
        body = path.read_bytes()
        entries = split_entries(body)
        if entries is None or len(entries.spans) < 2:
            continue
        start, end = entries.spans[0]
        last = body[:start] + body[end:]
        before = parse_feed(last, url=URL, headers={"content-type": "application/xml"})
        if not isinstance(before, ParsedFeed) or not before.entry_digests:
            continue  # not clean without it: keeps no digests, nothing to leave out
        whole = parse_feed(body, url=URL, headers={"content-type": "application/xml"})
        again = parse_feed(
            body, url=URL, headers={"content-type": "application/xml"}, known=before.entry_digests
        )
        assert isinstance(whole, ParsedFeed), path
        assert isinstance(again, ParsedFeed), path
        assert again.items == [i for i in whole.items if i not in set(before.items)], path
        assert (again.title, again.link, again.version) == (whole.title, whole.link, whole.version)
        pruned += again.known_entries > 0
    assert pruned >= 20, "most real documents with guids or unique links split"
