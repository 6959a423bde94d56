"""docker-compose.yml and the Dockerfile, checked offline (no Docker engine runs here)."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import yaml

from tests.conftest import REPO, SHARED

COMPOSE_SCHEMA = SHARED / "schemas" / "compose-spec.json"


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
    assert {"/app/config", "/app/data"} <= targets
    assert service["command"][:1] == ["run"]


def test_dockerfile_runs_as_a_non_root_user() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users, "the Dockerfile never switches user"
    assert users[-1] not in ("root", "0")
    assert re.search(r"useradd\b.*\bmonitor\b", dockerfile)
