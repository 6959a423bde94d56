"""Shell completion through the real parser: commands, options, and the config's rule ids and
webhook names; and the shell code `monitor completion` prints, run by a real bash."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.cli.main import build_parser
from tests.conftest import run_cli
from tests.support.pipeline import write_config

IFS = "\013"  # argcomplete's separator between completions


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The test rules (russia-cuba-contacts, us-pressure-on-cuba) and two webhooks."""
    hooks = [
        {"name": "analysts", "url": "https://hooks.example.org/a", "secret": "${A_SECRET}"},
        {"name": "ops-slack", "url": "https://hooks.example.org/b", "format": "slack"},
    ]
    return write_config(tmp_path / "config", feeds=[], webhooks=hooks)


def complete(line: str, cwd: Path) -> list[str]:
    """What `monitor` answers a shell asking to complete `line` (the cursor at its end)."""
    answer = cwd / "completions.out"
    result = run_cli(
        cwd=cwd,
        env={
            "_ARGCOMPLETE": "1",
            "_ARGCOMPLETE_SHELL": "bash",
            "COMP_LINE": line,
            "COMP_POINT": str(len(line)),
            "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
        },
    )
    assert result.returncode == 0, result.stderr
    return sorted(word.strip() for word in answer.read_text(encoding="utf-8").split(IFS) if word)


def _commands() -> set[str]:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return set(sub.choices)


def test_every_command_completes(tmp_path: Path) -> None:
    offered = set(complete("monitor ", tmp_path))
    assert _commands() <= offered
    assert {"alerts", "completion", "match", "run"} <= offered
    assert complete("monitor web", tmp_path) == ["webhooks"]


def test_options_of_a_command_complete(tmp_path: Path) -> None:
    assert complete("monitor alerts --we", tmp_path) == ["--webhook"]
    assert "--since" in complete("monitor alerts --", tmp_path)


def test_rule_ids_come_from_the_config_on_the_line(config: Path, tmp_path: Path) -> None:
    both = ["russia-cuba-contacts", "us-pressure-on-cuba"]
    assert complete(f"monitor alerts --config {config} --rule ", tmp_path) == both
    assert complete(f"monitor backtest --config {config} --rule ru", tmp_path) == both[:1]
    assert complete(f"monitor match --rule us --config {config}", tmp_path) != []  # no crash
    assert complete("monitor alerts --rule ", config.parent) == both  # default: ./config
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert complete("monitor alerts --rule ", elsewhere) == []


def test_webhook_names_come_from_the_config(config: Path, tmp_path: Path) -> None:
    names = ["analysts", "ops-slack"]
    assert complete(f"monitor alerts --config {config} --webhook ", tmp_path) == names
    assert complete(f"monitor replay --config {config} --webhook o", tmp_path) == names[1:]
    assert complete(f"monitor webhooks --config {config} --enable ", tmp_path) == names
    assert complete(f"monitor sink --config {config} --webhook an", tmp_path) == names[:1]


def test_a_rule_file_being_edited_still_completes_the_others(config: Path) -> None:
    (config / "rules" / "zz-draft.yaml").write_text("rules:\n  - id: [unfinished\n", "utf-8")
    assert complete("monitor alerts --rule ", config.parent) == [
        "russia-cuba-contacts",
        "us-pressure-on-cuba",
    ]


def test_completion_prints_shell_code(tmp_path: Path) -> None:
    bash = run_cli("completion", "bash", cwd=tmp_path)
    assert bash.returncode == 0
    assert "complete -o nospace -o default -o bashdefault -F _python_argcomplete monitor" in (
        bash.stdout
    )
    zsh = run_cli("completion", "zsh", cwd=tmp_path)
    assert "compdef _python_argcomplete monitor" in zsh.stdout
    assert "complete --command monitor" in run_cli("completion", "fish", cwd=tmp_path).stdout
    assert run_cli("completion", "tcsh", cwd=tmp_path).returncode == 2


def test_bash_completes_rule_ids_with_the_printed_code(config: Path) -> None:
    """The whole path: bash loads what `monitor completion bash` prints, TAB runs `monitor`."""
    bash = shutil.which("bash")
    console = Path(sys.executable).with_name("monitor")
    if bash is None or not console.is_file():
        pytest.skip("needs bash and the installed `monitor` console script")
    code = run_cli("completion", "bash", cwd=config).stdout
    script = (
        f"{code}\n"
        "COMP_LINE='monitor alerts --rule us'; COMP_POINT=${#COMP_LINE}\n"
        "COMP_WORDS=(monitor alerts --rule us); COMP_CWORD=3\n"
        "_python_argcomplete monitor\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(
        [bash, "--norc", "--noprofile", "-c", script],
        cwd=config.parent,  # ./config: the default --config
        env={"PATH": f"{console.parent}:/usr/bin:/bin", "HOME": str(config)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["us-pressure-on-cuba"]
