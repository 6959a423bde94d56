"""docker-compose.yml as Compose would read it, for tests that cannot run Compose itself.

- `model(document, profiles, environ)`: the file interpolated (`${VAR}`, `${VAR:-default}`,
  `${VAR-default}`, `$$`) with the services that the active profiles leave out removed, and the
  dependencies that makes impossible (Compose's profile rule: a service without `profiles` is
  always enabled, one with profiles only when one of them is active; an enabled service may not
  depend on a disabled one unless the dependency says `required: false`).
- `invocations(path)`: the `docker compose` commands a README, doc or the compose file's own
  comments tell users to type, with the profiles and environment each sets.
- `run_options(service, ...)`: the `docker run` options that give a container what Compose
  gives that service: environment, mounts, health check, stop signal and grace, restart policy.
"""

from __future__ import annotations

import copy
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\})"
)
_DURATION = re.compile(r"(?P<value>\d+(?:\.\d+)?)(?P<unit>us|ms|s|m|h)")
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_CODE_SPAN = re.compile(r"`([^`]*docker compose[^`]*)`")
# what run_options turns into `docker run` options, or the caller honours (the image it runs, the
# command, the order that depends_on gives, one container of each service)
_UNDERSTOOD = {
    "build", "image", "command", "depends_on", "profiles", "deploy", "environment", "volumes",
    "ports", "expose", "healthcheck", "stop_signal", "stop_grace_period", "init", "restart",
}  # fmt: skip
_OPTIONS_WITH_VALUES = {"--profile", "-f", "--file", "-p", "--project-name", "--env-file"}
_COMMAND_OPTIONS_WITH_VALUES = {"--scale", "--timeout", "-t", "--wait-timeout", "-u", "--user"}


