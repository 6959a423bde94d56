"""Which items are new: guid, else link, else text — each way feeds get identity wrong."""

from __future__ import annotations

from monitor.feeds.identity import Identified, StoredIdentities, identify, unseen
from monitor.models import Item


def _stored(items: list[Item]) -> StoredIdentities:
    """What the store would hold after recording `items` (as refresh records them)."""
    recorded = identify(items)
    return StoredIdentities(
        guids=frozenset(x.guid for x in recorded if x.guid),
        links=frozenset(x.item.link for x in recorded if x.item.link),
        hashes=frozenset(x.content_hash for x in recorded),
        link_hashes=frozenset((x.item.link, x.content_hash) for x in recorded if x.item.link),
    )


def _new(before: list[Item], after: list[Item]) -> list[str]:
    return [x.item.title for x in unseen(identify(after), _stored(before))]


A = Item(title="Lavrov in Havana", summary="Talks.", link="https://e.org/a", guid="a")
B = Item(title="Sanctions on GAESA", summary="Treasury.", link="https://e.org/b", guid="b")


def test_a_changed_title_is_not_a_new_item() -> None:
    retitled = Item(title="Lavrov in Havana (updated)", summary="Talks.", link=A.link, guid="a")
    assert _new([A], [retitled, B]) == ["Sanctions on GAESA"]


def test_an_item_that_lost_its_guid_is_still_known_by_its_link() -> None:
    guidless = Item(title=A.title, summary=A.summary, link=A.link)
    assert _new([A], [guidless]) == []


def test_a_feed_that_changed_its_guid_scheme_does_not_realert() -> None:
    renamed = Item(title=A.title, summary=A.summary, link=A.link, guid="urn:new:a")
    assert _new([A], [renamed]) == []


def test_an_item_that_falls_off_and_comes_back_is_not_new() -> None:
    assert _new([A, B], [B]) == []
    assert _new([A, B], [A, B]) == []


def test_a_guid_shared_by_every_item_does_not_hide_new_items() -> None:
    first = [
        Item(title="one", link="https://e.org/1", guid="same"),
        Item(title="two", link="https://e.org/2", guid="same"),
    ]
    later = [Item(title="three", link="https://e.org/3", guid="same"), *first]
    assert [x.key for x in identify(first)] == ["link:https://e.org/1", "link:https://e.org/2"]
    assert _new(first, later) == ["three"]


def test_undated_items_without_guid_or_link_are_known_by_their_text() -> None:
    plain = [Item(title="Breaking: talks in Havana", summary="More soon.")]
    assert _new(plain, plain) == []
    assert _new(plain, [Item(title="Breaking: talks in Havana", summary="Now confirmed.")]) == [
        "Breaking: talks in Havana"
    ]


def test_repeated_items_in_one_document_count_once() -> None:
    twice = [Item(title="x", summary="y"), Item(title="x", summary="y")]
    found = identify(twice)
    assert len(found) == 1
    assert isinstance(found[0], Identified)


def test_a_shared_link_falls_back_to_text_and_keeps_distinct_items_apart() -> None:
    homepage = "https://e.org/"
    first = [Item(title="one", link=homepage), Item(title="two", link=homepage)]
    later = [Item(title="three", link=homepage), *first]
    assert _new(first, later) == ["three"]
