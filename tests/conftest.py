"""Fixtures shared by the suite: local servers, storage URLs for SQLite and PostgreSQL, the CLI."""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine

from tests.support import databases
from tests.support.burst import Burst, Clock
from tests.support.cli import run_in_process
from tests.support.receiver import SignedReceiver
from tests.support.servers import LocalServer

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
POSTGRESQL = os.environ.get("MONITOR_TEST_POSTGRESQL", "postgresql+psycopg://127.0.0.1:5432/test")


def pytest_configure(config: pytest.Config) -> None:
    """Bytecode for monitor/ before the suite starts its ~130 `monitor` subprocesses.

    With PYTHONDONTWRITEBYTECODE set (some shells and containers set it), no process writes
    .pyc files, and every subprocess compiled monitor's ~80 modules from source again: ~0.3 s
    of CPU each (measured: `monitor --version` 1.55 s of CPU without, 1.25 s with). Written
    once here (only what changed since the last run; __pycache__ is git-ignored), they are
    read as usual, and an edited module is compiled from source as before. Not in xdist
    workers: the controller did it before starting them.
    """
    if sys.dont_write_bytecode and "PYTEST_XDIST_WORKER" not in os.environ:
        compileall.compile_dir(REPO / "monitor", quiet=1)
    # the word dictionaries' tries (monitor.dictionaries): built once per machine for the
    # suite and its subprocesses, not in the developer's own cache folder
    os.environ.setdefault("MONITOR_CACHE_DIR", str(Path(tempfile.gettempdir()) / "monitor-tests"))


@pytest.fixture
def clock() -> Iterator[Clock]:
    """The process's wall clock, ticking on from now, moved by the test (tests/support/burst.py)."""
    with time_machine.travel(datetime.now(UTC), tick=True) as traveller:
        yield Clock(traveller)


@pytest.fixture
def burst(clock: Clock) -> Burst:
    """One `run --once` cycle in process on the `clock`: retries fall due without waiting."""
    return Burst(clock)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer(poll_interval=0.05) as local:
        yield local


@pytest.fixture
def receiver() -> Iterator[SignedReceiver]:
    with LocalServer(poll_interval=0.05) as local:
        yield SignedReceiver(local)


def _postgresql_available() -> str | None:
    try:
        engine = sa.create_engine(POSTGRESQL)
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


@pytest.fixture(scope="session")
def postgresql_server() -> str:
    problem = _postgresql_available()
    if problem:
        if os.environ.get("MONITOR_REQUIRE_POSTGRESQL"):
            pytest.fail(f"PostgreSQL required but unreachable at {POSTGRESQL}: {problem}")
        pytest.skip(
            f"PostgreSQL unreachable at {POSTGRESQL} ({problem}); "
            "set MONITOR_TEST_POSTGRESQL or start it"
        )
    return POSTGRESQL


@pytest.fixture
def postgresql_url(postgresql_server: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = databases.database_name("test")
    yield databases.create_database(postgresql_server, name)
    databases.drop_database(postgresql_server, name)


@pytest.fixture(scope="session")
def postgresql_template(postgresql_server: str) -> Iterator[str]:
    """The name of a database at the current schema, migrated once per test process."""
    name = databases.migrate_postgresql_template(postgresql_server)
    yield name
    databases.drop_database(postgresql_server, name)


@pytest.fixture
def migrated_postgresql_url(postgresql_server: str, postgresql_template: str) -> Iterator[str]:
    """A database of its own for one test, created from the migrated template, dropped after."""
    name = databases.database_name("test")
    yield databases.create_database(postgresql_server, name, template=postgresql_template)
    databases.drop_database(postgresql_server, name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file at the current schema, migrated once per test process."""
    return databases.migrate_sqlite_template(tmp_path_factory.mktemp("template") / "monitor.db")


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every store test runs over both backends, each on a database already at the current
    schema (a copy of the template: opening it migrates nothing)."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        return databases.copy_sqlite(template, tmp_path / "data" / "monitor.db")
    url: str = request.getfixturevalue("migrated_postgresql_url")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both backends, each on an empty database: for the tests of the migrations themselves."""
    if request.param == "sqlite":
        return databases.sqlite_url(tmp_path / "data" / "monitor.db")
    url: str = request.getfixturevalue("postgresql_url")
    return url


def run_cli(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """`monitor ARGS` run in this process (tests/support/cli.py): the exit code and output of a
    command that ends by itself. `timeout` bounds only a real process (`run_process`); here
    pytest-timeout bounds the test."""
    del timeout
    return run_in_process(args, cwd=cwd, env=env, input_text=input_text)
