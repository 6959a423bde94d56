"""The image built and run the way docker-compose.yml wires it, on a real Docker engine.

Compose itself does not run here (Debian has only Compose v1, which lacks `required:` in
depends_on), so the test reads docker-compose.yml and gives `docker run` what Compose would give
each service: the environment, the mounts (the config folder swapped for one whose feed is this
test's server), the health check, the stop signal and grace, `init`, the published port, one
network with the service names as host names. A change to the compose file changes the test.

The feed is a real HTTP server on the host, on the network's gateway address. The test shows an
alert crossing to `monitor sink` with a verified signature, `monitor health` turning the
container healthy, SIGTERM stopping the daemon within the compose grace with exit 0, and the
`data` volume carrying the state into a new container without a second alert.

Skipped where no engine answers `docker info` or no base image can be had;
MONITOR_REQUIRE_CONTAINERS=1 (CI) makes that a failure. MONITOR_CONTAINER_BASE picks the base
(default monitor-base:bookworm, made by scripts/container-base; python:3.11-slim where a registry
is reachable). With MONITOR_CONTAINER_FIGURES=FILE the build time, image size and scenario time
are written there (scripts/container-test prints them).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.containers import compose
from tests.containers.engine import (
    REPO,
    Logs,
    docker,
    engine_problem,
    ensure_base,
    eventually,
    pip_index,
)
from tests.support.pipeline import serve_feed
from tests.support.servers import LocalServer

pytestmark = [pytest.mark.containers, pytest.mark.timeout(1200)]

BASE = os.environ.get("MONITOR_CONTAINER_BASE", "monitor-base:bookworm")
TAG = "monitor:container-test"
WAIT = 180.0  # seconds any one awaited event may take on a loaded machine
FIRST = "Russian warships arrive in Havana for a five-day port call"
LATER = "Russian Interior Minister Kolokoltsev holds talks in Havana with Cuban counterpart"


def _unavailable(reason: str) -> None:
    if os.environ.get("MONITOR_REQUIRE_CONTAINERS") == "1":
        pytest.fail(f"MONITOR_REQUIRE_CONTAINERS=1, but {reason}")
    pytest.skip(reason)


@dataclass
class Figures:
    base: str
    base_seconds: float = 0.0
    build_seconds: float = 0.0
    image_bytes: int = 0
    scenario_seconds: float = 0.0

    def report(self) -> str:
        return (
            f"container test: base {self.base} ready in {self.base_seconds:.0f}s, image {TAG} "
            f"built in {self.build_seconds:.0f}s, {self.image_bytes / 1e6:.0f} MB; "
            f"scenario {self.scenario_seconds:.0f}s"
        )


@pytest.fixture(scope="module")
def image() -> Figures:
    problem = engine_problem()
    if problem:
        _unavailable(problem)
    figures = Figures(BASE)
    started = time.monotonic()
    problem = ensure_base(BASE)
    if problem:
        _unavailable(f"no base image {BASE}: {problem}")
    figures.base_seconds = time.monotonic() - started
    build = ["build", "--build-arg", f"BASE_IMAGE={BASE}", "--tag", TAG]
    if pip_index():
        build += ["--build-arg", f"PIP_INDEX_URL={pip_index()}"]
    started = time.monotonic()
    docker(*build, str(REPO), timeout=900)
    figures.build_seconds = time.monotonic() - started
    figures.image_bytes = int(docker("image", "inspect", "--format", "{{.Size}}", TAG).stdout)
    return figures


def _feed(*items: tuple[str, str]) -> bytes:
    entries = "".join(
        f"<item><title>{title}</title><guid isPermaLink='false'>{guid}</guid>"
        f"<link>https://wire.example.org/{guid}</link>"
        f"<pubDate>{time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime())}</pubDate>"
        f"<description>{title}.</description></item>"
        for guid, title in items
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>Test Wire</title><link>https://wire.example.org/</link>{entries}</channel></rss>"
    ).encode()


@dataclass(frozen=True)
class Received:
    alert_id: str
    title: str


def received(lines: list[str]) -> list[Received]:
    """The alerts `monitor sink` printed after verifying their signature: `HH:MM:SS signature
    ok`, then `[SEVERITY] rule  score N  ALERT-ID`, then the title."""
    found = []
    for n, line in enumerate(lines[:-2]):
        if line.endswith(" signature ok") and lines[n + 1].startswith("["):
            found.append(Received(lines[n + 1].split()[-1], lines[n + 2].strip()))
    return found


@dataclass
class Stack:
    """The compose file's services as containers on one network of their own."""

    model: dict[str, Any]
    mounts: compose.Mounts
    network: str
    token: str
    started: list[str] = field(default_factory=list)
    logs: list[Logs] = field(default_factory=list)

    def name(self, service: str) -> str:
        return f"monitor-test-{self.token}-{service}"

    def run(self, service: str) -> Logs:
        spec = self.model["services"][service]
        options = compose.run_options(
            spec,
            mounts=self.mounts,
            # the first probe comes one interval after the start: compose's 30s would only
            # make the test wait; the command, timeout, retries and start period are compose's
            health_interval=timedelta(seconds=1),
            publish=_any_host_port,
        )
        name = self.name(service)
        image = TAG if "build" in spec else spec["image"]
        docker(
            "run", "--detach", "--name", name, "--network", self.network,
            "--network-alias", service, *options, image, *spec.get("command", []),
        )  # fmt: skip
        self.started.append(name)
        logs = Logs(name)
        self.logs.append(logs)
        return logs

    def inspect(self, service: str, template: str) -> str:
        return docker("inspect", "--format", template, self.name(service)).stdout.strip()

    def exec(self, service: str, *command: str) -> str:
        return docker("exec", self.name(service), *command).stdout

    def close(self) -> None:
        for logs in self.logs:
            logs.close()
        for name in self.started:
            docker("rm", "--force", "--volumes", name, check=False)
        docker("network", "rm", self.network, check=False)
        for volume in self.mounts.volumes.values():
            docker("volume", "rm", volume, check=False)


