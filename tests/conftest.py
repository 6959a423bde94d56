"""Fixtures shared by the suite: local servers, storage URLs for SQLite and PostgreSQL, the CLI."""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

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
    name = f"monitor_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgresql_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(postgresql_server).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every store test runs over both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'monitor.db'}"
    url: str = request.getfixturevalue("postgresql_url")
    return url


def run_cli(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the real `monitor` CLI in a subprocess."""
    full_env = {**os.environ, "PYTHONWARNINGS": "error::DeprecationWarning:monitor", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env=full_env,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
