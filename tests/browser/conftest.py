"""Browser tests: Playwright driving Debian's Chromium (no browser download) headless."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support import databases
from tests.web.daemon import TOKEN, Daemon, running_daemon

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


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Daemon]:
    """The real daemon (`monitor run`) on a seeded store, one per module: it takes seconds to
    start."""
    folder = tmp_path_factory.mktemp("console")
    url = databases.copy_sqlite(sqlite_template, folder / "data" / "monitor.db")
    with running_daemon(folder, url) as running:
        yield running


@pytest.fixture
def console(daemon: Daemon, page: Page) -> str:
    """The daemon's console URL, with `page` logged in through the login form."""
    page.goto(daemon.url)
    expect(page).to_have_url(re.compile(r"/login"))
    page.fill("input[name=token]", TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("h1")).to_have_text("Alerts")
    return daemon.url
