"""The command line itself: help texts, version, exit codes; `python -m monitor` and the
console script as real processes (the other tests call the CLI in process)."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from monitor import __version__
from monitor.durations import approximate_duration
from tests.conftest import REPO, run_cli
from tests.support.cli import run_process


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("run", "check", "match", "schema"):
        assert command in result.stdout


def test_run_help_documents_once_and_max_wait(tmp_path: Path) -> None:
    result = run_cli("run", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for option in ("--once", "--max-wait", "--config"):
        assert option in result.stdout


def python(probe: str) -> subprocess.CompletedProcess[str]:
    """`probe` run by this Python in a process of its own, from the repository; it must exit 0."""
    return subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True,
        timeout=120,
    )  # fmt: skip


def test_the_command_line_imports_only_what_every_command_needs() -> None:
    """Every `monitor` command starts by importing the command line: the OPML reader (lxml),
    the rule compiler and the word dictionaries wait for the commands that use them."""
    probe = (
        "import sys, monitor.cli.main; "
        "print(sorted(m for m in ('lxml', 'listparser', 'monitor.matching.rules', "
        "'monitor.matching.schema', 'pymorphy3', 'simplemma') if m in sys.modules))"
    )
    assert python(probe).stdout.strip() == "[]"


def test_the_collector_is_paused_while_the_application_loads_and_resumed_for_the_command() -> None:
    """`python -m monitor` as a real process: no collection runs while its ~77,000 lasting
    objects are created (about 180 young collections otherwise), and the command itself runs
    with the collector on (a daemon without one would keep every reference cycle it makes)."""
    probe = (
        "import atexit, gc, sys; sys.argv = ['monitor', '--version']; "
        "atexit.register(lambda: print(gc.isenabled(), gc.get_stats()[0]['collections'], "
        "file=sys.stderr)); import runpy; runpy.run_module('monitor', run_name='__main__')"
    )
    done = python(probe)
    assert done.stdout.strip() == f"monitor {__version__}"
    enabled, young = done.stderr.split()
    assert enabled == "True"
    assert int(young) < 20


def test_version_and_bad_arguments(tmp_path: Path) -> None:
    assert run_cli("--version", cwd=tmp_path).stdout.strip() == f"monitor {__version__}"
    bad = run_cli("run", "--once", "--max-wait", "soon", cwd=tmp_path)
    assert bad.returncode == 2
    assert "invalid duration 'soon'" in bad.stderr


def test_a_command_run_in_process_leaves_the_process_as_it_found_it(tmp_path: Path) -> None:
    root = logging.getLogger()

    def state() -> tuple[object, ...]:
        quiet = logging.getLogger("httpx").level
        return Path.cwd(), dict(os.environ), list(root.handlers), root.level, quiet

    before = state()
    result = run_cli(
        "--log-level",
        "debug",
        "run",
        "--once",
        "--config",
        str(tmp_path / "nowhere"),
        cwd=tmp_path,
        env={"MONITOR_LOG_FORMAT": "json"},
    )
    assert result.returncode == 2
    assert "no such file" in result.stderr
    assert state() == before


def test_python_m_monitor_is_the_real_command_with_its_exit_status(tmp_path: Path) -> None:
    invalid = run_process(["check", "--config", str(tmp_path / "nowhere")], cwd=tmp_path)
    assert invalid.returncode == 2  # main's code through sys.exit: the process's own status
    assert f"{tmp_path}/nowhere/monitor.yaml: no such file" in invalid.stderr


def test_the_console_script_is_the_same_command(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("monitor")
    if not script.is_file():
        pytest.skip(f"no console script beside {sys.executable} (the project is not installed)")
    result = subprocess.run(
        [str(script), "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout.strip()) == (0, f"monitor {__version__}")


def test_a_missing_config_folder_is_a_config_error(tmp_path: Path) -> None:
    result = run_cli("check", "--config", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{tmp_path}/nowhere/monitor.yaml: no such file" in result.stderr


def test_approximate_durations_read_as_people_say_them() -> None:
    cases = {42: "42s", 90: "1m", 7200: "2h", 26 * 3600: "1d"}
    for seconds, expected in cases.items():
        assert approximate_duration(timedelta(seconds=seconds)) == expected


def test_status_never_migrates_the_database_under_running_daemons(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "none.yaml").write_text("rules: []\n", encoding="utf-8")
    database = tmp_path / "monitor.db"
    (tmp_path / "monitor.yaml").write_text(f"storage: sqlite:///{database}\n", encoding="utf-8")

    result = run_cli("status", "--config", str(tmp_path), cwd=tmp_path)

    assert result.returncode == 1, result.stdout
    assert "schema is at revision none" in result.stderr
    assert "this monitor expects" in result.stderr
    with sqlite3.connect(database) as db:  # nothing was created in it
        assert db.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


F_SETPIPE_SZ = 1031  # Linux's fcntl command to size a pipe (not in the fcntl module of 3.11)


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path: Path) -> None:
    """`monitor schema config | head -1`: only a real process has a pipe to lose."""
    with subprocess.Popen(
        [sys.executable, "-m", "monitor", "schema"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None
        # a pipe smaller than the schema, so the writer is still writing when the reader leaves
        fcntl.fcntl(process.stdout.fileno(), F_SETPIPE_SZ, 4096)
        assert process.stdout.read(1) == b"{"
        process.stdout.close()  # the reader has all it wanted
        assert process.stderr is not None
        stderr = process.stderr.read().decode()
        code = process.wait(timeout=60)
    assert "Traceback" not in stderr, stderr
    assert code == 141


def test_check_refuses_a_term_whose_alternatives_multiply_past_the_cap(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    term = " ".join(f"w{n}(a|b|c)" for n in range(12))  # 531,441 forms
    (rules / "big.yaml").write_text(
        f"version: 1\nrules:\n  - id: big\n    title: Big\n    match: '{term}'\n", encoding="utf-8"
    )
    (tmp_path / "monitor.yaml").write_text("version: 1\nrules: rules/\nfeeds: []\n")
    result = run_cli("check", "--config", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "big.yaml:5:" in result.stdout + result.stderr
    assert "makes 531,441 forms (at most 256)" in result.stdout + result.stderr


ON_PATH = (". .venv/bin/activate", 'export PATH="$PWD/.venv/bin:$PATH"')


def test_the_readme_says_how_to_put_monitor_on_path_and_it_works(tmp_path: Path) -> None:
    """After `./scripts/run` (or `./scripts/test`) has installed .venv, the line the README gives
    before its first `monitor` command puts `monitor` on PATH in a fresh bash."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first_command = readme.index("| `monitor run")
    for line in ON_PATH:
        assert -1 < readme.find(line) < first_command, line
    assert ON_PATH[0] in (REPO / "scripts" / "run").read_text(encoding="utf-8")
    if not (REPO / ".venv" / "bin" / "monitor").is_file():
        pytest.skip(f"{REPO}/.venv has no monitor: the scripts did not install this checkout")
    for line in ON_PATH:
        result = subprocess.run(
            ["bash", "--norc", "--noprofile", "-c", f"{line}\nmonitor --version"],
            cwd=REPO,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (result.returncode, result.stdout.strip()) == (0, f"monitor {__version__}"), line
