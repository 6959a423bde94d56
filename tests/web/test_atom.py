"""/alerts.atom: valid Atom 1.0 that feedparser reads without complaint, stable ids, links to
the console, hostile text escaped or dropped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from xml.etree import ElementTree as ET

import feedparser
import httpx
import pytest

from monitor.events import alert_created, new_alert_id
from monitor.models import Item
from monitor.store import NewAlert, SeenItem, reads
from monitor.web.atom import ATOM, atom_document
from tests.web.apps import routes_app
from tests.web.seed import NOW, Seeded
from tests.web.serving import serving

A = f"{{{ATOM}}}"


@pytest.fixture
def base(seeded: Seeded) -> Iterator[str]:
    with serving(routes_app(seeded)) as url:
        yield url


def _check_structure(root: ET.Element) -> None:
    """RFC 4287's requirements of a feed and its entries (4.1.1, 4.1.2)."""
    assert root.tag == f"{A}feed"
    for name in ("id", "title", "updated"):
        assert len(root.findall(f"{A}{name}")) == 1, name
    entries = root.findall(f"{A}entry")
    for entry in entries:
        for name in ("id", "title", "updated"):
            assert len(entry.findall(f"{A}{name}")) == 1, name
        assert entry.findall(f"{A}author") or root.findall(f"{A}author")
        assert entry.find(f"{A}summary") is not None
        alternates = [
            link
            for link in entry.findall(f"{A}link")
            if link.get("rel", "alternate") == "alternate"
        ]
        assert len(alternates) == 1
    ids = [entry.findtext(f"{A}id") for entry in entries]
    assert len(set(ids)) == len(ids)


def test_alerts_feed_is_valid_atom(base: str, seeded: Seeded) -> None:
    answer = httpx.get(f"{base}alerts.atom")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/atom+xml; charset=utf-8"
    parsed = feedparser.parse(answer.content)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert len(parsed.entries) == len(seeded.alert_ids)
    newest = parsed.entries[0]
    assert newest.id == f"urn:monitor:alert:{seeded.failed}"
    assert newest.link == f"{base}alerts/{seeded.failed}"
    assert "hunter2" not in answer.text
    _check_structure(ET.fromstring(answer.content))
    again = feedparser.parse(httpx.get(f"{base}alerts.atom").content)
    assert [e.id for e in again.entries] == [e.id for e in parsed.entries]


def test_one_rules_feed(base: str) -> None:
    parsed = feedparser.parse(
        httpx.get(f"{base}alerts.atom", params={"rule": "us-pressure-on-cuba"}).content
    )
    assert parsed.bozo == 0
    assert [e.title for e in parsed.entries] == ["US Treasury adds sanctions on Cuba"]
    assert parsed.feed.id == "urn:monitor:alerts:rule:us-pressure-on-cuba"
    assert {t.term for t in parsed.entries[0].tags} == {"us-pressure-on-cuba", "severity:medium"}
    empty = feedparser.parse(httpx.get(f"{base}alerts.atom", params={"rule": "none"}).content)
    assert empty.bozo == 0
    assert empty.entries == []


def test_hostile_text_is_escaped_and_control_characters_dropped(seeded: Seeded) -> None:
    title = "Cuba & Russia <script>alert(1)</script> \x01\x08\x1b ]]> talks in Havana"
    item = Item(title=title, summary="Moscow", feed_url="https://wire.example/rss", guid="evil")
    alert_id = _record(seeded, item)
    views = reads.alerts_by_id(seeded.store.engine, [alert_id])
    document = atom_document(views, base="http://127.0.0.1/", rule=None, now=NOW)
    root = ET.fromstring(document)
    _check_structure(root)
    shown = root.find(f"{A}entry/{A}title")
    assert shown is not None
    assert shown.text == "Cuba & Russia <script>alert(1)</script>  ]]> talks in Havana"
    assert b"<script>" not in document
    assert feedparser.parse(document).bozo == 0


def _record(seeded: Seeded, item: Item) -> str:
    """`item` recorded as polled, with its alert of russia-cuba-contacts."""
    (match,) = [m for m in seeded.config.matcher.match(item) if m.rule_id == "russia-cuba-contacts"]
    moment = NOW + timedelta(minutes=1)
    alert_id = new_alert_id(moment)
    payload = alert_created(alert_id, item, match, moment)
    new = NewAlert(alert_id, match.rule_id, match.severity, match.score, payload, ())
    feed_id = next(f.id for f in seeded.store.feeds() if f.url == item.feed_url)
    seeded.store.record_poll(
        feed_id,
        moment,
        next_check_at=moment,
        etag=None,
        last_modified=None,
        title=None,
        seen=[SeenItem(item, (new,))],
    )
    return alert_id
