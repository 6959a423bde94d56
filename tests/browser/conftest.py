"""Browser tests: Playwright's async API driving Debian's Chromium (no browser download),
headless, against the real daemon.

The async API on the test's own event loop, not pytest-playwright's sync fixtures: those keep
an event loop running in the test process for the whole session, and every asyncio test that
the same xdist worker ran after them failed ("Cannot run the event loop while another loop is
running").
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect

from tests.support import databases
from tests.web.daemon import TOKEN, Daemon, running_daemon

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Daemon]:
    """The real daemon (`monitor run`) on a seeded store, one per module: it takes seconds to
    start."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (.ci/run does)")
    folder = tmp_path_factory.mktemp("console")
    url = databases.copy_sqlite(sqlite_template, folder / "data" / "monitor.db")
    with running_daemon(folder, url) as running:
        yield running


@pytest.fixture
async def page(daemon: Daemon) -> AsyncIterator[Page]:
    """A fresh headless Chromium page, logged in to the daemon's console with its form."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            opened = await browser.new_page()
            await opened.goto(daemon.url)
            await expect(opened).to_have_url(re.compile(r"/login"))
            await opened.fill("input[name=token]", TOKEN)
            await opened.get_by_role("button", name="Log in").click()
            await expect(opened.locator("h1")).to_have_text("Alerts")
            # the heading is there before console.js (deferred) has run; "load" comes after it,
            # and tests start by using what it wires (a filter that submits itself)
            await opened.wait_for_load_state("load")
            yield opened
        finally:
            await browser.close()
