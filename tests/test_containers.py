"""docker-compose.yml, the Dockerfile and constraints.txt, checked offline.

tests/containers/test_stack.py builds the image and runs it where a Docker engine answers.
"""

from __future__ import annotations

import itertools
import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from packaging.utils import canonicalize_name

from monitor.cli.run import health_url
from monitor.config.settings import load_config
from tests.conftest import REPO, SHARED
from tests.containers import compose, lock

COMPOSE_SCHEMA = SHARED / "schemas" / "compose-spec.json"
COMPOSE_CONFIG = REPO / "deploy" / "compose"


DOCUMENTED = [  # where users are told which `docker compose` to type
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "docker-compose.yml",
]


def _schema() -> dict[str, Any]:
    if not COMPOSE_SCHEMA.is_file():
        pytest.skip(f"{COMPOSE_SCHEMA} is absent (it sits beside the repository, not in it)")
    schema: dict[str, Any] = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    return schema


def test_compose_file_validates_against_the_compose_specification() -> None:
    document = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator(_schema()).validate(document)  # raises naming the first violation


def _documented() -> list[compose.Invocation]:
    return [i for path in DOCUMENTED for i in compose.invocations(path, REPO)]


def test_the_docs_show_the_compose_profiles_users_are_offered() -> None:
    offered = {i.profiles for i in _documented()}
    assert {
        frozenset(),
        frozenset({"postgresql"}),
        frozenset({"postgresql", "replicas"}),
        frozenset({"replicas"}),  # replicas on your own database
    } <= offered


@pytest.mark.parametrize("invocation", _documented(), ids=lambda i: i.where)
def test_every_documented_compose_invocation_is_a_valid_model(
    invocation: compose.Invocation,
) -> None:
    document = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    model = compose.model(document, invocation.profiles, invocation.environ)
    assert model.problems == [], invocation.text
    jsonschema.Draft7Validator(_schema()).validate(model.document)
    services = model.document["services"]
    absent = [name for name in invocation.services if name not in services]
    assert absent == [], f"{invocation.text!r} names services its profiles leave out"
    daemons = {n: s for n, s in services.items() if s.get("command", [""])[0] == "run"}
    stores = {n: s["environment"]["MONITOR_STORAGE"] for n, s in daemons.items()}
    assert len(set(stores.values())) == 1, f"daemons on different stores: {stores}"


def test_the_profile_rule_refuses_a_required_dependency_on_a_disabled_service() -> None:
    document: dict[str, Any] = {
        "services": {
            "app": {"image": "x", "depends_on": {"db": {"condition": "service_healthy"}}},
            "cache": {"image": "x", "depends_on": ["db"]},
            "extra": {"image": "x", "profiles": ["more"], "depends_on": ["app"]},
            "db": {"image": "x", "profiles": ["db"]},
        }
    }
    plain = compose.model(document, frozenset(), {})
    assert plain.problems == [
        "service 'app' depends on 'db', which is disabled by the profiles",
        "service 'cache' depends on 'db', which is disabled by the profiles",
    ]
    assert set(plain.document["services"]) == {"app", "cache"}
    assert compose.model(document, frozenset({"db", "more"}), {}).problems == []
    document["services"]["app"]["depends_on"]["db"]["required"] = False
    optional = compose.model(document, frozenset(), {})
    assert optional.problems == [
        "service 'cache' depends on 'db', which is disabled by the profiles"
    ]
    assert optional.document["services"]["app"]["depends_on"] == {}


def test_services_start_after_what_they_depend_on() -> None:
    model = compose.model(_compose(), frozenset({"postgresql", "replicas"}), {})
    order = compose.start_order(model.document)
    assert order.index("sink") < order.index("monitor")
    assert order.index("postgres") < order.index("replica")
    with pytest.raises(ValueError, match="cycle: a -> b -> a"):
        compose.start_order({"services": {"a": {"depends_on": ["b"]}, "b": {"depends_on": ["a"]}}})


