"""The console in a real browser: load it, filter, open a story, replay a failed delivery, run
the playground."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Page, expect

from tests.web.daemon import Daemon

# the first test of the module waits for the daemon to start (seconds on a busy machine)
pytestmark = pytest.mark.timeout(180)


async def test_alerts_filter_story_and_replay(page: Page, daemon: Daemon) -> None:
    seeded = daemon.seeded
    await expect(page.locator("section.story")).to_have_count(3)
    await page.select_option("select[name=rule]", "us-pressure-on-cuba")  # submits itself (JS)
    await expect(page).to_have_url(re.compile(r"rule=us-pressure-on-cuba"))
    await expect(page.locator("section.story")).to_have_count(1)
    await page.goto(daemon.url)
    await page.locator("section.story h2 a").first.click()
    await expect(page).to_have_url(re.compile(rf"/stories/{seeded.failed}"))
    failed = page.locator("tr.state-failed")
    await expect(failed).to_contain_text("HTTP 400: bad payload")
    await expect(page.locator("mark").first).to_be_visible()
    await failed.get_by_role("button", name="Replay").click()
    await expect(page.get_by_role("status")).to_contain_text("Requeued 1 delivery")
    await expect(page.locator("tr.state-failed")).to_have_count(0)
    assert await asyncio.to_thread(daemon.delivered, seeded.failed)  # sent again, by the daemon
    await page.reload()
    await expect(page.locator("tr.state-delivered")).to_have_count(2)


async def test_playground_match_and_backtest(page: Page, daemon: Daemon) -> None:
    await page.goto(f"{daemon.url}playground")
    await page.select_option("select[name=rule]", "us-pressure-on-cuba")
    await page.fill("input[name=title]", "Treasury adds Cuban firms to sanctions list")
    await page.get_by_role("button", name="Match").click()
    await expect(page.locator("article.verdict")).to_contain_text("us-pressure-on-cuba: matches")
    await page.fill(
        "textarea[name=draft]",
        "version: 1\nrules:\n  - {id: wx, title: Weather, match: {all: [weather]}}\n",
    )
    await expect(page.locator("input[name=source][value=draft]")).to_be_checked()
    await page.get_by_role("button", name="Backtest this week").click()
    backtest = page.locator("section.backtest")
    await expect(backtest).to_contain_text("Would alert now, did not: 1")
    await expect(backtest).to_contain_text("Weather in Lisbon")
    await page.fill("textarea[name=draft]", "rules: [")
    await page.get_by_role("button", name="Match").click()
    await expect(page.get_by_role("alert")).to_contain_text("draft.yaml:")


async def test_feeds_and_rules_pages(page: Page, daemon: Daemon) -> None:
    await page.goto(f"{daemon.url}feeds")
    await expect(page.locator("table.feeds tbody tr")).to_have_count(2)
    await expect(page.locator("svg.spark")).to_have_count(2)
    await page.get_by_role("link", name="Rules").click()
    await expect(page.locator("table.rules")).to_contain_text("russia-cuba-contacts")
    await page.get_by_role("button", name="Log out").click()
    await expect(page).to_have_url(re.compile(r"/login"))
    await page.goto(f"{daemon.url}feeds")
    await expect(page).to_have_url(re.compile(r"/login"))  # the session ended
