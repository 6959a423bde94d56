"""The console's pages, served by a real uvicorn server, over SQLite and PostgreSQL."""

from __future__ import annotations

import re

import httpx

from monitor.store.reads import Evidence
from monitor.web.console import highlighted
from monitor.web.static import static_url
from tests.web.seed import Seeded


def _page(client: httpx.Client, path: str, status: int = 200, **params: str) -> str:
    answer = client.get(path, params=params)
    assert answer.status_code == status, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-type"].startswith("text/html")
    assert "hunter2" not in answer.text
    assert "s3cret" not in answer.text
    return answer.text


def test_alerts_page_groups_stories_newest_first(client: httpx.Client, seeded: Seeded) -> None:
    html = _page(client, "/")
    titles = re.findall(r'<h2><a href="/stories/([^"]+)">', html)
    english = seeded.alert_ids["Russian delegation arrives in Havana for talks"]
    assert titles[-1] == english  # the oldest story last, with its Spanish source
    assert len(titles) == 3
    assert "Wire · Noticias" in html
    assert "<mark" in html


def test_filters_are_links(client: httpx.Client) -> None:
    html = _page(client, "/", rule="us-pressure-on-cuba")
    assert html.count('class="story ') == 1
    assert "US Treasury adds sanctions on Cuba" in re.sub(r"<[^>]+>", "", html)
    assert 'href="/alerts.atom?rule=us-pressure-on-cuba"' in html
    assert _page(client, "/", lang="ru").count('class="story ') == 1
    empty = _page(client, "/", severity="low")
    assert "No alerts match these filters" in empty
    bad = _page(client, "/", 400, severity="urgent")
    assert "severity: one of" in bad


def test_older_link_pages_by_cursor(client: httpx.Client) -> None:
    html = _page(client, "/", limit="2", rule="russia-cuba-contacts")
    older = re.search(r'<a rel="next" href="\?([^"]+)"', html)
    assert older is not None
    query = httpx.QueryParams(older.group(1).replace("&amp;", "&"))
    assert query["rule"] == "russia-cuba-contacts"
    rest = _page(client, "/", **dict(query))
    assert 'rel="next"' not in rest


def test_story_page_shows_evidence_deliveries_and_replays(
    client: httpx.Client, seeded: Seeded
) -> None:
    html = _page(client, f"/stories/{seeded.failed}")
    assert "HTTP 400: bad payload (400)" in html
    assert 'name="webhook" value="ops"' in html
    assert "term “" in html
    answer = client.post(
        f"/alerts/{seeded.failed}/replay", data={"webhook": "ops", "story": seeded.failed}
    )
    assert answer.status_code == 303
    assert answer.headers["location"].endswith(
        f"/stories/{seeded.failed}?replayed=1#{seeded.failed}"
    )
    after = _page(client, f"/stories/{seeded.failed}", replayed="1")
    assert "Requeued 1 delivery" in after
    assert '<tr class="state-pending">' in after
    assert client.post("/alerts/alrt_nope/replay", data={}).status_code == 404


def test_alert_address_leads_to_its_story(client: httpx.Client, seeded: Seeded) -> None:
    spanish = seeded.alert_ids["Delegación rusa llega a La Habana"]
    english = seeded.alert_ids["Russian delegation arrives in Havana for talks"]
    answer = client.get(f"/alerts/{spanish}")
    assert answer.status_code == 303
    assert answer.headers["location"].endswith(f"/stories/{english}#{spanish}")
    _page(client, "/alerts/alrt_nope", 404)
    _page(client, "/stories/alrt_nope", 404)


def test_feeds_page_health_and_sparkline(client: httpx.Client, seeded: Seeded) -> None:
    seeded.store.record_poll_failure(
        seeded.store.feeds()[0].id, seeded.store.feeds()[0].next_check_at,
        error="GET https://user:pw@wire.example/rss?api_key=k1: HTTP 503",
        next_check_at=seeded.store.feeds()[0].next_check_at, status=503,
    )  # fmt: skip
    html = _page(client, "/feeds")
    assert "failing" in html
    assert "HTTP 503" in html
    assert "api_key=k1" not in html
    assert ":pw@" not in html
    assert html.count('<svg class="spark"') == 2


def test_rules_page_counts(client: httpx.Client) -> None:
    html = _page(client, "/rules")
    row = html[html.index('href="/?rule=russia-cuba-contacts"') :]
    assert re.search(r'<td class="count">3</td>', row)
    assert 'href="/playground?rule=us-pressure-on-cuba"' in html


def test_playground_matches_and_backtests(client: httpx.Client) -> None:
    form = _page(client, "/playground", rule="us-pressure-on-cuba")
    assert '<option value="us-pressure-on-cuba" selected>' in form
    match = client.post(
        "/playground",
        data={"action": "match", "source": "live", "rule": "us-pressure-on-cuba",
              "title": "Treasury sanctions Cuba", "summary": ""},
    )  # fmt: skip
    assert match.status_code == 200
    assert "us-pressure-on-cuba: matches" in match.text
    draft = "version: 1\nrules:\n  - {id: wx, title: Weather, match: {all: [weather]}}\n"
    backtest = client.post(
        "/playground", data={"action": "backtest", "source": "draft", "draft": draft}
    )
    assert "Would alert now, did not: 1" in backtest.text
    broken = client.post(
        "/playground",
        data={"action": "match", "source": "draft", "draft": "rules: [", "title": "x"},
    )
    assert "Cannot try this" in broken.text
    assert "draft.yaml:" in broken.text


def test_static_assets_are_cached_by_digest(client: httpx.Client) -> None:
    url = static_url("console.css")
    answer = client.get(f"/{url}")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert answer.headers["content-type"] == "text/css; charset=utf-8"
    again = client.get(f"/{url}", headers={"if-none-match": answer.headers["etag"]})
    assert again.status_code == 304
    assert client.get("/static/000000000000/console.css").status_code == 404
    assert client.get(f"/{static_url('console.js')}").status_code == 200
    assert url in client.get("/").text


def test_highlighting_escapes_and_marks() -> None:
    evidence = (
        Evidence("cuba", "title", "Cuba", 4, 8, 100.0, "exact"),
        Evidence("cub*", "title", "Cub", 4, 7, 90.0, "prefix"),  # overlaps: skipped
        Evidence("x", "summary", "x", 0, 1, 100.0),  # another field
        Evidence("bad", "title", "?", 30, 40, 100.0),  # beyond the text: ignored
    )
    shown = str(highlighted("<b> Cuba & Russia", evidence, "title"))
    assert shown == '&lt;b&gt; <mark title="term cuba (exact, 100)">Cuba</mark> &amp; Russia'
