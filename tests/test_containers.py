"""docker-compose.yml and the Dockerfile, checked offline (no Docker engine runs here)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from monitor.cli.run import health_url
from monitor.config.settings import load_config
from tests.conftest import REPO, SHARED

COMPOSE_SCHEMA = SHARED / "schemas" / "compose-spec.json"
COMPOSE_CONFIG = REPO / "deploy" / "compose"


def test_compose_file_validates_against_the_compose_specification() -> None:
    if not COMPOSE_SCHEMA.is_file():
        pytest.skip(f"{COMPOSE_SCHEMA} is absent (it sits beside the repository, not in it)")
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator(schema).validate(compose)  # raises naming the first violation


def test_compose_mounts_config_and_data_and_runs_the_daemon() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    service = compose["services"]["monitor"]
    targets = {volume.split(":")[1] for volume in service["volumes"]}
    assert {"/app/config", "/app/rules", "/app/data"} <= targets
    assert service["command"][:1] == ["run"]


def test_dockerfile_runs_as_a_non_root_user() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users, "the Dockerfile never switches user"
    assert users[-1] not in ("root", "0")
    assert re.search(r"useradd\b.*\bmonitor\b", dockerfile)


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(
        (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    )
    return document


def test_compose_wires_the_sink_as_the_daemons_webhook_and_checks_health() -> None:
    services = _compose()["services"]
    daemon, sink = services["monitor"], services["sink"]
    assert daemon["healthcheck"]["test"][1:3] == ["monitor", "health"]
    assert sink["command"][0] == "sink"
    port = next(arg.split("=", 1)[1] for arg in sink["command"] if arg.startswith("--port="))
    config = yaml.safe_load((COMPOSE_CONFIG / "monitor.yaml").read_text(encoding="utf-8"))
    (hook,) = config["webhooks"]
    assert hook["url"] == f"http://sink:{port}/hook"
    secret = next(arg for arg in sink["command"] if arg.startswith("--secret="))
    assert daemon["environment"]["MONITOR_SINK_SECRET"] in secret  # the same default secret
    assert "sink" in daemon["depends_on"]
    assert daemon["ports"] == ["127.0.0.1:9108:9108"]  # metrics published on loopback only


def test_compose_keeps_postgresql_under_a_profile() -> None:
    services = _compose()["services"]
    assert services["postgres"]["profiles"] == ["postgresql"]
    assert services["monitor"]["depends_on"]["postgres"]["required"] is False
    assert "profiles" not in services["monitor"]


def test_the_compose_config_validates_and_polls_the_shipped_feeds(tmp_path: Path) -> None:
    document = yaml.safe_load((COMPOSE_CONFIG / "monitor.yaml").read_text(encoding="utf-8"))
    assert document["rules"] == "/app/rules"  # config/rules, mounted there
    document["rules"] = str(REPO / "config" / "rules")
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    secret = "whsec_ZGVtby1zZWNyZXQtY2hhbmdlLW1lLXBsZWFzZQ=="
    config = load_config(tmp_path, environ={"MONITOR_SINK_SECRET": secret})
    shipped = load_config(REPO / "config", environ={})
    assert config.settings.feeds == shipped.settings.feeds
    assert config.settings.http is not None
    assert config.settings.http.listen == "0.0.0.0:9108"


def test_monitor_health_asks_loopback_when_the_daemon_listens_everywhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MONITOR_HTTP", raising=False)
    assert health_url(COMPOSE_CONFIG) == ("http://127.0.0.1:9108/healthz", "")
    assert health_url(REPO / "config") == ("http://127.0.0.1:9108/healthz", "")
    monkeypatch.setenv("MONITOR_HTTP", "0.0.0.0:9200")
    assert health_url(REPO / "config") == ("http://127.0.0.1:9200/healthz", "")
    monkeypatch.delenv("MONITOR_HTTP")
    (tmp_path / "monitor.yaml").write_text("http: {listen: '[::]:9300', token: x}\n")
    assert health_url(tmp_path) == ("http://127.0.0.1:9300/healthz", "")
    (tmp_path / "monitor.yaml").write_text("version: 1\n")
    url, problem = health_url(tmp_path)
    assert url is None
    assert "no `http:` key" in problem
