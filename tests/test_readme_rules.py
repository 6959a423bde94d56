"""README's "Changing a rule", followed literally on a copy of the shipped config: every
command of the section, in its order, with the two edits its text asks for in between.

`monitor` commands run through the real CLI in this process (`run_cli`); the shell commands
around them (`mkdir`, `cp`, `mv`) in a real shell."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

README = REPO / "README.md"
MONITOR = ".venv/bin/monitor"
EXAMPLE = "- Путину позвонил Диас-Канель"
WORD = "- позвонить"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("### Changing a rule")
    return text[start : text.index("\n## ", start)]


def _blocks(section: str) -> list[list[str]]:
    return [block.strip().splitlines() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def _run(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """One command line of the README: `monitor …` (maybe fed by `echo '…' |`) in process,
    anything else in bash."""
    if MONITOR not in line:
        return subprocess.run(
            ["bash", "-c", line], cwd=cwd, capture_output=True, text=True, check=False
        )
    feed, _, command = line.rpartition("|")
    words = shlex.split(command)
    assert words[0] == MONITOR, line
    input_text = None
    if feed:
        echo = shlex.split(feed)
        assert echo[0] == "echo", line
        assert len(echo) == 2, line
        input_text = echo[1] + "\n"
    return run_cli(*words[1:], cwd=cwd, input_text=input_text)


def _insert_after(path: Path, anchor: str, line: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(anchor) == 1, anchor
    path.write_text(text.replace(anchor, anchor + line + "\n"), encoding="utf-8")


def test_the_sections_commands_work_literally_in_order(tmp_path: Path) -> None:
    section = _section()
    assert f"`{EXAMPLE}`" in section
    assert f"`{WORD}`" in section
    assert f"`{MONITOR} terms`" in section
    shutil.copytree(REPO / "config", tmp_path / "config")
    why_not, draft, example_first, fix, backtest, into_place = _blocks(section)

    (line,) = why_not
    result = _run(line, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "rule russia-cuba-contacts (Russian–Cuban state contacts): no match" in result.stdout
    assert "fails  all[1] $contact" in result.stdout
    terms = _run(f"{MONITOR} terms", tmp_path)
    assert re.search(r"^\$contact +rules/state-acts\.yaml:\d+:3 +shared", terms.stdout, re.M)

    for line in draft:
        assert _run(line, tmp_path).returncode == 0, line
    drafts = tmp_path / "config" / "rules" / "drafts"

    _insert_after(
        drafts / "russia-cuba-contacts.yaml", "    examples:\n      match:\n", f"        {EXAMPLE}"
    )
    (line,) = example_first
    result = _run(line, tmp_path)
    assert result.returncode == 2
    assert 'example "Путину позвонил Диас-Канель" should match but did not' in result.stderr
    assert "warning: shared term set `$contact`" in result.stderr

    _insert_after(drafts / "state-acts.yaml", "  contact:\n", f"    {WORD}")
    check, match = fix
    result = _run(check, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
    result = _run(match, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "rule russia-cuba-contacts (Russian–Cuban state contacts), severity high" in (
        result.stdout
    )

    (line,) = backtest
    result = _run(line, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "backtest: 0 items first seen since" in result.stdout  # a fresh clone's empty store

    (line,) = into_place
    assert _run(line, tmp_path).returncode == 0
    live = _run(f"{MONITOR} check", tmp_path)
    assert live.returncode == 0, live.stderr
    assert WORD in (tmp_path / "config" / "rules" / "state-acts.yaml").read_text("utf-8")
    assert not list(drafts.glob("*.yaml"))


@pytest.mark.parametrize("option", ["--rules", "--explain", "--rule", "--since"])
def test_the_options_the_section_names_exist(option: str) -> None:
    assert option in _section()
    commands = {"--rules": "check", "--explain": "match", "--rule": "match", "--since": "backtest"}
    result = run_cli(commands[option], "--help", cwd=REPO)
    assert result.returncode == 0
    assert option in result.stdout


def test_the_rule_language_example_compiles_and_its_examples_pass(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Rule language")
    found = re.search(r"```yaml\n(version: 1\n.*?)```", text[start:], re.S)
    assert found is not None
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "example.yaml").write_text(found.group(1), encoding="utf-8")
    # the example selects feeds by tag: a feed with that tag makes it valid
    (tmp_path / "monitor.yaml").write_text(
        "rules: rules/\nfeeds:\n  - url: https://tass.example/rss\n    tags: [state-media]\n",
        encoding="utf-8",
    )
    result = run_cli("check", "--config", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 rule in 1 file, 2 examples" in result.stdout