def interpolate(value: Any, environ: Mapping[str, str]) -> Any:
    """`value` with variables substituted in every string, as Compose does before parsing."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            if match["escaped"]:
                return "$"
            current = environ.get(match["name"])
            if match["op"] == ":-" and not current:
                return match["default"]
            if match["op"] == "-" and current is None:
                return match["default"]
            return current or ""

        return _VARIABLE.sub(substitute, value)
    if isinstance(value, dict):
        return {key: interpolate(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environ) for item in value]
    return value


def dependencies(service: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """`depends_on` in its long form (the short form's entries are required, service_started)."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: {"condition": "service_started", "required": True} for name in raw}
    return {name: {"required": True, **spec} for name, spec in raw.items()}


def enabled(service: Mapping[str, Any], profiles: frozenset[str]) -> bool:
    listed = service.get("profiles")
    return not listed or bool(profiles & set(listed))


@dataclass(frozen=True)
class Model:
    document: dict[str, Any]  # the file as Compose runs it: interpolated, disabled services gone
    problems: list[str]  # why Compose would refuse it


def model(
    document: Mapping[str, Any], profiles: frozenset[str], environ: Mapping[str, str]
) -> Model:
    resolved: dict[str, Any] = interpolate(copy.deepcopy(dict(document)), environ)
    services: dict[str, Any] = resolved.get("services", {})
    kept = {name: spec for name, spec in services.items() if enabled(spec, profiles)}
    problems = []
    for name, spec in kept.items():
        needed = dependencies(spec)
        for target, dependency in needed.items():
            if target not in kept and dependency["required"] is not False:
                why = "is not defined" if target not in services else "is disabled by the profiles"
                problems.append(f"service {name!r} depends on {target!r}, which {why}")
        if "depends_on" in spec:  # Compose ignores an optional dependency that is absent
            spec["depends_on"] = {t: d for t, d in needed.items() if t in kept}
    resolved["services"] = kept
    return Model(resolved, problems)


def start_order(document: Mapping[str, Any]) -> list[str]:
    """A model's services, each after those it depends on (the order Compose starts them in)."""
    services = document["services"]
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise ValueError(f"depends_on cycle: {' -> '.join((*path, name))}")
        if name not in order:
            for target in dependencies(services[name]):
                visit(target, (*path, name))
            order.append(name)

    for name in services:
        visit(name, ())
    return order


@dataclass(frozen=True)
class Invocation:
    where: str  # file:line
    text: str
    environ: dict[str, str]
    profiles: frozenset[str]
    services: list[str] = field(default_factory=list)  # the services the command names


def _commands(path: Path) -> list[tuple[int, str]]:
    """(line, command) for every `docker compose` command in a Markdown file's code or in the
    comments of a YAML file, with backslash continuations joined."""
    text = path.read_text(encoding="utf-8")
    fenced, prose, in_fence = [], [], False
    for line in text.splitlines():
        if path.suffix in (".yml", ".yaml"):  # comments: indented ones are examples, as code
            comment = line.lstrip().startswith("#")
            example = comment and line.lstrip().startswith("#   ")
            fenced.append(line.lstrip()[1:] if example else "")
            prose.append(line.lstrip()[1:] if comment and not example else "")
            continue
        fence = line.lstrip().startswith("```")
        in_fence ^= fence
        inside = in_fence and not fence
        fenced.append(line if inside else "")
        prose.append("" if inside or fence else line)
    found = _joined(fenced)
    text = "\n".join(prose)
    for match in _CODE_SPAN.finditer(text):
        found.append((text.count("\n", 0, match.start()) + 1, " ".join(match[1].split())))
    return sorted(found)


def _joined(lines: list[str]) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    start, pending = 0, ""
    for number, line in enumerate(lines, start=1):
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command, pending = pending + line, ""
        if "docker compose" in command:
            found.append((start, " ".join(command.split())))
    return found


def parse(where: str, text: str) -> Invocation:
    words = shlex.split(text, comments=True)
    environ: dict[str, str] = {}
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        environ[name] = value
    if words[:2] != ["docker", "compose"]:
        raise ValueError(f"{where}: not a `docker compose` command: {text!r}")
    words = words[2:]
    profiles = {p for p in environ.get("COMPOSE_PROFILES", "").split(",") if p}
    while words and words[0].startswith("-"):
        option = words.pop(0)
        value = words.pop(0) if option in _OPTIONS_WITH_VALUES and words else ""
        if option == "--profile":
            profiles.add(value)
    return Invocation(where, text, environ, frozenset(profiles), _named_services(words))


def _named_services(words: list[str]) -> list[str]:
    """The services a subcommand's arguments name (`logs -f sink`, `exec monitor CMD`,
    `up --scale replica=4`)."""
    if not words:
        return []
    subcommand, rest = words[0], words[1:]
    named: list[str] = []
    while rest:
        word = rest.pop(0)
        if word in _COMMAND_OPTIONS_WITH_VALUES and rest:
            value = rest.pop(0)
            if word == "--scale":
                named.append(value.split("=", 1)[0])
        elif not word.startswith("-"):
            named.append(word)
            if subcommand in ("exec", "run"):
                break  # the rest is the command run in the container
    return named


def invocations(path: Path, root: Path) -> list[Invocation]:
    return [parse(f"{path.relative_to(root)}:{line}", text) for line, text in _commands(path)]


def seconds(duration: str) -> float:
    """A Compose duration (`1m30s`, `10s`, `500ms`) in seconds."""
    parts = list(_DURATION.finditer(duration))
    if not parts or "".join(p[0] for p in parts) != duration:
        raise ValueError(f"not a Compose duration: {duration!r}")
    return sum(float(p["value"]) * _UNITS[p["unit"]] for p in parts)


@dataclass(frozen=True)
class Mounts:
    """Where each of a service's volumes comes from in a test: bind sources by the path written
    in the compose file, named volumes by their name."""

    binds: Mapping[str, Path]
    volumes: Mapping[str, str]


def run_options(
    service: Mapping[str, Any],
    *,
    mounts: Mounts,
    health_interval: timedelta | None = None,
    publish: Callable[[str], str] = lambda port: port,
) -> list[str]:
    """`docker run` options for `service` of an interpolated model.

    The health check's command is the image's own when the compose file's is the same (the
    caller checks that): `docker run --health-cmd` can only give a shell command, where Compose
    and the Dockerfile give an exec one. `health_interval` replaces the interval (the first
    probe waits that long); `publish` maps a `ports:` entry (to a free host port, say).
    """
    unknown = sorted(set(service) - _UNDERSTOOD)
    if unknown:  # a test that ignored them would run something else than Compose runs
        raise ValueError(f"run_options does not give a container {unknown}: teach it")
    options = _volume_options(service, mounts)
    for name, value in (service.get("environment") or {}).items():
        options += ["--env", f"{name}={value}"]
    for port in service.get("ports") or []:
        options += ["--publish", publish(str(port))]
    for port in service.get("expose") or []:
        options += ["--expose", str(port)]
    health = service.get("healthcheck")
    if health:
        options += _health_options(health, health_interval)
    if "stop_signal" in service:
        options += ["--stop-signal", service["stop_signal"]]
    if "stop_grace_period" in service:
        options += ["--stop-timeout", str(round(seconds(service["stop_grace_period"])))]
    if service.get("init"):
        options.append("--init")
    if "restart" in service:
        options += ["--restart", service["restart"]]
    return options


def _volume_options(service: Mapping[str, Any], mounts: Mounts) -> list[str]:
    options: list[str] = []
    for volume in service.get("volumes") or []:
        source, target, *mode = volume.split(":")
        if source in mounts.volumes:
            options += ["--volume", ":".join([mounts.volumes[source], target, *mode])]
        else:
            options += ["--volume", ":".join([str(mounts.binds[source]), target, *mode])]
    return options


def _health_options(health: Mapping[str, Any], interval: timedelta | None) -> list[str]:
    every = interval.total_seconds() if interval else seconds(health["interval"])
    return [
        f"--health-interval={every}s",
        f"--health-timeout={seconds(health['timeout'])}s",
        f"--health-retries={health['retries']}",
        f"--health-start-period={seconds(health['start_period'])}s",
    ]
