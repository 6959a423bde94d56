"""/api/v1/ over SQLite and PostgreSQL: each endpoint, its errors, and its OpenAPI document."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from monitor.store import reads
from monitor.web.api import MAX_BODY
from tests.web.seed import SECRET_FEED, Seeded

DRAFT = """
version: 1
rules:
  - id: lisbon-weather
    title: Weather in Lisbon (draft)
    severity: low
    match:
      all: [weather, Lisbon]
"""


def _get(client: httpx.Client, path: str, status: int = 200, **params: str) -> Any:
    answer = client.get(path, params=params)
    assert answer.status_code == status, answer.text
    return answer.json()


def test_alerts_newest_first_with_matches_and_deliveries(client: httpx.Client) -> None:
    body = _get(client, "/api/v1/alerts")
    assert body["next"] is None
    times = [alert["created_at"] for alert in body["alerts"]]
    assert times == sorted(times, reverse=True)
    newest = body["alerts"][0]
    assert newest["rule"]["id"] == "russia-cuba-contacts"
    assert {d["webhook"]: d["state"] for d in newest["deliveries"]} == {
        "chat": "delivered",
        "ops": "failed",
    }
    for hit in newest["matches"]:
        text = newest[hit["field"]]
        assert text[hit["start"] : hit["end"]] == hit["text"]


def test_feed_urls_are_masked_everywhere(client: httpx.Client) -> None:
    everything = " ".join(
        client.get(path).text for path in ("/api/v1/alerts", "/api/v1/feeds", "/api/v1/stories")
    )
    assert "hunter2" not in everything
    assert "s3cret" not in everything
    assert "news.example/feed" in everything


def test_alerts_page_by_cursor_and_filter(client: httpx.Client) -> None:
    first = _get(client, "/api/v1/alerts", limit="3")
    assert len(first["alerts"]) == 3
    rest = _get(client, "/api/v1/alerts", limit="3", cursor=first["next"])
    assert len(rest["alerts"]) == 1
    assert rest["next"] is None
    assert {a["id"] for a in first["alerts"]}.isdisjoint({a["id"] for a in rest["alerts"]})
    raw = client.get(f"/api/v1/alerts?limit=3&cursor={first['next']}")  # pasted as it came
    assert raw.json() == rest
    medium = _get(client, "/api/v1/alerts", severity="medium")
    assert [a["rule"]["id"] for a in medium["alerts"]] == ["us-pressure-on-cuba"]
    spanish = _get(client, "/api/v1/alerts", lang="es", since="7d")
    assert [a["lang"] for a in spanish["alerts"]] == ["es"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"severity": "urgent"}, "severity"),
        ({"since": "yesterday"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"feed": "x"}, "feed"),
        ({"cursor": "forged"}, "cursor"),
    ],
)
def test_bad_parameters_are_named(
    client: httpx.Client, params: dict[str, str], message: str
) -> None:
    body = _get(client, "/api/v1/alerts", 400, **params)
    assert body["error"].startswith(message)


def test_one_alert_its_deliveries_and_404s(client: httpx.Client, seeded: Seeded) -> None:
    alert = _get(client, f"/api/v1/alerts/{seeded.failed}")
    assert alert["id"] == seeded.failed
    deliveries = _get(client, f"/api/v1/alerts/{seeded.failed}/deliveries")["deliveries"]
    failed = next(d for d in deliveries if d["webhook"] == "ops")
    assert failed == {**failed, "state": "failed", "attempts": 1, "last_status": 400}
    assert failed["last_error"] == "HTTP 400: bad payload"
    _get(client, "/api/v1/alerts/alrt_nope", 404)
    _get(client, "/api/v1/alerts/alrt_nope/deliveries", 404)
    _get(client, "/api/v1/stories/alrt_nope", 404)


def test_stories_join_the_same_news_in_two_languages(client: httpx.Client, seeded: Seeded) -> None:
    stories = _get(client, "/api/v1/stories")["stories"]
    english = seeded.alert_ids["Russian delegation arrives in Havana for talks"]
    spanish = seeded.alert_ids["Delegación rusa llega a La Habana"]
    story = next(s for s in stories if s["id"] == english)
    assert [a["id"] for a in story["alerts"]] == [spanish, english]
    assert story["languages"] == ["en", "es"]
    assert story["sources"] == ["Wire", "Noticias"]
    assert story["count"] == 2
    assert sum(s["count"] for s in stories) == 4
    alone = _get(client, f"/api/v1/stories/{spanish}")
    assert alone["id"] == english
    assert alone["first_seen"] < alone["last_seen"]


def test_feeds_with_health(client: httpx.Client) -> None:
    feeds = {feed["name"]: feed for feed in _get(client, "/api/v1/feeds")["feeds"]}
    assert feeds["Noticias"]["health"] == "ok"
    assert feeds["Noticias"]["items"] == 2
    assert sum(feeds["Wire"]["items_per_day"]) == 3
    assert feeds["Noticias"]["url"] != SECRET_FEED


def test_rules_with_recent_counts(client: httpx.Client) -> None:
    rules = {rule["id"]: rule for rule in _get(client, "/api/v1/rules")["rules"]}
    assert rules["russia-cuba-contacts"]["alerts"] == 3
    assert rules["us-pressure-on-cuba"]["alerts"] == 1
    assert rules["us-pressure-on-cuba"]["severity"] == "medium"


def test_replay_requeues_a_failed_delivery(client: httpx.Client, seeded: Seeded) -> None:
    answer = client.post(f"/api/v1/alerts/{seeded.failed}/replay", json={"webhook": "ops"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"requeued": 1}
    deliveries = _get(client, f"/api/v1/alerts/{seeded.failed}/deliveries")["deliveries"]
    assert {d["webhook"]: d["state"] for d in deliveries} == {"ops": "pending", "chat": "delivered"}
    assert client.post("/api/v1/alerts/alrt_nope/replay").status_code == 404
    assert client.get(f"/api/v1/alerts/{seeded.failed}/replay").status_code == 405


def test_match_says_why_and_why_not(client: httpx.Client) -> None:
    answer = client.post(
        "/api/v1/match",
        json={"title": "Lavrov meets Cuban minister in Moscow", "rule": "russia-cuba-contacts"},
    )
    assert answer.status_code == 200, answer.text
    (verdict,) = answer.json()["verdicts"]
    assert verdict["matched"] is True
    assert {hit["text"] for hit in verdict["matches"]} >= {"Cuban", "Moscow"}
    missed = client.post(
        "/api/v1/match", json={"title": "Moscow weather", "rule": "us-pressure-on-cuba"}
    )
    (verdict,) = missed.json()["verdicts"]
    assert verdict["matched"] is False
    assert any(not clause["holds"] for clause in verdict["clauses"])


def test_match_a_stored_item_with_a_draft(client: httpx.Client, seeded: Seeded) -> None:
    lisbon = next(
        i for i in reads.recent_items(seeded.store.engine) if i.title.startswith("Weather")
    )
    answer = client.post("/api/v1/match", json={"item": lisbon.id, "draft": DRAFT})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["draft"] is True
    assert [v["rule"]["id"] for v in body["verdicts"]] == ["lisbon-weather"]
    assert body["verdicts"][0]["matched"] is True


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"title": "x", "rule": "no-such-rule"}, "no rule 'no-such-rule'"),
        ({"title": "x", "draft": "rules: [{id: Bad Id}]"}, "draft.yaml:1:"),
        ({"title": "x", "draft": "rules: [\n"}, "draft.yaml:"),
        ({"title": "", "summary": ""}, "paste a title"),
        ({"item": 999999}, "no stored item"),
    ],
)
def test_match_problems(client: httpx.Client, body: dict[str, object], expected: str) -> None:
    answer = client.post("/api/v1/match", json=body)
    assert answer.status_code == 422, answer.text
    assert any(expected in problem for problem in answer.json()["problems"])


def test_bodies_are_bounded_and_checked(client: httpx.Client) -> None:
    huge = client.post("/api/v1/match", content=b"{" + b" " * (MAX_BODY + 1) + b"}")
    assert huge.status_code == 413
    unknown = client.post("/api/v1/match", json={"titel": "typo"})
    assert unknown.status_code == 422
    assert "titel" in unknown.text


def test_backtest_a_draft_over_the_stored_week(client: httpx.Client) -> None:
    answer = client.post("/api/v1/backtest", json={"draft": DRAFT})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["items"] == 5
    (difference,) = body["differences"]
    assert difference["change"] == "new"
    assert difference["rule_id"] == "lisbon-weather"
    assert difference["item"]["title"] == "Weather in Lisbon"


def test_backtest_of_a_live_rule_changes_nothing(client: httpx.Client) -> None:
    body = client.post("/api/v1/backtest", json={"rule": "russia-cuba-contacts"}).json()
    assert body["differences"] == []
    assert body["still_alerting"] == 3


def test_openapi_document_is_valid_and_covers_every_route(client: httpx.Client) -> None:
    document = _get(client, "/api/v1/openapi.json")
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/alerts", "/alerts/{alert_id}", "/alerts/{alert_id}/deliveries",
        "/alerts/{alert_id}/replay", "/stories", "/stories/{story_id}", "/feeds", "/rules",
        "/match", "/backtest",
    }  # fmt: skip
    assert "AlertOut" in document["components"]["schemas"]
