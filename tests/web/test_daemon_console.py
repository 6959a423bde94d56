"""The console, the API and the Atom feed as the real daemon serves them: behind its token,
replays delivered by its dispatcher."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import feedparser
import httpx
import pytest

from tests.support import databases
from tests.web.daemon import READ_TOKEN, TOKEN, Daemon, running_daemon

# the first test of the module waits for the daemon to start (seconds on a busy machine)
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Daemon]:
    """One daemon for the module (it takes seconds to start); only the replay test changes
    what it serves, and only the delivery it replays. SQLite: the routes' own tests run over
    both backends."""
    folder = tmp_path_factory.mktemp("daemon")
    url = databases.copy_sqlite(sqlite_template, folder / "data" / "monitor.db")
    with running_daemon(folder, url) as running:
        yield running


def _client(daemon: Daemon, token: str | None = TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=daemon.url, headers=headers, timeout=30)


def test_everything_but_health_needs_the_token(daemon: Daemon) -> None:
    with _client(daemon, None) as anonymous:
        assert anonymous.get("api/v1/alerts").status_code == 401
        assert anonymous.get("alerts.atom").status_code == 401
        page = anonymous.get("")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login")
        assert anonymous.get("healthz").status_code == 200
    with _client(daemon, "wrong-token-" + "x" * 20) as wrong:
        assert wrong.get("api/v1/alerts").status_code == 401


def test_api_console_and_atom_with_the_token(daemon: Daemon) -> None:
    with _client(daemon) as client:
        alerts = client.get("api/v1/alerts").json()["alerts"]
        assert len(alerts) == len(daemon.seeded.alert_ids)
        assert client.get("api/v1/openapi.json").json()["openapi"] == "3.1.0"
        page = client.get("")
        assert page.status_code == 200
        assert "Russian delegation arrives in Havana" in re.sub(r"<[^>]+>", "", page.text)
        assert "hunter2" not in page.text
    atom = httpx.get(f"{daemon.url}alerts.atom", auth=("reader", READ_TOKEN), timeout=30)
    assert atom.status_code == 200
    parsed = feedparser.parse(atom.content)
    assert parsed.bozo == 0
    assert len(parsed.entries) == len(daemon.seeded.alert_ids)


def test_a_read_only_token_sees_no_replay_button(daemon: Daemon) -> None:
    with _client(daemon, READ_TOKEN) as reader:
        page = reader.get(f"stories/{daemon.seeded.failed}")
        assert page.status_code == 200
        assert "<td>ops</td>" in page.text
        assert "Replay</button>" not in page.text
    with _client(daemon) as writer:
        assert "Replay</button>" in writer.get(f"stories/{daemon.seeded.failed}").text


def test_replay_over_the_api_is_delivered_by_the_daemon(daemon: Daemon) -> None:
    failed = daemon.seeded.failed
    with _client(daemon, READ_TOKEN) as reader:
        refused = reader.post(f"api/v1/alerts/{failed}/replay", json={"webhook": "ops"})
        assert refused.status_code == 403
        tried = reader.post("api/v1/match", json={"title": "Cuba and Russia sign a deal"})
        assert tried.status_code == 200  # the playground writes nothing: a reader may use it
    with _client(daemon) as client:
        answer = client.post(f"api/v1/alerts/{failed}/replay", json={"webhook": "ops"})
        assert answer.json() == {"requeued": 1}
        assert daemon.delivered(failed)
