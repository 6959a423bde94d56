"""Full text end to end: headline-only feeds and their article pages on 127.0.0.1, one `run
--once` cycle in process (the burst fixture), alerts delivered to a real receiver that checks
every body against the events schema, pages recorded in a real SQLite store."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from monitor.config.settings import load_config
from monitor.feeds.fetcher import make_client
from monitor.matching import explain
from monitor.models import Item, Match, TermHit
from monitor.pipeline.refresh import feed_settings, ingest_pushed, refresh_context
from monitor.store import Store
from monitor.store.engine import create_engine
from monitor.store.pages import StoredPage, prune_pages, record_pages, stored_pages
from monitor.store.tables import alerts as alert_rows
from monitor.store.tables import pages
from tests.conftest import run_cli
from tests.support.burst import Burst
from tests.support.receiver import SECRET, Delivery, SignedReceiver
from tests.support.servers import LocalServer, RecordedRequest, Reply

DATA = Path(__file__).resolve().parent.parent / "data" / "fulltext"
HTML = {"Content-Type": "text/html; charset=utf-8"}
_HOURS_AGO = re.compile(r"\{\{hours-ago:(\d+)\}\}")
# where each page of tests/data/fulltext/pages is served (the feeds' links)
PAGES = {
    "/news/2026/minister-havana.html": "en-minister-havana.html",
    "/es/2026/canciller-habana.html": "es-canciller-habana.html",
    "/ru/2026/minister-gavana.html": "ru-minister-gavana.html",
    # linked by items that are no candidates: fetching them would be a fault
    "/news/2026/storm-season.html": "en-minister-havana.html",
    "/news/2026/lavrov-meets.html": "en-minister-havana.html",
}


@pytest.fixture
def other() -> Iterator[LocalServer]:
    """A second origin, which no feed was configured on."""
    with LocalServer(poll_interval=0.05) as local:
        yield local


def feed(name: str, *, base: str, pages_at: str, now: datetime) -> bytes:
    text = (DATA / "feeds" / name).read_text(encoding="utf-8")
    text = _HOURS_AGO.sub(
        lambda m: format_datetime(now - timedelta(hours=int(m.group(1))), usegmt=True), text
    )
    return text.replace("{{base}}", base).replace("{{pages}}", pages_at).encode("utf-8")


def serve(
    server: LocalServer, *names: str, now: datetime, pages_at: LocalServer | str | None = None
) -> None:
    """The feeds `names` at /NAME, their links to `pages_at` (default: the same server), and
    the article pages on the server that holds them."""
    target = pages_at or server
    base = target if isinstance(target, str) else target.url("").rstrip("/")
    for name in names:
        body = feed(name, base=server.url("").rstrip("/"), pages_at=base, now=now)
        server.static(f"/{name}", body, headers={"Content-Type": "application/rss+xml"})
    if isinstance(target, LocalServer):
        for path, page in PAGES.items():
            target.static(path, (DATA / "pages" / page).read_bytes(), headers=HTML)


def configure(
    directory: Path,
    feeds: list[dict[str, object]],
    receiver: SignedReceiver,
    *,
    fetch: dict[str, object] | None = None,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(DATA / "rules", directory / "rules", dirs_exist_ok=True)
    document: dict[str, object] = {
        "version": 1,
        "storage": f"sqlite:///{directory / 'data' / 'monitor.db'}",
        "rules": "rules/",
        "feeds": feeds,
        "webhooks": [{"name": "analysts", "url": receiver.url, "secret": SECRET}],
    }
    if fetch is not None:
        document["fetch"] = fetch
    (directory / "monitor.yaml").write_text(
        yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return directory


def alerts(receiver: SignedReceiver) -> list[tuple[str, str]]:
    """(rule, item title) of every alert delivered, sorted."""
    return sorted(
        (d.body["data"]["rule"]["id"], d.body["data"]["item"]["title"])  # type: ignore[index]
        for d in receiver.deliveries
    )


def delivery(receiver: SignedReceiver, rule: str, title: str) -> Delivery:
    (found,) = [
        d
        for d in receiver.deliveries
        if (d.body["data"]["rule"]["id"], d.body["data"]["item"]["title"]) == (rule, title)  # type: ignore[index]
    ]
    return found


def stored(directory: Path) -> dict[str, tuple[str | None, str | None]]:
    """The pages table: path -> (text, error)."""
    engine = create_engine(f"sqlite:///{directory / 'data' / 'monitor.db'}")
    try:
        with engine.connect() as db:
            rows = db.execute(sa.select(pages.c.url, pages.c.text, pages.c.error)).all()
    finally:
        engine.dispose()
    return {re.sub(r"^https?://[^/]+", "", row.url): (row.text, row.error) for row in rows}


def page_requests(server: LocalServer) -> list[str]:
    return [r.path for r in server.requests if r.path in PAGES]


EN = "Foreign minister arrives in Havana for energy talks"
ES = "El canciller llega a La Habana para una visita oficial"
RU = "Министр прибыл в Гавану с официальным визитом"
HEADLINE_MATCH = "Lavrov meets Cuban president in Havana"


def test_a_rule_that_misses_on_the_headline_matches_on_the_page(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver, burst: Burst
) -> None:
    serve(server, "wire.xml", "diario.xml", "vestnik.xml", now=burst.clock.now())
    names = ("wire.xml", "diario.xml", "vestnik.xml")
    directory = configure(tmp_path / "c", [{"url": server.url(f"/{n}")} for n in names], receiver)

    summary = burst.cycle(directory)

    assert alerts(receiver) == sorted(
        [
            ("russia-cuba", EN),  # on the page: "The Russian foreign minister, Sergei Lavrov"
            ("russia-cuba", ES),
            ("russia-cuba", RU),
            ("russia-cuba", HEADLINE_MATCH),  # the headline was enough: no page
        ]
    )
    # cuba-fuel matched EN too (its prefilter, energy, holds on the headline; diesel: the
    # page): its own alert is recorded, and the webhook gets the item once, listing it
    assert summary.alerts == 5
    also = delivery(receiver, "russia-cuba", EN).body["data"]["also"]  # type: ignore[index]
    assert [other["id"] for other in also] == ["cuba-fuel"]
    # havana-port does not read pages (no `fulltext`, nor has its feed): "port of Matanzas" on
    # the page is not for it; venezuela-sanctions has no term in the headlines, and the
    # comments under the English article that name Venezuela's sanctions are not its text
    matches = delivery(receiver, "russia-cuba", EN).body["data"]["matches"]  # type: ignore[index]
    from_page = [m for m in matches if m.get("source") == "page"]
    assert from_page
    assert all(m["field"] == "content" for m in from_page)
    assert {m["text"] for m in from_page} >= {"Russian", "Lavrov"}
    title_hits = [m for m in matches if m["field"] == "title"]
    assert [m["text"] for m in title_hits] == ["Havana"]
    assert all("source" not in m for m in title_hits)
    ru = delivery(receiver, "russia-cuba", RU).body["data"]["matches"]  # type: ignore[index]
    assert {"России", "Лавров"} <= {m["text"] for m in ru if m.get("source") == "page"}
    headline = delivery(receiver, "russia-cuba", HEADLINE_MATCH).body["data"]["matches"]  # type: ignore[index]
    assert all("source" not in m for m in headline)
    # one request per candidate page; the storm (no term) and the headline match: none
    assert sorted(page_requests(server)) == sorted(
        ["/news/2026/minister-havana.html", "/es/2026/canciller-habana.html",
         "/ru/2026/minister-gavana.html"]
    )  # fmt: skip
    texts = stored(directory)
    assert "Sergei Lavrov" in (texts["/news/2026/minister-havana.html"][0] or "")


def test_the_explanation_names_the_page(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver, burst: Burst
) -> None:
    serve(server, "wire.xml", now=burst.clock.now())
    directory = configure(tmp_path / "c", [{"url": server.url("/wire.xml")}], receiver)
    burst.cycle(directory)
    found = delivery(receiver, "russia-cuba", EN).body["data"]
    link = found["item"]["link"]  # type: ignore[index]
    text, _error = stored(directory)["/news/2026/minister-havana.html"]
    item = Item(title=EN, content=text or "", link=link)
    hits = tuple(TermHit(**hit) for hit in found["matches"])  # type: ignore[index]
    shown = explain(item, Match("russia-cuba", "Russian–Cuban contacts", "high", 100.0, hits))
    lines = shown.splitlines()
    russian = next(i for i, line in enumerate(lines) if '"Russian"' in line)
    assert lines[russian].lstrip().startswith("content[")
    assert "[Russian] foreign minister" in lines[russian + 1]
    assert lines[russian + 2].strip() == f"on the article page {link}"
    havana = next(i for i, line in enumerate(lines) if line.lstrip().startswith("title["))
    assert "on the article page" not in lines[havana + 2]


def test_a_feed_with_fulltext_lets_every_rule_read_its_pages(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver, burst: Burst
) -> None:
    serve(server, "wire.xml", now=burst.clock.now())
    directory = configure(
        tmp_path / "c", [{"url": server.url("/wire.xml"), "fulltext": True}], receiver
    )
    burst.cycle(directory)
    # "the port of Matanzas", on the page: havana-port alerts, and the webhook, which gets the
    # item once, as russia-cuba's alert, is told so
    also = delivery(receiver, "russia-cuba", EN).body["data"]["also"]  # type: ignore[index]
    assert "havana-port" in [other["id"] for other in also]


def test_a_page_is_fetched_once_across_cycles_feeds_and_restarts(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver, burst: Burst
) -> None:
    serve(server, "wire.xml", now=burst.clock.now())
    directory = configure(tmp_path / "c", [{"url": server.url("/wire.xml")}], receiver)
    burst.cycle(directory)
    assert page_requests(server) == ["/news/2026/minister-havana.html"]
    # another feed with the same links, in a later cycle: a new process, as after a restart
    body = feed("wire.xml", base=server.url(""), pages_at=server.url("").rstrip("/"),
                now=burst.clock.now())  # fmt: skip
    server.static("/copy.xml", body, headers={"Content-Type": "application/rss+xml"})
    configure(
        directory,
        [{"url": server.url("/wire.xml")}, {"url": server.url("/copy.xml")}],
        receiver,
    )
    burst.clock.advance(timedelta(minutes=11))
    second = burst.cycle(directory)
    assert second.new_items == 3
    assert page_requests(server) == ["/news/2026/minister-havana.html"]  # from the store
    copies = [title for rule, title in alerts(receiver) if rule == "russia-cuba"]
    assert copies.count(EN) == 2  # the copy's item alerted from the stored page


def test_robots_txt_disallow_is_honoured(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver, burst: Burst
) -> None:
    serve(server, "wire.xml", "vestnik.xml", now=burst.clock.now())
    robots = b"User-agent: *\nDisallow: /admin/\n\nUser-agent: monitor\nDisallow: /ru/\n"
    server.static("/robots.txt", robots, headers={"Content-Type": "text/plain"})
    directory = configure(
        tmp_path / "c",
        [{"url": server.url("/wire.xml")}, {"url": server.url("/vestnik.xml")}],
        receiver,
    )
    burst.cycle(directory)
    assert ("russia-cuba", RU) not in alerts(receiver)
    assert ("russia-cuba", EN) in alerts(receiver)
    assert page_requests(server) == ["/news/2026/minister-havana.html"]
    assert stored(directory)["/ru/2026/minister-gavana.html"] == (None, "disallowed by robots.txt")
    assert len(server.requests_to("/robots.txt")) == 1  # per origin, not per page


def test_the_budget_bounds_the_pages_of_a_poll(
    tmp_path: Path,
    server: LocalServer,
    receiver: SignedReceiver,
    burst: Burst,
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = burst.clock.now()
    serve(server, now=now)
    # one feed with the three headline-only items that are candidates
    items = "".join(
        part
        for name in ("wire.xml", "diario.xml", "vestnik.xml")
        for part in re.findall(
            r"<item>.*?</item>",
            feed(name, base=server.url(""), pages_at=server.url("").rstrip("/"), now=now).decode(),
            flags=re.DOTALL,
        )
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Mixed</title>{items}'
    server.static("/mixed.xml", (body + "</channel></rss>").encode(), headers={})
    directory = configure(
        tmp_path / "c",
        [{"url": server.url("/mixed.xml")}],
        receiver,
        fetch={"fulltext": {"max_pages_per_poll": 1}},
    )
    with caplog.at_level(logging.WARNING, logger="monitor.pipeline.fulltext"):
        burst.cycle(directory)
    assert len(page_requests(server)) == 1
    assert len(stored(directory)) == 1
    assert any(
        "2 article pages not read: over fetch.fulltext.max_pages_per_poll (1)" in r.getMessage()
        for r in caplog.records
    )
    # the first candidate in the document's order was read; the others alerted on nothing
    assert {title for _rule, title in alerts(receiver)} == {EN, HEADLINE_MATCH}


def test_an_oversize_page_is_recorded_as_such_and_matches_nothing(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver, burst: Burst
) -> None:
    serve(server, "wire.xml", now=burst.clock.now())
    padding = b"<!-- " + b"x" * 40_000 + b" -->"
    big = (DATA / "pages" / "en-minister-havana.html").read_bytes().replace(b"</body>", padding)
    server.static("/news/2026/minister-havana.html", big, headers=HTML)
    directory = configure(
        tmp_path / "c",
        [{"url": server.url("/wire.xml")}],
        receiver,
        fetch={"fulltext": {"max_size_kib": 16}},
    )
    burst.cycle(directory)
    assert alerts(receiver) == [("russia-cuba", HEADLINE_MATCH)]
    assert stored(directory)["/news/2026/minister-havana.html"] == (
        None,
        "body larger than 16 KiB",
    )


def test_links_to_another_origin_are_refused_unless_allowed_and_get_no_headers(
    tmp_path: Path, server: LocalServer, other: LocalServer, receiver: SignedReceiver, burst: Burst
) -> None:
    serve(server, "wire.xml", now=burst.clock.now(), pages_at=other)
    feeds = [{"url": server.url("/wire.xml"), "headers": {"X-Api-Key": "feed-secret"}}]
    directory = configure(tmp_path / "c", feeds, receiver)
    burst.cycle(directory)
    assert alerts(receiver) == [("russia-cuba", HEADLINE_MATCH)]
    assert other.requests == []  # not a byte: the address was refused where it connects
    (text, error) = stored(directory)["/news/2026/minister-havana.html"]
    assert text is None
    assert "refused to connect to 127.0.0.1: a loopback address" in (error or "")
    assert server.requests_to("/wire.xml")[0].headers["x-api-key"] == "feed-secret"

    # allowed by the operator: read, without the feed's credentials
    allowed = configure(
        tmp_path / "allowed", feeds, receiver, fetch={"allow_networks": ["127.0.0.0/8"]}
    )
    burst.cycle(allowed)
    assert ("russia-cuba", EN) in alerts(receiver)
    assert "/news/2026/minister-havana.html" in [r.path for r in other.requests]
    assert all("x-api-key" not in r.headers for r in other.requests)


def test_a_link_to_cloud_metadata_is_refused(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver, burst: Burst
) -> None:
    serve(server, "wire.xml", now=burst.clock.now(), pages_at="http://169.254.169.254")
    directory = configure(tmp_path / "c", [{"url": server.url("/wire.xml")}], receiver)
    burst.cycle(directory)
    (_text, error) = stored(directory)["/news/2026/minister-havana.html"]
    assert "169.254.169.254: a link-local address" in (error or "")
    assert alerts(receiver) == [("russia-cuba", HEADLINE_MATCH)]


def test_pages_of_items_outside_the_backfill_are_not_read(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver, burst: Burst
) -> None:
    """A first poll alerts only on recent items (`backfill`): older ones are no candidates."""
    serve(server, "wire.xml", now=burst.clock.now() - timedelta(days=3))
    directory = configure(tmp_path / "c", [{"url": server.url("/wire.xml")}], receiver)
    burst.cycle(directory)
    assert page_requests(server) == []
    assert receiver.deliveries == []


def test_a_page_that_fails_is_recorded_and_the_poll_goes_on(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver, burst: Burst
) -> None:
    serve(server, "wire.xml", now=burst.clock.now())

    def broken(_request: RecordedRequest) -> Reply:
        return Reply(500, b"oops")

    server.route("/news/2026/minister-havana.html", broken)
    directory = configure(tmp_path / "c", [{"url": server.url("/wire.xml")}], receiver)
    summary = burst.cycle(directory)
    assert summary.fetched == 1
    assert summary.new_items == 3
    assert stored(directory)["/news/2026/minister-havana.html"] == (
        None,
        "HTTP 500 Internal Server Error",
    )


# -- the store's pages, on both backends ------------------------------------------------------


def test_pages_are_kept_once_and_pruned(storage_url: str) -> None:
    engine = create_engine(storage_url)
    try:
        then = datetime(2026, 12, 1, tzinfo=UTC)
        long_url = "https://news.example/" + "a" * 3000  # any length: keyed by its hash
        failed = StoredPage("https://x.example/", then, None, "no")
        record_pages(engine, [StoredPage(long_url, then, "text"), failed])
        # a replica that read the same page meanwhile: the first row stands
        record_pages(engine, [StoredPage(long_url, then + timedelta(hours=1), "other")])
        found = stored_pages(engine, [long_url, "https://x.example/", "https://unseen.example/"])
        assert found == {
            long_url: StoredPage(long_url, then, "text"),
            "https://x.example/": failed,
        }
        record_pages(engine, [StoredPage("https://new.example/", then + timedelta(days=8), "t")])
        assert prune_pages(engine, then + timedelta(days=1)) == 2
        assert list(stored_pages(engine, [long_url, "https://new.example/"])) == [
            "https://new.example/"
        ]
    finally:
        engine.dispose()


# -- `monitor match --feed … --fulltext`: the same reading, as a dry run ------------------------


def test_match_fulltext_explains_the_hit_from_the_page(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    serve(server, "wire.xml", now=datetime.now(UTC))
    directory = configure(tmp_path / "c", [{"url": server.url("/wire.xml")}], receiver)
    feed_url = server.url("/wire.xml")
    link = server.url("/news/2026/minister-havana.html")

    plain = run_cli("match", "--config", str(directory), "--feed", feed_url, cwd=tmp_path)
    assert [json.loads(line)["rule_id"] for line in plain.stdout.splitlines()] == ["russia-cuba"]
    assert page_requests(server) == []  # without --fulltext, no page is read

    found = run_cli(
        "match", "--config", str(directory), "--feed", feed_url, "--fulltext", cwd=tmp_path
    )
    assert found.returncode == 0, found.stderr
    lines = [json.loads(line) for line in found.stdout.splitlines()]
    assert sorted((line["item_id"], line["rule_id"]) for line in lines) == sorted(
        [(link, "russia-cuba"), (link, "cuba-fuel"),
         (server.url("/news/2026/lavrov-meets.html"), "russia-cuba")]
    )  # fmt: skip
    page_hits = [hit for line in lines if line["item_id"] == link for hit in line["matches"]]
    assert {hit["source"] for hit in page_hits if hit["field"] == "content"} == {"page"}

    explained = run_cli(
        "match", "--config", str(directory), "--feed", feed_url, "--fulltext", "--explain",
        "--rule", "russia-cuba", cwd=tmp_path,
    )  # fmt: skip
    assert explained.returncode == 0, explained.stderr
    text = explained.stdout
    assert f"on the article page {link}" in text
    assert "The [Russian] foreign minister" in text, text
    # the storm item is no candidate: explained on its headline, its page never read
    assert "/news/2026/storm-season.html" not in page_requests(server)


def test_match_fulltext_needs_a_feed(tmp_path: Path) -> None:
    result = run_cli("match", "--config", str(tmp_path), "--fulltext", cwd=tmp_path)
    assert result.returncode == 2
    assert "--fulltext needs --feed" in result.stderr


async def test_a_pushed_document_reads_its_pages_too(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    """What a WebSub hub pushes (ingest_pushed) goes through the same reading as a poll."""
    now = datetime.now(UTC)
    serve(server, now=now)
    feed_url = server.url("/wire.xml")
    body = feed("wire.xml", base=server.url(""), pages_at=server.url("").rstrip("/"), now=now)
    config = load_config(configure(tmp_path / "c", [{"url": feed_url}], receiver), environ={})
    store = await asyncio.to_thread(Store.open, config.storage_url)
    try:
        store.sync_feeds([(feed_url, None)], now)
        (state,) = store.feeds()
        async with make_client() as client:
            context = refresh_context(store, client, config)
            outcome = await ingest_pushed(context, state, feed_settings(config)[feed_url], body, {})
        with store.engine.connect() as db:
            rows = db.execute(sa.select(alert_rows.c.rule_id, alert_rows.c.payload)).all()
    finally:
        await asyncio.to_thread(store.close)
    assert outcome.status == "pushed"
    assert page_requests(server) == ["/news/2026/minister-havana.html"]
    payloads = {rule: json.loads(payload) for rule, payload in rows if rule == "cuba-fuel"}
    sources = {hit.get("source") for hit in payloads["cuba-fuel"]["data"]["matches"]}
    assert sources == {None, "page"}  # the headline's "energy" and "Havana"; the page's diesel


def test_a_reload_keeps_what_robots_txt_said(tmp_path: Path, receiver: SignedReceiver) -> None:
    directory = configure(tmp_path / "c", [{"url": "http://127.0.0.1:9/wire.xml"}], receiver)
    context = refresh_context(None, None, load_config(directory, environ={}))  # type: ignore[arg-type]
    reloaded = context.reloaded(load_config(directory, environ={}))
    assert reloaded.robots is context.robots
    assert reloaded.pages().robots is context.robots
