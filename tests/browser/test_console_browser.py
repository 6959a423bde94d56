"""The console in a real browser: load it, filter, open a story, replay a failed delivery, run
the playground."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.web.daemon import Daemon


def test_alerts_filter_story_and_replay(page: Page, console: str, daemon: Daemon) -> None:
    seeded = daemon.seeded
    page.goto(console)
    expect(page.locator("section.story")).to_have_count(3)
    page.select_option("select[name=rule]", "us-pressure-on-cuba")  # submits itself (our JS)
    expect(page).to_have_url(re.compile(r"rule=us-pressure-on-cuba"))
    expect(page.locator("section.story")).to_have_count(1)
    page.goto(console)
    page.locator("section.story h2 a").first.click()
    expect(page).to_have_url(re.compile(rf"/stories/{seeded.failed}"))
    failed = page.locator("tr.state-failed")
    expect(failed).to_contain_text("HTTP 400: bad payload")
    expect(page.locator("mark").first).to_be_visible()
    failed.get_by_role("button", name="Replay").click()
    expect(page.get_by_role("status")).to_contain_text("Requeued 1 delivery")
    expect(page.locator("tr.state-failed")).to_have_count(0)
    assert daemon.delivered(seeded.failed)  # the daemon sent it again, to the receiver
    page.reload()
    expect(page.locator("tr.state-delivered")).to_have_count(2)


def test_playground_match_and_backtest(page: Page, console: str) -> None:
    page.goto(f"{console}playground")
    page.select_option("select[name=rule]", "us-pressure-on-cuba")
    page.fill("input[name=title]", "Treasury adds Cuban firms to sanctions list")
    page.get_by_role("button", name="Match").click()
    expect(page.locator("article.verdict")).to_contain_text("us-pressure-on-cuba: matches")
    page.fill(
        "textarea[name=draft]",
        "version: 1\nrules:\n  - {id: wx, title: Weather, match: {all: [weather]}}\n",
    )
    expect(page.locator("input[name=source][value=draft]")).to_be_checked()
    page.get_by_role("button", name="Backtest this week").click()
    expect(page.locator("section.backtest")).to_contain_text("Would alert now, did not: 1")
    expect(page.locator("section.backtest")).to_contain_text("Weather in Lisbon")
    page.fill("textarea[name=draft]", "rules: [")
    page.get_by_role("button", name="Match").click()
    expect(page.get_by_role("alert")).to_contain_text("draft.yaml:")


def test_feeds_and_rules_pages(page: Page, console: str) -> None:
    page.goto(f"{console}feeds")
    expect(page.locator("table.feeds tbody tr")).to_have_count(2)
    expect(page.locator("svg.spark")).to_have_count(2)
    page.get_by_role("link", name="Rules").click()
    expect(page.locator("table.rules")).to_contain_text("russia-cuba-contacts")