def test_run_options_give_a_container_what_compose_gives_the_service() -> None:
    model = compose.model(_compose(), frozenset(), {"MONITOR_SINK_SECRET": "whsec_c2VjcmV0"})
    daemon = model.document["services"]["monitor"]
    mounts = compose.Mounts(
        binds={"./deploy/compose": Path("/c"), "./config/rules": Path("/r")},
        volumes={"data": "vol"},
    )
    options = compose.run_options(daemon, mounts=mounts, publish=lambda port: f"<{port}>")
    pairs = list(itertools.pairwise(options))
    assert ("--volume", "/c:/app/config:ro") in pairs
    assert ("--volume", "vol:/app/data") in pairs
    assert ("--env", "MONITOR_SINK_SECRET=whsec_c2VjcmV0") in pairs
    assert ("--publish", "<127.0.0.1:9108:9108>") in pairs
    assert ("--stop-timeout", "30") in pairs
    assert "--health-interval=30.0s" in options
    sink = model.document["services"]["sink"]
    assert "--init" in compose.run_options(sink, mounts=mounts)
    with pytest.raises(ValueError, match=r"\['read_only'\]: teach it"):
        compose.run_options({**daemon, "read_only": True}, mounts=mounts)


def test_compose_interpolation_and_durations_read_as_compose_reads_them() -> None:
    text = "${A:-x} ${B-y} ${C} $$D ${E:-}"
    assert compose.interpolate(text, {"A": "", "B": ""}) == "x   $D "
    assert compose.interpolate({"k": [text]}, {"A": "a", "C": "c"}) == {"k": ["a y c $D "]}
    assert compose.seconds("1m30s") == 90
    assert compose.seconds("500ms") == 0.5
    with pytest.raises(ValueError, match="not a Compose duration"):
        compose.seconds("30 s")


def test_documented_commands_are_read_with_their_profiles_and_environment() -> None:
    command = compose.parse(
        "x:1", "A=1 COMPOSE_PROFILES=p,q docker compose --profile r up -d --scale s=4 t  # note"
    )
    assert command.environ == {"A": "1", "COMPOSE_PROFILES": "p,q"}
    assert command.profiles == {"p", "q", "r"}
    assert command.services == ["s", "t"]
    assert compose.parse("x:2", "docker compose exec monitor monitor status").services == [
        "monitor"
    ]


def test_constraints_pin_every_runtime_dependency_of_pyproject() -> None:
    """constraints.txt (scripts/lock) pins, with ==, each dependency the image installs and
    what those need in turn, within pyproject's bounds."""
    pins, bad = lock.read_pins(lock.CONSTRAINTS.read_text(encoding="utf-8"))
    assert bad == [], "constraints.txt lines that are not `name==version`"
    problems = []
    for requirement in lock.runtime_requirements():
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None:
            problems.append(f"{requirement} has no pin: run scripts/lock")
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{requirement} is pinned to {pin.version}: run scripts/lock")
    assert not problems, "constraints.txt: " + "; ".join(problems)
    try:
        needed = lock.closure(lock.runtime_requirements())
    except metadata.PackageNotFoundError as exc:
        pytest.skip(f"this environment lacks {exc.name}: pip install -e '.[test]' first")
    unpinned = sorted(set(needed) - set(pins))
    assert unpinned == [], "needed by the image, not pinned in constraints.txt: run scripts/lock"


def test_the_dockerfile_installs_with_the_constraints_and_checks_health() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^COPY .*\bconstraints\.txt\b", dockerfile, flags=re.MULTILINE)
    assert re.search(r"pip install .*-c constraints\.txt", dockerfile)
    health = re.search(r"^HEALTHCHECK ([^\n]*\\\n)*\s*CMD (\[[^\n]*\])$", dockerfile, flags=re.M)
    assert health, "no HEALTHCHECK ... CMD [...] in the Dockerfile"
    daemon = _compose()["services"]["monitor"]
    assert ["CMD", *json.loads(health[2])] == daemon["healthcheck"]["test"]  # the same check
    assert "constraints.txt" not in (REPO / ".dockerignore").read_text(encoding="utf-8")


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
