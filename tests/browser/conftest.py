"""Browser tests: Playwright driving Debian's Chromium (no browser download) headless."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.apps import routes_app
from tests.web.seed import Seeded, seed
from tests.web.serving import serving

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def base_url() -> str | None:
    """pytest-base-url's fixture, replaced: its own warns under this pytest (a class method
    fixture) and each test here has its own server anyway."""
    return None


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (.ci/run does)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True}


@pytest.fixture
def seeded(tmp_path: Path, sqlite_template: Path) -> Iterator[Seeded]:
    from tests.support import databases  # noqa: PLC0415

    url = databases.copy_sqlite(sqlite_template, tmp_path / "data" / "monitor.db")
    made = seed(tmp_path / "config", url)
    yield made
    made.close()


@pytest.fixture
def console(seeded: Seeded) -> Iterator[str]:
    with serving(routes_app(seeded)) as base:
        yield base