def _any_host_port(port: str) -> str:
    """`127.0.0.1:9108:9108` published on a free port of the same host address instead."""
    *host, _published, target = port.split(":")
    return ":".join([*host, "", target])


def _config_dir(tmp_path: Path, feed_url: str, compose_dir: Path) -> Path:
    """The compose config with the test's feed polled every second; readable by the image's
    user (tmp_path is private to root)."""
    document = yaml.safe_load((compose_dir / "monitor.yaml").read_text(encoding="utf-8"))
    document["feeds"] = [{"url": feed_url, "name": "Test Wire"}]
    document["defaults"]["interval"] = "1s"
    directory = tmp_path / "config"
    directory.mkdir()
    (directory / "monitor.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    readable = stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    for path in (tmp_path, directory):
        path.chmod(readable)
    (directory / "monitor.yaml").chmod(0o644)
    return directory


@pytest.fixture
def stack(tmp_path: Path, image: Figures) -> Iterator[Stack]:
    document = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    model = compose.model(document, frozenset(), {})  # `docker compose up`: no profile
    assert model.problems == []
    token = secrets.token_hex(4)
    network = f"monitor-test-{token}"
    docker("network", "create", network)
    volumes = {name: f"{network}-{name}" for name in model.document.get("volumes", {})}
    for volume in volumes.values():
        docker("volume", "create", volume)
    mounts = compose.Mounts(binds={}, volumes=volumes)
    built = Stack(model.document, mounts, network, token)
    yield built
    built.close()


def _binds(model: dict[str, Any], config: Path) -> dict[str, Path]:
    """The compose file's bind sources: the repository's folders, but the config folder (the
    one holding monitor.yaml) is the test's."""
    sources = {
        volume.split(":")[0]
        for spec in model["services"].values()
        for volume in spec.get("volumes") or []
        if volume.startswith(".")
    }
    return {s: config if (REPO / s / "monitor.yaml").is_file() else REPO / s for s in sources}


def _alerts(stack: Stack) -> list[dict[str, Any]]:
    text = stack.exec("monitor", "monitor", "alerts", "--json", "--config", "/app/config")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _all_delivered(stack: Stack, titles: set[str]) -> list[dict[str, Any]] | None:
    rows = _alerts(stack)
    states = [d["state"] for r in rows for d in r["deliveries"]]  # one object per alert
    done = {r["title"] for r in rows} >= titles and all(s == "delivered" for s in states)
    return rows if done else None


def _healthy(stack: Stack) -> str | None:
    status = stack.inspect("monitor", "{{.State.Health.Status}}")
    assert status != "unhealthy", stack.inspect("monitor", "{{json .State.Health.Log}}")
    return status if status == "healthy" else None


def _stop(stack: Stack, logs: Logs) -> None:
    """`docker stop`, as Compose stops a service: its stop signal, then SIGKILL after its grace
    (exit 137). Exit 0 says the daemon finished within the grace."""
    grace = compose.seconds(stack.model["services"]["monitor"]["stop_grace_period"])
    docker("stop", stack.name("monitor"), timeout=grace + 30)
    assert stack.inspect("monitor", "{{.State.ExitCode}}") == "0", logs.text
    assert logs.wait_for(lambda lines: any(line.endswith("stopped") for line in lines), WAIT)


def test_an_alert_crosses_from_the_daemon_container_to_the_sink_and_state_survives(
    stack: Stack, image: Figures, tmp_path: Path
) -> None:
    started = time.monotonic()
    gateway = docker(
        "network", "inspect", "--format", "{{(index .IPAM.Config 0).Gateway}}", stack.network
    ).stdout.strip()
    server = LocalServer(poll_interval=0.05, host=gateway)
    try:
        serve_feed(server, "/feed.xml", _feed(("wire-1", FIRST)))
        config = _config_dir(tmp_path, server.url("/feed.xml"), REPO / "deploy" / "compose")
        stack.mounts = compose.Mounts(_binds(stack.model, config), stack.mounts.volumes)
        assert docker("run", "--rm", TAG, "check", "--config", "/app/config").returncode == 0

        image_check = docker("image", "inspect", "--format", "{{json .Config.Healthcheck}}", TAG)
        daemon_check = stack.model["services"]["monitor"]["healthcheck"]
        assert json.loads(image_check.stdout)["Test"] == daemon_check["test"]  # run_options
        logs = {service: stack.run(service) for service in compose.start_order(stack.model)}
        sink, daemon = logs["sink"], logs["monitor"]
        assert sink.wait_for(lambda lines: any(r.title == FIRST for r in received(lines)), WAIT), (
            f"sink:\n{sink.text}\ndaemon:\n{daemon.text}"
        )
        first = eventually("first alerts delivered", lambda: _all_delivered(stack, {FIRST}), WAIT)
        _refuses_a_forged_delivery(stack, sink)
        assert eventually("the daemon healthy", lambda: _healthy(stack), WAIT) == "healthy"
        assert stack.exec("monitor", "id", "-u").strip() == "10001"  # the image's user
        _serves_metrics_on_the_published_port(stack)
        _stop(stack, daemon)

        # a new container on the same volume, as `docker compose up` after a change would make
        serve_feed(server, "/feed.xml", _feed(("wire-2", LATER), ("wire-1", FIRST)))
        docker("rm", "--volumes", stack.name("monitor"))  # named volumes stay
        daemon = stack.run("monitor")
        assert sink.wait_for(lambda lines: any(r.title == LATER for r in received(lines)), WAIT), (
            f"sink:\n{sink.text}\ndaemon:\n{daemon.text}"
        )
        rows = eventually("later alerts delivered", lambda: _all_delivered(stack, {LATER}), WAIT)
        _stop(stack, daemon)
        docker("stop", stack.name("sink"), timeout=60)
        assert stack.inspect("sink", "{{.State.ExitCode}}") != "137"  # not killed after the grace
    finally:
        server.close()

    before = {r["alert_id"] for r in first}
    assert {r["alert_id"] for r in rows if r["title"] == FIRST} == before  # kept, not made again
    alerts = received(sink.lines)
    assert {a.alert_id for a in alerts if a.title == FIRST} == before
    assert len(alerts) == len({a.alert_id for a in alerts}) == len(rows)
    assert not any("duplicate" in line for line in sink.lines)
    image.scenario_seconds = time.monotonic() - started
    _report(image)


def _refuses_a_forged_delivery(stack: Stack, sink: Logs) -> None:
    """The sink's "signature ok" means something: a wrong signature gets 401."""
    address = stack.inspect("sink", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
    (port,) = stack.model["services"]["sink"]["expose"]
    answer = httpx.post(
        f"http://{address}:{port}/hook",
        content=b"{}",
        headers={
            "webhook-id": "msg_forged",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1,bm90IGEgc2lnbmF0dXJl",
        },
        timeout=30,
    )
    assert answer.status_code == 401
    assert sink.wait_for(lambda lines: any("REFUSED msg_forged" in s for s in lines), WAIT)


def _serves_metrics_on_the_published_port(stack: Stack) -> None:
    (port,) = stack.model["services"]["monitor"]["ports"]
    target = port.rsplit(":", 1)[1]
    published = docker("port", stack.name("monitor"), f"{target}/tcp").stdout.split()[0]
    assert published.startswith("127.0.0.1:")  # loopback only, as in the compose file
    answer = httpx.get(f"http://{published}/metrics", timeout=30)
    assert answer.status_code == 200
    assert "# TYPE" in answer.text


def _report(figures: Figures) -> None:
    print(figures.report())
    target = os.environ.get("MONITOR_CONTAINER_FIGURES")
    if target:
        with Path(target).open("a", encoding="utf-8") as out:
            out.write(figures.report() + "\n")
